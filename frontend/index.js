// The cnnvis dashboard: TensorBoard imports this module in the plugin's iframe and calls
// render(). The App owns the page state (run, layer, view, epoch, display options) and
// decides what to fetch (model.js) and what to draw (views.js, detail.js).

import { Detail } from './detail.js';
import { listenForReloads, loadState, loadStylesheet, saveState, watchTheme } from './host.js';
import { itemCaption, itemCount, itemName, itemProbe, itemUrls, nearestStepIndex, Store, viewOf } from './model.js';
import * as V from './views.js';

const POLL_SECONDS = 10;
const PLAY_INTERVAL_MS = 700;
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
    this.playing = false;
    this.token = 0;
    this.paintToken = 0;
    this.inflight = new Set();
    this.reloads = 0; // experimental.DataReloaded messages heard from TensorBoard
    this.timings = { firstPaint: null, switches: [] };
    this.observer = new IntersectionObserver((entries) => this.onVisible(entries), { rootMargin: '200px' });
  }

  async start() {
    await loadStylesheet(this.doc, './style.css');
    this.ui = V.buildShell({
      run: (name) => this.set({ run: name }, true),
      compare: (name) => this.set({ compare: name }, true),
      epochIndex: (i) => this.setEpoch(this.epochs[i]),
      play: () => this.togglePlay(),
      step: (delta) => this.step(delta),
      refresh: () => this.refresh(),
    });
    this.doc.body.replaceChildren(this.ui.root);
    this.detail = new Detail(this);
    this.ui.dialog.addEventListener('keydown', (e) => this.onKey(e, true));
    this.doc.addEventListener('keydown', (e) => this.onKey(e, false));
    watchTheme(this.doc);
    listenForReloads(() => {
      this.reloads += 1;
      this.refresh();
    });
    setInterval(() => this.doc.hidden || this.refresh(), POLL_SECONDS * 1000);
    await this.load();
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
    this.doc.body.dataset.state = state;
  }

  retryButton(action) {
    return V.h('button', { class: 'primary', text: 'Retry', on: { click: action } });
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

  /** Change state and redraw: `structural` changes rebuild the panes, the rest repaint. */
  set(changes, structural = false) {
    Object.assign(this.state, changes);
    saveState(this.state, SAVED);
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
    this.syncControls(run);
    const names = [this.state.run, this.state.compare].filter(Boolean);
    const spinner = setTimeout(() => {
      if (token !== this.token) return;
      const count = run.layers.find((l) => l.name === this.state.layer)?.outputShape?.[2];
      this.ui.panesHost.replaceChildren(V.loadingState(`Loading ${this.state.layer}…`, count, this.state.size));
    }, 150);
    const panes = await Promise.all(names.map((name) => this.loadPane(this.runByName(name))));
    clearTimeout(spinner);
    if (token !== this.token) return;
    this.buildPanes(panes);
    this.syncOptions();
    this.syncEpochBar();
    this.doc.body.dataset.state = 'ready';
    this.detail.sync();
    await this.paint();
  }

  /** Fetch one run's series for the current layer and view, and its probe images. */
  async loadPane(run) {
    const view = viewOf(this.state.kind);
    const layer = run.layers.find((l) => l.name === this.state.layer);
    const pane = { run, layer, view, family: view.family, steps: null, probeUrls: [], probeLabels: null };
    if (!layer) {
      pane.message = ['Layer not in this run', `Run "${run.name}" has no layer "${this.state.layer}".`];
      return pane;
    }
    pane.tag = layer.tags.get(view.kind);
    if (!pane.tag) {
      pane.jump = run.layers.filter((l) => l.tags.has(view.kind)).map((l) => l.name);
      const where = pane.jump.length ? `Logged for: ${pane.jump.join(', ')}.` : `No layer of "${run.name}" has it.`;
      pane.message = [`${view.label} not logged for ${layer.name}`, where];
      return pane;
    }
    const [steps, probes] = await Promise.allSettled([
      this.store.steps(run.name, pane.tag),
      run.probesTag ? this.store.steps(run.name, run.probesTag) : Promise.resolve([]),
    ]);
    if (steps.status === 'rejected') {
      pane.error = steps.reason;
      return pane;
    }
    pane.steps = steps.value.length ? steps.value : null;
    if (!pane.steps) pane.message = ['No epochs yet', `${pane.tag} has no logged steps.`];
    const first = probes.status === 'fulfilled' ? probes.value[0] : null;
    if (first) {
      first.images.forEach((url, i) => {
        pane.probeUrls[first.facts.images?.[i]?.probe ?? i] = url;
      });
      pane.probeLabels = first.facts.labels || null;
    }
    return pane;
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

  /** The panes' DOM: one column per run, each a grid of cards or a message. */
  buildPanes(panes) {
    const previous = new Map(this.panes.map((pane) => [pane.key, pane]));
    this.epochs = [...new Set(panes.flatMap((p) => (p.steps || []).map((s) => s.step)))].sort((a, b) => a - b);
    if (this.state.epoch === null) this.state.epoch = this.shownEpoch();
    const columns = panes.map((pane, index) => {
      pane.key = this.paneKey(pane, index, panes.length);
      const same = previous.get(pane.key);
      if (!same) return this.buildPane(pane, index, panes.length > 1);
      // Nothing visible changed (e.g. a refresh that only added epochs): keep the DOM.
      previous.delete(pane.key);
      for (const key of ['element', 'cards', 'count', 'note', 'banner']) pane[key] = same[key];
      for (const card of pane.cards || []) card.pane = pane;
      return pane.element;
    });
    for (const old of previous.values()) for (const card of old.cards || []) this.observer.unobserve(card.button);
    this.panes = panes;
    this.ui.intro.replaceChildren(...V.viewIntro(panes.find((p) => p.layer) || panes[0], this.state));
    const host = this.ui.panesHost;
    const container = host.firstElementChild;
    const unchanged = container?.classList.contains('panes') && container.children.length === columns.length &&
      columns.every((column, i) => container.children[i] === column);
    if (!unchanged) host.replaceChildren(V.h('div', { class: `panes panes-${panes.length}` }, columns));
  }

  /** What a pane's DOM depends on: equal keys mean the old cards can be kept. */
  paneKey(pane, index, total) {
    const step = pane.steps ? pane.steps[nearestStepIndex(pane.steps, this.state.epoch ?? 0)] : null;
    const count = step ? itemCount(pane.family, step, this.state) : null;
    const problem = pane.error ? pane.error.message : pane.message;
    return JSON.stringify([index, total, pane.run.name, pane.tag, this.state.layer, pane.family,
      this.state.probe, count, problem, pane.probeUrls.length]);
  }

  buildPane(pane, index, titled) {
    pane.note = V.h('span', { class: 'pane-note' });
    pane.banner = V.h('p', { class: 'pane-banner', hidden: true, attrs: { role: 'alert' } });
    const head = titled ? V.h('header', { class: 'pane-head' }, V.h('h2', { text: pane.run.name }), pane.note) : null;
    let body;
    if (pane.error) {
      body = V.message('error', `Could not load ${pane.tag}`, pane.error.message, this.retryButton(() => this.update()));
    } else if (pane.message) {
      const jumps = (pane.jump || []).map((name) =>
        V.h('button', { class: 'chip', text: name, on: { click: () => this.set({ layer: name }, true) } }));
      body = V.message('info', pane.message[0], pane.message[1], jumps.length ? V.h('div', { class: 'chips' }, jumps) : null);
    } else {
      const step = pane.steps[nearestStepIndex(pane.steps, this.state.epoch ?? 0)];
      const ctx = this.ctx(pane);
      pane.count = itemCount(pane.family, step, ctx);
      const label = (i) => `Open ${itemName(pane.family, i, step, ctx).toLowerCase()}`;
      const open = (i) => this.detail.open(index, i, this.doc.activeElement);
      const withProbe = pane.family === 'projection' && pane.probeUrls.length > 0;
      const grid = V.buildGrid(pane.count, this.state.size, label, open, withProbe);
      pane.cards = grid.cards;
      for (const card of pane.cards) {
        card.pane = pane;
        card.button.cardRef = card;
        this.observer.observe(card.button);
      }
      body = grid.element;
    }
    pane.element = V.h('section', { class: 'pane', attrs: { 'aria-label': pane.run.name } }, head, pane.banner, body);
    return pane.element;
  }

  /** Run and compare selects, view tabs and the layer list. */
  syncControls(run) {
    const names = this.runs.map((r) => r.name);
    V.setRunOptions(this.ui.runSelect, names, this.state.run);
    V.setRunOptions(this.ui.compareSelect, names.filter((n) => n !== this.state.run), this.state.compare, 'None');
    this.ui.compareSelect.disabled = names.length < 2;
    const layer = run.layers.find((l) => l.name === this.state.layer);
    const logged = new Set(layer ? layer.tags.keys() : []);
    V.keepFocus(this.ui.tabs, () =>
      V.setTabs(this.ui.tabs, run.kinds.map(viewOf), this.state.kind, logged, (kind) => this.selectKind(kind)));
    V.keepFocus(this.ui.layerList, () =>
      V.setLayers(this.ui.layerList, run.layers, this.state.layer, this.state.kind, (name) => this.set({ layer: name }, true)));
  }

  /** The options row of the current view (rebuilt only when the view or probes change). */
  syncOptions() {
    const pane = this.panes.find((p) => p.steps) || this.panes[0];
    const family = viewOf(this.state.kind).family;
    const probeCount = pane ? pane.probeUrls.length : 0;
    const key = JSON.stringify([family, probeCount, this.state.probe, this.state.run]);
    if (key === this.optionsKey) return;
    this.optionsKey = key;
    let picker = null;
    if (family === 'feature_maps' && probeCount) {
      const names = pane.run.classNames;
      const label = (i) => (pane.probeLabels && names ? String(names[pane.probeLabels[i]] ?? '') : '');
      picker = V.probePicker(probeCount, this.state.probe, label, (i) => this.set({ probe: i }, true));
      picker.canvases.forEach((canvas, i) => {
        this.store.bitmap(pane.probeUrls[i]).then((bitmap) => V.paintBitmap(canvas, bitmap), () => V.paintFailed(canvas));
      });
    }
    V.keepFocus(this.ui.options, () =>
      V.setOptions(this.ui.options, family, this.state, (name, value) => this.set({ [name]: value }), picker?.element));
  }

  syncEpochBar() {
    const { slider, ticks, epochValue, epochRange, epochNote, prev, next, play } = this.ui;
    const n = this.epochs.length;
    const shown = this.shownEpoch();
    const index = Math.max(0, this.epochs.indexOf(shown));
    slider.max = String(Math.max(0, n - 1));
    slider.value = String(index);
    slider.disabled = n < 2;
    slider.setAttribute('aria-valuetext', `Epoch ${shown ?? '–'}`);
    if (ticks.childElementCount !== (n <= 60 ? n : 0)) {
      ticks.replaceChildren(...this.epochs.slice(0, n <= 60 ? n : 0).map((_, i) => V.h('option', { value: String(i) })));
    }
    epochValue.textContent = shown === null ? '–' : String(shown);
    epochRange.textContent = n ? `/ ${this.epochs[n - 1]}` : '';
    prev.disabled = index <= 0;
    next.disabled = index >= n - 1;
    play.disabled = n < 2;
    const pane = this.panes.find((p) => p.steps);
    const step = pane ? pane.steps[nearestStepIndex(pane.steps, shown ?? 0)] : null;
    const when = step?.wallTime ? new Date(step.wallTime * 1000).toLocaleTimeString() : '';
    epochNote.textContent = shown === 0 ? 'untrained network' : when ? `logged ${when}` : '';
    this.doc.body.dataset.epoch = String(shown ?? '');
  }

  setEpoch(epoch, fromPlay = false) {
    if (epoch === undefined || epoch === null) return Promise.resolve();
    if (!fromPlay) this.stopPlay();
    this.switchStart = performance.now();
    this.state.epoch = epoch;
    saveState(this.state, SAVED);
    this.syncEpochBar();
    return this.paint();
  }

  step(delta) {
    const index = this.epochs.indexOf(this.shownEpoch()) + delta;
    if (index >= 0 && index < this.epochs.length) this.setEpoch(this.epochs[index]);
  }

  togglePlay() {
    if (this.playing) return this.stopPlay();
    if (this.epochs.length < 2) return;
    this.playing = true;
    this.ui.play.textContent = '❚❚';
    this.ui.play.setAttribute('aria-label', 'Pause');
    this.ui.root.classList.add('playing');
    const tick = async () => {
      if (!this.playing) return;
      const index = this.epochs.indexOf(this.shownEpoch());
      if (index >= this.epochs.length - 1) return this.stopPlay();
      await this.setEpoch(this.epochs[index + 1], true);
      this.playTimer = setTimeout(tick, PLAY_INTERVAL_MS);
    };
    const atEnd = this.epochs.indexOf(this.shownEpoch()) >= this.epochs.length - 1;
    if (!atEnd) return tick();
    return this.setEpoch(this.epochs[0], true).then(() => {
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

  async repaint() {
    const token = ++this.paintToken;
    const switching = this.switchStart !== null && this.switchStart !== undefined;
    const start = switching ? this.switchStart : performance.now();
    this.switchStart = null;
    const shown = this.shownEpoch();
    const jobs = [];
    for (const pane of this.panes) {
      if (!pane.cards) continue;
      pane.step = pane.steps[nearestStepIndex(pane.steps, this.state.epoch ?? 0)];
      pane.note.textContent = pane.step.step === shown ? '' : `showing epoch ${pane.step.step}`;
      for (const card of pane.cards) jobs.push(this.paintCard(card));
    }
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
    this.prefetch();
  }

  /** Caption now; pixels now if the card is on screen, else when it scrolls into view. */
  async paintCard(card) {
    const { pane } = card;
    const ctx = this.ctx(pane);
    const caption = itemCaption(pane.family, card.index, pane.step, ctx);
    card.title.textContent = caption.title;
    card.meta.textContent = caption.meta;
    card.button.dataset.tone = caption.tone;
    card.button.dataset.badge = caption.badge;
    card.dirty = !V.onScreen(card.button);
    if (card.dirty) return;
    this.paintInset(card, ctx);
    await this.paintInto(card.canvas, pane, card.index, pane.step, card);
  }

  /** Load and draw one item into a canvas, unless a newer paint of it started meanwhile. */
  async paintInto(canvas, pane, index, step, owner) {
    const key = {};
    owner.key = key;
    const ctx = this.ctx(pane);
    try {
      const data = await V.loadItem(pane.family, index, step, ctx, this.store);
      if (owner.key === key) V.drawItem(canvas, pane.family, index, step, ctx, data);
    } catch (err) {
      if (owner.key !== key) return;
      V.paintFailed(canvas);
      if (pane.banner) {
        pane.banner.hidden = false;
        pane.banner.textContent = `Some images could not be loaded: ${err.message}`;
      }
    }
  }

  /** The probe beside a projection (drawn once: it does not change with epochs). */
  paintInset(card, ctx) {
    const url = card.inset && card.pane.probeUrls[itemProbe(card.pane.family, card.index, card.pane.step, ctx)];
    if (!url || card.insetUrl === url) return;
    card.insetUrl = url;
    this.store.bitmap(url).then((bitmap) => V.paintBitmap(card.inset, bitmap), () => {});
  }

  onVisible(entries) {
    for (const entry of entries) {
      const card = entry.target.cardRef;
      if (!entry.isIntersecting || !card?.dirty || !card.pane.step) continue;
      card.dirty = false;
      const ctx = this.ctx(card.pane);
      this.paintInset(card, ctx);
      this.paintInto(card.canvas, card.pane, card.index, card.pane.step, card);
    }
  }

  /** Warm the cache with the next epoch's images (two while playing), so stepping is instant. */
  prefetch() {
    const index = this.epochs.indexOf(this.shownEpoch());
    const upcoming = this.epochs.slice(index + 1, index + (this.playing ? 3 : 2));
    if (index < 0 || !upcoming.length) return;
    setTimeout(() => {
      for (const pane of this.panes.filter((p) => p.steps)) {
        for (const step of pane.steps.filter((s) => upcoming.includes(s.step))) {
          for (const url of itemUrls(pane.family, step, this.ctx(pane))) this.store.bitmap(url).catch(() => {});
        }
      }
    }, 0);
  }

  /** What the pixels of a card depend on besides its step (for the detail's filmstrip). */
  optionsSignature() {
    const s = this.state;
    return [s.probe, s.scaling, s.featureColormap, s.camColormap, s.opacity, s.threshold, s.gain].join('|');
  }

  /** Arrow keys, Home and End move through epochs; space plays (outside form controls). */
  onKey(event, inDialog) {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return;
    const target = event.target;
    if (['INPUT', 'SELECT', 'TEXTAREA'].includes(target.tagName)) return;
    if (!inDialog && this.ui.dialog.open) return;
    const moves = { ArrowLeft: -1, ArrowRight: 1 };
    if (event.key in moves) this.step(moves[event.key]);
    else if (event.key === 'Home') this.setEpoch(this.epochs[0]);
    else if (event.key === 'End') this.setEpoch(this.epochs.at(-1));
    else if (event.key === ' ' && !inDialog && target === this.doc.body) this.togglePlay();
    else return;
    event.preventDefault();
  }

  /** Look for new runs and epochs; redraw only if something changed, keeping the place. */
  async refresh() {
    if (this.refreshing) return;
    this.refreshing = true;
    try {
      const changed = await this.store.refresh();
      this.setStatus(`Live · checked ${new Date().toLocaleTimeString()}`);
      if (changed) {
        const hadRuns = this.runs.length > 0;
        this.runs = await this.store.runs();
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
