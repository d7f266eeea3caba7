// The page's controls: run and compare selects, view tabs, the layer list (layer_list.js), the options row,
// and the epoch bar with its playback and keyboard moves. They read and change the page's
// state through the app interface (index.js), which decides what to fetch and redraw.

import { h, keepFocus } from './dom.js';
import { LayerList } from './layer_list.js';
import { nearestStepIndex, viewFamilies } from './model.js';
import { fieldLabels, probePicker, setOptions, subsetFields } from './options.js';
import { paintBitmap, paintFailed } from './paint.js';
import * as V from './views.js';

const PLAY_INTERVAL_MS = 700;

/**
 * Keeps the controls in step with the page's state and turns their events into changes.
 *
 * @example
 *   const controls = new Controls(app);  // app: the AppInterface (index.js)
 *   controls.setEpoch(3);  // move to epoch 3 and repaint
 */
export class Controls {
  /** @param {AppInterface} app the page's interface; the Controls use nothing else of it. */
  constructor(app) {
    this.app = app;
    this.playing = false;
    this.optionsKey = null;
  }

  get ui() {
    return this.app.ui;
  }

  /** Run and compare selects, view tabs and the layer list. */
  syncSelectors(run) {
    const { app, ui } = this;
    const names = app.runs.map((r) => r.name);
    V.setRunOptions(ui.runSelect, names, app.state.run);
    V.setRunOptions(ui.compareSelect, names.filter((n) => n !== app.state.run), app.state.compare, 'None');
    ui.compareSelect.disabled = names.length < 2;
    const layer = run.layers.find((l) => l.name === app.state.layer);
    const logged = new Set(layer ? layer.tags.keys() : []);
    const on = { family: (group) => app.selectKind(this.familyKind(group, logged)), kind: (kind) => app.selectKind(kind) };
    keepFocus(ui.tabs, () => keepFocus(ui.methods, () =>
      V.setTabs(ui.tabs, ui.methods, viewFamilies(run), app.state.kind, logged, on)));
    this.layers = this.layers || new LayerList(app, ui.layerTools, ui.layerList);
    keepFocus(ui.layerList, () => this.layers.sync(run));
  }

  /**
   * The view a family's tab opens: the method last chosen in it, else its first at the
   * layer shown, else its first (at the nearest layer that has it).
   */
  familyKind(group, here) {
    const kinds = group.views.map((view) => view.kind);
    const last = this.app.state.methods?.[group.family.name];
    if (kinds.includes(last)) return last;
    return kinds.find((kind) => here.has(kind)) || kinds[0];
  }

  /** The options row of the current view (rebuilt only when the view or probes change). */
  syncOptions() {
    const { app } = this;
    const pane = app.panes.find((p) => p.steps) || app.panes[0];
    const family = pane?.family || null;
    const probeCount = pane ? pane.probeUrls.length : 0;
    const subset = subsetFields(pane, app.state, (changes) => app.set(changes, true));
    const set = (name, value) => app.set({ [name]: value });
    const own = family ? family.options(app.state, set, app.panes.flatMap((p) => p.steps || [])) : [];
    const key = JSON.stringify([family?.name, probeCount, app.state.probe, app.state.run, subset.key, fieldLabels(own)]);
    if (key === this.optionsKey) return;
    this.optionsKey = key;
    let picker = null;
    if (family?.layout.pickProbe && probeCount) {
      const names = pane.run.classNames;
      const label = (i) => (pane.probeLabels && names ? String(names[pane.probeLabels[i]] ?? '') : '');
      picker = probePicker(probeCount, app.state.probe, label, (i) => app.set({ probe: i }, true));
      picker.canvases.forEach((canvas, i) => {
        app.store.bitmap(pane.probeUrls[i]).then((bitmap) => paintBitmap(canvas, bitmap), () => paintFailed(canvas));
      });
    }
    keepFocus(this.ui.options, () =>
      setOptions(this.ui.options, app.state, set, picker?.element, subset.fields, own));
  }

  /** The slider, readout and note for the epochs of the current view. */
  syncEpochBar() {
    const { app } = this;
    const { slider, ticks, epochValue, epochRange, epochNote, prev, next, play } = this.ui;
    const epochs = app.epochs;
    const n = epochs.length;
    const shown = app.shownEpoch();
    const index = Math.max(0, epochs.indexOf(shown));
    slider.max = String(Math.max(0, n - 1));
    slider.value = String(index);
    slider.disabled = n < 2;
    slider.setAttribute('aria-valuetext', `Epoch ${shown ?? '–'}`);
    if (ticks.childElementCount !== (n <= 60 ? n : 0)) {
      ticks.replaceChildren(...epochs.slice(0, n <= 60 ? n : 0).map((_, i) => h('option', { value: String(i) })));
    }
    epochValue.textContent = shown === null ? '–' : String(shown);
    epochRange.textContent = n ? `/ ${epochs[n - 1]}` : '';
    prev.disabled = index <= 0;
    next.disabled = index >= n - 1;
    play.disabled = n < 2;
    epochNote.textContent = this.epochNote(shown);
    app.doc.body.dataset.epoch = String(shown ?? '');
  }

  /** 'untrained network', when the shown epoch was logged, or why it is not the one chosen. */
  epochNote(shown) {
    const { app } = this;
    const chosen = app.state.epoch;
    if (shown !== null && chosen !== null && chosen > shown) {
      return `newest logged at or before epoch ${chosen}`;
    }
    if (shown === 0) return 'untrained network';
    const pane = app.panes.find((p) => p.steps);
    const step = pane ? pane.steps[nearestStepIndex(pane.steps, shown ?? 0)] : null;
    return step?.wallTime ? `logged ${new Date(step.wallTime * 1000).toLocaleTimeString()}` : '';
  }

  /** Whether the view shows the newest epoch (then a new epoch arriving moves it there). */
  atNewest() {
    const { app } = this;
    return app.state.epoch === null || !app.epochs.length || app.shownEpoch() === app.epochs.at(-1);
  }

  /** Show `epoch` (the newest logged at or before it) and repaint. */
  setEpoch(epoch, fromPlay = false) {
    const { app } = this;
    if (epoch === undefined || epoch === null) return Promise.resolve();
    if (!fromPlay) this.stopPlay();
    app.startSwitchTimer();
    const painted = app.set({ epoch });
    this.syncEpochBar();
    return painted;
  }

  step(delta) {
    const { epochs } = this.app;
    const index = epochs.indexOf(this.app.shownEpoch()) + delta;
    if (index >= 0 && index < epochs.length) this.setEpoch(epochs[index]);
  }

  togglePlay() {
    const { app } = this;
    if (this.playing) return this.stopPlay();
    if (app.epochs.length < 2) return;
    this.playing = true;
    this.ui.play.textContent = '❚❚';
    this.ui.play.setAttribute('aria-label', 'Pause');
    this.ui.root.classList.add('playing');
    const last = () => app.epochs.length - 1;
    const tick = async () => {
      if (!this.playing) return;
      const index = app.epochs.indexOf(app.shownEpoch());
      if (index >= last()) return this.stopPlay();
      await this.setEpoch(app.epochs[index + 1], true);
      this.playTimer = setTimeout(tick, PLAY_INTERVAL_MS);
    };
    if (app.epochs.indexOf(app.shownEpoch()) < last()) return tick();
    return this.setEpoch(app.epochs[0], true).then(() => {
      this.playTimer = setTimeout(tick, PLAY_INTERVAL_MS);
    });
  }

  stopPlay() {
    if (!this.playing) return;
    this.playing = false;
    clearTimeout(this.playTimer);
    this.ui.play.textContent = '▶';
    this.ui.play.setAttribute('aria-label', 'Play the epochs');
    this.ui.root.classList.remove('playing');
  }

  /** Arrow keys, Home and End move through epochs; space plays (outside form controls). */
  onKey(event, inDialog) {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return;
    const target = event.target;
    if (['INPUT', 'SELECT', 'TEXTAREA'].includes(target.tagName)) return;
    if (!inDialog && this.ui.dialog.open) return;
    const { epochs } = this.app;
    const moves = { ArrowLeft: -1, ArrowRight: 1 };
    if (event.key in moves) this.step(moves[event.key]);
    else if (event.key === 'Home') this.setEpoch(epochs[0]);
    else if (event.key === 'End') this.setEpoch(epochs.at(-1));
    else if (event.key === ' ' && !inDialog && target === this.app.doc.body) this.togglePlay();
    else return;
    event.preventDefault();
  }
}
