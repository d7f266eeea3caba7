// The cnnvis dashboard: TensorBoard imports this module in the plugin's iframe and calls
// render(). The App owns the page state (run, layer, view, epoch, display options) and
// decides what to fetch (store.js) and when to redraw: controls.js keeps the controls in
// step, panes.js draws the cards, detail.js the detail dialog.

import { Controls } from './controls.js';
import { h } from './dom.js';
import { Detail } from './detail.js';
import { listenForReloads, loadState, loadStylesheet, saveState, watchTheme } from './host.js';
import { nearestStepIndex } from './model.js';
import { Board, loadPane } from './panes.js';
import { Store } from './store.js';
import * as V from './views.js';

const POLL_SECONDS = 10;
const SAVED = ['run', 'compare', 'layer', 'kind', 'epoch', 'probe', 'scaling', 'featureColormap',
  'camColormap', 'opacity', 'threshold', 'gain', 'size'];

/**
 * Draw the dashboard into the current document (TensorBoard's plugin iframe).
 *
 * @returns {Promise<App>} the running app (also window.cnnvis, for tests and benchmarks).
 * @example import('./index.js').then((m) => m.render());
 */
export async function render() {
  const app = new App(document);
  window.cnnvis = app;
  await app.start();
  return app;
}

class App {
  constructor(doc) {
    this.doc = doc;
    this.store = new Store();
    this.state = {
      run: '', compare: '', layer: '', kind: 'feature_maps', epoch: null, probe: 0,
      scaling: 'channel', featureColormap: 'viridis', camColormap: 'jet', opacity: 0.5,
      threshold: 0.1, gain: 1, size: 112, ...loadState(SAVED),
    };
    this.runs = [];
    this.panes = [];
    this.epochs = [];
    this.token = 0;
    this.paintToken = 0;
    this.inflight = new Set();
    this.followNewest = false; // set by refresh(): the next rebuild moves to the newest epoch
    this.reloads = 0; // experimental.DataReloaded messages heard from TensorBoard
    this.timings = { firstPaint: null, switches: [] };
  }

  async start() {
    await loadStylesheet(this.doc, './style.css');
    this.controls = new Controls(this);
    this.ui = V.buildShell({
      run: (name) => this.set({ run: name }, true),
      compare: (name) => this.set({ compare: name }, true),
      epochIndex: (i) => this.setEpoch(this.epochs[i]),
      play: () => this.controls.togglePlay(),
      step: (delta) => this.controls.step(delta),
      refresh: () => this.refresh(),
    });
    this.doc.body.replaceChildren(this.ui.root);
    this.board = new Board(this);
    this.detail = new Detail(this);
    this.ui.dialog.addEventListener('keydown', (e) => this.controls.onKey(e, true));
    this.doc.addEventListener('keydown', (e) => this.controls.onKey(e, false));
    watchTheme(this.doc);
    listenForReloads(() => {
      this.reloads += 1;
      this.refresh();
    });
    setInterval(() => this.doc.hidden || this.refresh(), POLL_SECONDS * 1000);
    await this.load();
  }

  /** Whether playback is running (for tests and benchmarks). */
  get playing() {
    return this.controls.playing;
  }

  setStatus(text) {
    this.ui.status.textContent = text;
  }

  /** First load, and reload after an error: the runs, then the current view. */
  async load() {
    this.setStatus('Loading…');
    this.doc.body.dataset.state = 'loading';
    try {
      this.runs = await this.store.runs();
    } catch (err) {
      const retry = this.retryButton(() => this.load());
      this.showPageMessage(V.message('error', 'Could not load the list of runs', err.message, retry), 'error');
      this.setStatus('');
      return;
    }
    this.setStatus(`Live · checked ${new Date().toLocaleTimeString()}`);
    if (!this.runs.length) {
      this.showPageMessage(V.emptyState(), 'empty');
      return;
    }
    this.ui.root.classList.remove('no-data');
    await this.update();
  }

  showPageMessage(node, state) {
    this.ui.root.classList.add('no-data');
    this.ui.panesHost.replaceChildren(node);
    this.panes = [];
    this.board.panes = [];
    this.doc.body.dataset.state = state;
  }

  retryButton(action) {
    return h('button', { class: 'primary', text: 'Retry', on: { click: action } });
  }

  runByName(name) {
    return this.runs.find((run) => run.name === name);
  }

  /** Make the selection consistent with the data: a run, a layer and a logged view. */
  normalize() {
    const s = this.state;
    const run = this.runByName(s.run) || this.runs[0];
    s.run = run.name;
    if (s.compare === s.run || !this.runByName(s.compare)) s.compare = '';
    if (!run.kinds.includes(s.kind)) s.kind = run.kinds[0] || 'feature_maps';
    if (!run.layers.some((layer) => layer.name === s.layer)) {
      const first = run.layers.find((layer) => layer.tags.has(s.kind)) || run.layers[0];
      s.layer = first ? first.name : '';
    }
    return run;
  }

  /** Remember the selection for this browser tab; at the newest epoch, remember to follow it. */
  save() {
    const following = this.epochs.length > 0 && this.controls.atNewest();
    saveState({ ...this.state, epoch: following ? null : this.state.epoch }, SAVED);
  }

  /** Change state and redraw: `structural` changes rebuild the panes, the rest repaint. */
  set(changes, structural = false) {
    Object.assign(this.state, changes);
    this.save();
    if (structural) return this.update();
    if ('size' in changes) {
      for (const grid of this.ui.panesHost.querySelectorAll('.grid')) grid.style.setProperty('--tile', `${changes.size}px`);
    }
    return this.paint();
  }

  /** Switch view; if the current layer lacks it, go to the nearest layer that has it. */
  selectKind(kind) {
    const run = this.runByName(this.state.run);
    const current = run.layers.findIndex((l) => l.name === this.state.layer);
    if (current >= 0 && run.layers[current].tags.has(kind)) return this.set({ kind }, true);
    const having = run.layers
      .map((layer, index) => ({ layer, distance: Math.abs(index - current) }))
      .filter(({ layer }) => layer.tags.has(kind))
      .sort((a, b) => a.distance - b.distance);
    return this.set({ kind, layer: having.length ? having[0].layer.name : this.state.layer }, true);
  }

  /** Rebuild controls and panes for the current selection, then paint. */
  update() {
    return this.track(this.rebuild());
  }

  /** Paint every visible card (and the detail) at the current epoch. */
  paint() {
    return this.track(this.repaint());
  }

  /** Remember work in flight, so that settled() can wait for it. */
  track(promise) {
    this.inflight.add(promise);
    const done = () => this.inflight.delete(promise);
    promise.then(done, done);
    return promise;
  }

  /**
   * Resolves once no rebuild or paint is in flight (for tests and benchmarks).
   *
   * @returns {Promise<void>}
   */
  async settled() {
    while (this.inflight.size) await Promise.allSettled([...this.inflight]);
  }

  async rebuild() {
    const token = ++this.token;
    const run = this.normalize();
    this.controls.syncSelectors(run);
    const names = [this.state.run, this.state.compare].filter(Boolean);
    const spinner = setTimeout(() => {
      if (token !== this.token) return;
      const count = run.layers.find((l) => l.name === this.state.layer)?.outputShape?.[2];
      this.ui.panesHost.replaceChildren(V.loadingState(`Loading ${this.state.layer}…`, count, this.state.size));
    }, 150);
    const panes = await Promise.all(names.map((name) => loadPane(this.store, this.runByName(name), this.state)));
    clearTimeout(spinner);
    if (token !== this.token) return;
    this.epochs = [...new Set(panes.flatMap((p) => (p.steps || []).map((s) => s.step)))].sort((a, b) => a - b);
    if (this.state.epoch === null || (this.followNewest && this.epochs.length)) {
      this.state.epoch = this.epochs.at(-1) ?? null;
      this.save();
    }
    this.followNewest = false;
    this.panes = this.board.build(panes, this.ui.panesHost);
    this.ui.intro.replaceChildren(...V.viewIntro(panes.find((p) => p.layer) || panes[0], this.state));
    this.controls.syncOptions();
    this.controls.syncEpochBar();
    this.doc.body.dataset.state = 'ready';
    this.detail.sync();
    await this.paint();
  }

  ctx(pane) {
    return { ...this.state, classNames: pane.run.classNames, probeUrls: pane.probeUrls, probeLabels: pane.probeLabels };
  }

  /** The step shown: the newest logged epoch at or before the chosen one. */
  shownEpoch() {
    if (!this.epochs.length) return null;
    if (this.state.epoch === null) return this.epochs.at(-1);
    return this.epochs[nearestStepIndex(this.epochs.map((step) => ({ step })), this.state.epoch)];
  }

  /** Show `epoch` and repaint (the detail's filmstrip and the slider call this). */
  setEpoch(epoch, fromPlay = false) {
    return this.controls.setEpoch(epoch, fromPlay);
  }

  /** Load and draw one item into a canvas (for the detail panel). */
  paintInto(canvas, pane, index, step, owner) {
    return this.board.paintInto(canvas, pane, index, step, owner);
  }

  async repaint() {
    const token = ++this.paintToken;
    const switching = this.switchStart !== null && this.switchStart !== undefined;
    const start = switching ? this.switchStart : performance.now();
    this.switchStart = null;
    const shown = this.shownEpoch();
    const jobs = this.board.paint(shown);
    if (this.detail.isOpen) jobs.push(this.detail.paint());
    await Promise.all(jobs);
    if (token !== this.paintToken) return;
    if (this.timings.firstPaint === null && this.panes.some((p) => p.cards)) {
      this.timings.firstPaint = performance.now();
      performance.mark('cnnvis-first-paint');
    } else if (switching) {
      this.timings.switches.push({ epoch: shown, ms: performance.now() - start });
    }
    const body = this.doc.body.dataset;
    body.painted = String(shown ?? '');
    body.paints = String(Number(body.paints || 0) + 1);
    // Warm the cache with the next epoch's images (two while playing), so stepping is instant.
    const index = this.epochs.indexOf(shown);
    if (index >= 0) this.board.prefetch(this.epochs.slice(index + 1, index + (this.playing ? 3 : 2)));
  }

  /** What the pixels of a card depend on besides its step (for the detail's filmstrip). */
  optionsSignature() {
    const s = this.state;
    return [s.probe, s.scaling, s.featureColormap, s.camColormap, s.opacity, s.threshold, s.gain].join('|');
  }

  /**
   * Look for new runs and epochs; redraw only if something changed. A view that showed the
   * newest epoch moves to the newest one; any other keeps its place.
   */
  async refresh() {
    if (this.refreshing) return;
    this.refreshing = true;
    try {
      const follow = this.controls.atNewest();
      const changed = await this.store.refresh();
      this.setStatus(`Live · checked ${new Date().toLocaleTimeString()}`);
      if (changed) {
        const hadRuns = this.runs.length > 0;
        this.runs = await this.store.runs();
        this.followNewest = follow && this.controls.atNewest(); // not if the user moved meanwhile
        if (!hadRuns || !this.runs.length) await this.load();
        else await this.update();
      }
    } catch (err) {
      this.setStatus(`Could not check for new data: ${err.message}`);
    } finally {
      this.refreshing = false;
    }
  }
}
