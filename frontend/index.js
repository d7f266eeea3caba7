// The cnnvis dashboard: TensorBoard imports this module in the plugin's iframe and calls
// render(). It owns the page state (run, layer, view, epoch, display options) and decides
// what to fetch (model.js) and what to draw (views.js).

import {
  itemCaption,
  itemCount,
  itemFacts,
  itemName,
  itemProbe,
  itemUrls,
  nearestStepIndex,
  Store,
  viewOf,
} from './model.js';
import * as V from './views.js';

const POLL_SECONDS = 10;
const PLAY_INTERVAL_MS = 700;
const STORAGE_KEY = 'cnnvis.state';
const SAVED = ['run', 'compare', 'layer', 'kind', 'epoch', 'probe', 'scaling', 'featureColormap',
  'camColormap', 'opacity', 'threshold', 'size'];

/**
 * Draw the dashboard into the current document (TensorBoard's plugin iframe).
 *
 * @returns {Promise<object>} the running app (also at window.cnnvis, for tests and benchmarks).
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
      threshold: 0.1, size: 112,
    };
    this.restore();
    this.runs = [];
    this.panes = [];
    this.epochs = [];
    this.detail = null;
    this.playing = false;
    this.token = 0;
    this.paintToken = 0;
    this.inflight = new Set();
    this.timings = { firstPaint: null, switches: [] };
    this.observer = new IntersectionObserver((entries) => this.onVisible(entries), { rootMargin: '200px' });
  }

  async start() {
    await this.loadStyle();
    this.ui = V.buildShell({
      run: (name) => this.set({ run: name }, true),
      compare: (name) => this.set({ compare: name }, true),
      epochIndex: (i) => this.setEpoch(this.epochs[i]),
      play: () => this.togglePlay(),
      step: (delta) => this.step(delta),
      refresh: () => this.refresh(),
    });
    this.doc.body.replaceChildren(this.ui.root);
    this.ui.dialog.addEventListener('close', () => this.closeDetail());
    this.ui.dialog.addEventListener('keydown', (e) => this.onDialogKey(e));
    this.doc.addEventListener('keydown', (e) => this.onKey(e));
    this.watchTheme();
    this.listenForReloads();
    setInterval(() => this.doc.hidden || this.refresh(), POLL_SECONDS * 1000);
    await this.load();
  }

  /** Add style.css (relative to the plugin's base URL) and wait for it. */
  loadStyle() {
    const link = this.doc.createElement('link');
    link.rel = 'stylesheet';
    link.href = './style.css';
    const done = new Promise((resolve) => {
      link.onload = resolve;
      link.onerror = resolve;
    });
    this.doc.head.append(link);
    return done;
  }

  /** Follow TensorBoard's theme: the parent page's body class dark-mode, else the OS. */
  watchTheme() {
    const root = this.doc.documentElement;
    const apply = (dark) => {
      root.dataset.theme = dark ? 'dark' : 'light';
    };
    let hostBody = null;
    try {
      if (window.parent !== window) hostBody = window.parent.document.body;
    } catch {
      hostBody = null; // A cross-origin parent: fall back to the OS preference.
    }
    if (hostBody) {
      const check = () => apply(hostBody.classList.contains('dark-mode'));
      new MutationObserver(check).observe(hostBody, { attributes: true, attributeFilter: ['class'] });
      check();
    } else {
      const query = window.matchMedia('(prefers-color-scheme: dark)');
      query.addEventListener('change', (e) => apply(e.matches));
      apply(query.matches);
    }
  }

  /** Join TensorBoard's plugin message channel to hear experimental.DataReloaded. */
  listenForReloads() {
    if (window.parent === window) return;
    const channel = new MessageChannel();
    channel.port1.onmessage = (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (!message || message.isReply) return;
      if (message.type === 'experimental.DataReloaded') this.refresh();
      const reply = { type: message.type, id: message.id, payload: null, error: null, isReply: true };
      channel.port1.postMessage(JSON.stringify(reply));
    };
    window.parent.postMessage('experimental.bootstrap', window.location.origin, [channel.port2]);
  }

  restore() {
    try {
      const saved = JSON.parse(window.sessionStorage.getItem(STORAGE_KEY) || '{}');
      for (const key of SAVED) if (key in saved) this.state[key] = saved[key];
    } catch {
      // Storage may be unavailable or hold something else: start from the defaults.
    }
  }

  save() {
    try {
      const saved = Object.fromEntries(SAVED.map((key) => [key, this.state[key]]));
      window.sessionStorage.setItem(STORAGE_KEY, JSON.stringify(saved));
    } catch {
      // Not saving the place is harmless.
    }
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
      this.showPageMessage(
        V.message('error', 'Could not load the list of runs', err.message, this.retryButton(() => this.load())),
        'error',
      );
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
    this.ui.content.replaceChildren(node);
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
    this.save();
    if (structural) return this.update();
    if ('size' in changes) {
      for (const grid of this.ui.content.querySelectorAll('.grid')) grid.style.setProperty('--tile', `${changes.size}px`);
    }
    return this.paint();
  }

  /** Switch view; if the current layer lacks it, go to the nearest layer that has it. */
  selectKind(kind) {
    const run = this.runByName(this.state.run);
    const current = run.layers.findIndex((l) => l.name === this.state.layer);
    const having = run.layers
      .map((layer, index) => ({ layer, distance: Math.abs(index - current) }))
      .filter(({ layer }) => layer.tags.has(kind))
      .sort((a, b) => a.distance - b.distance);
    const keep = current >= 0 && run.layers[current].tags.has(kind);
    const layer = keep || !having.length ? this.state.layer : having[0].layer.name;
    return this.set({ kind, layer }, true);
  }

  /** Rebuild controls and panes for the current selection, then paint. */
  update() {
    return this.track(this.rebuild());
  }

  /** Paint every visible card (and the detail) at the current epoch; time it. */
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
      if (token === this.token) {
        const count = run.layers.find((l) => l.name === this.state.layer)?.outputShape?.[2];
        this.ui.content.replaceChildren(V.loadingState(`Loading ${this.state.layer}…`, count, this.state.size));
      }
    }, 150);
    const panes = await Promise.all(names.map((name) => this.loadPane(this.runByName(name))));
    clearTimeout(spinner);
    if (token !== this.token) return;
    this.buildPanes(panes);
    this.syncOptions();
    this.syncEpochBar();
    this.doc.body.dataset.state = 'ready';
    if (this.detail) {
      const pane = this.panes[this.detail.pane];
      if (!pane?.steps || pane.steps.length !== this.detail.view.frames.length) this.renderDetail();
    }
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
      const others = run.layers.filter((l) => l.tags.has(view.kind)).map((l) => l.name);
      pane.message = [
        `${view.label} not logged for ${layer.name}`,
        others.length ? `Logged for: ${others.join(', ')}.` : `No layer of "${run.name}" has it.`,
      ];
      pane.jump = others;
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
    pane.steps = steps.value;
    if (!pane.steps.length) {
      pane.message = ['No epochs yet', `${pane.tag} has no logged steps.`];
      pane.steps = null;
    }
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

  /** The panes' DOM: one column per run, each a grid of cards or a message. */
  buildPanes(panes) {
    const previous = new Map(this.panes.map((pane) => [pane.key, pane]));
    const epochs = new Set(panes.flatMap((p) => (p.steps || []).map((step) => step.step)));
    this.epochs = [...epochs].sort((a, b) => a - b);
    const s = this.state;
    if (this.epochs.length && (s.epoch === null || !epochs.has(s.epoch))) {
      const asSteps = this.epochs.map((step) => ({ step }));
      s.epoch = s.epoch === null ? this.epochs.at(-1) : this.epochs[nearestStepIndex(asSteps, s.epoch)];
    }
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
    const container = this.ui.content.firstElementChild;
    const unchanged =
      container?.classList.contains('panes') &&
      container.children.length === columns.length &&
      columns.every((column, i) => container.children[i] === column);
    if (!unchanged) this.ui.content.replaceChildren(V.h('div', { class: `panes panes-${panes.length}` }, columns));
  }

  /** What a pane's DOM depends on: equal keys mean the old cards can be kept. */
  paneKey(pane, index, total) {
    let count = null;
    if (pane.steps) count = itemCount(pane.family, pane.steps[nearestStepIndex(pane.steps, this.state.epoch ?? 0)], this.state);
    const problem = pane.error ? pane.error.message : pane.message;
    return JSON.stringify([index, total, pane.run.name, pane.tag, pane.family, this.state.probe, count, problem, this.state.layer]);
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
        V.h('button', { class: 'chip', text: name, on: { click: () => this.set({ layer: name }, true) } }),
      );
      body = V.message('info', pane.message[0], pane.message[1], jumps.length ? V.h('div', { class: 'chips' }, jumps) : null);
    } else {
      const step = pane.steps[nearestStepIndex(pane.steps, this.state.epoch ?? 0)];
      const ctx = this.ctx(pane);
      const count = itemCount(pane.family, step, ctx);
      const grid = V.buildGrid(count, this.state.size, (i) => `Open ${itemName(pane.family, i, step, ctx).toLowerCase()}`, (i) => this.openDetail(index, i), pane.family === 'projection' && pane.probeUrls.length > 0);
      pane.cards = grid.cards;
      pane.count = count;
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
    const views = run.kinds.map(viewOf);
    keepFocus(this.ui.tabs, () =>
      V.setTabs(this.ui.tabs, views, this.state.kind, new Set(layer ? layer.tags.keys() : []), (kind) => this.selectKind(kind)),
    );
    keepFocus(this.ui.layerList, () =>
      V.setLayers(this.ui.layerList, run.layers, this.state.layer, this.state.kind, (name) => this.set({ layer: name }, true)),
    );
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
      const classNames = pane.run.classNames;
      const label = (i) => (pane.probeLabels && classNames ? String(classNames[pane.probeLabels[i]] ?? '') : '');
      picker = V.probePicker(probeCount, this.state.probe, label, (i) => this.set({ probe: i }, true));
      picker.canvases.forEach((canvas, i) => {
        this.store.bitmap(pane.probeUrls[i]).then((bitmap) => V.paintBitmap(canvas, bitmap)).catch(() => V.paintFailed(canvas));
      });
    }
    keepFocus(this.ui.options, () =>
      V.setOptions(this.ui.options, family, this.state, (key2, value) => this.set({ [key2]: value }), picker?.element),
    );
  }

  syncEpochBar() {
    const { slider, epochValue, epochRange, epochNote, prev, next, play } = this.ui;
    const n = this.epochs.length;
    const index = Math.max(0, this.epochs.indexOf(this.state.epoch));
    slider.max = String(Math.max(0, n - 1));
    if (this.ui.ticks.childElementCount !== n) {
      const count = n <= 60 ? n : 0;
      this.ui.ticks.replaceChildren(...Array.from({ length: count }, (_, i) => V.h('option', { value: String(i) })));
    }
    slider.value = String(index);
    slider.disabled = n < 2;
    slider.setAttribute('aria-valuetext', `Epoch ${this.state.epoch ?? '–'}`);
    epochValue.textContent = this.state.epoch === null ? '–' : String(this.state.epoch);
    epochRange.textContent = n ? `/ ${this.epochs[n - 1]}` : '';
    prev.disabled = index <= 0;
    next.disabled = index >= n - 1;
    play.disabled = n < 2;
    const pane = this.panes.find((p) => p.steps);
    const step = pane ? pane.steps[nearestStepIndex(pane.steps, this.state.epoch ?? 0)] : null;
    const when = step?.wallTime ? new Date(step.wallTime * 1000).toLocaleTimeString() : '';
    epochNote.textContent = this.state.epoch === 0 ? 'untrained network' : when ? `logged ${when}` : '';
    this.doc.body.dataset.epoch = String(this.state.epoch ?? '');
  }

  setEpoch(epoch, fromPlay = false) {
    if (epoch === undefined || epoch === null) return Promise.resolve();
    if (!fromPlay) this.stopPlay();
    this.switchStart = performance.now();
    this.state.epoch = epoch;
    this.save();
    this.syncEpochBar();
    return this.paint();
  }

  step(delta) {
    const index = this.epochs.indexOf(this.state.epoch) + delta;
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
      const index = this.epochs.indexOf(this.state.epoch);
      if (index >= this.epochs.length - 1) return this.stopPlay();
      await this.setEpoch(this.epochs[index + 1], true);
      this.playTimer = setTimeout(tick, PLAY_INTERVAL_MS);
    };
    if (this.epochs.indexOf(this.state.epoch) >= this.epochs.length - 1) {
      this.setEpoch(this.epochs[0], true).then(() => {
        this.playTimer = setTimeout(tick, PLAY_INTERVAL_MS);
      });
    } else tick();
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
    const jobs = [];
    for (const pane of this.panes) {
      if (!pane.cards) continue;
      pane.stepIndex = nearestStepIndex(pane.steps, this.state.epoch ?? 0);
      pane.step = pane.steps[pane.stepIndex];
      pane.note.textContent = pane.step.step === this.state.epoch ? '' : `showing epoch ${pane.step.step}`;
      for (const card of pane.cards) jobs.push(this.paintCard(card));
    }
    if (this.detail) jobs.push(this.paintDetail());
    await Promise.all(jobs);
    if (token !== this.paintToken) return;
    const ms = performance.now() - start;
    if (this.timings.firstPaint === null && this.panes.some((p) => p.cards)) {
      this.timings.firstPaint = performance.now();
      performance.mark('cnnvis-first-paint');
    } else if (switching) {
      this.timings.switches.push({ epoch: this.state.epoch, ms });
    }
    this.doc.body.dataset.painted = String(this.state.epoch ?? '');
    this.doc.body.dataset.paints = String(Number(this.doc.body.dataset.paints || 0) + 1);
    this.prefetch();
  }

  /** Caption now; pixels now if the card is on screen, else when it scrolls into view. */
  async paintCard(card) {
    const pane = card.pane;
    const step = pane.step;
    const ctx = this.ctx(pane);
    const caption = itemCaption(pane.family, card.index, step, ctx);
    card.title.textContent = caption.title;
    card.meta.textContent = caption.meta;
    card.button.dataset.tone = caption.tone;
    card.button.dataset.badge = caption.badge;
    if (!onScreen(card.button)) {
      card.dirty = true;
      return;
    }
    card.dirty = false;
    this.paintInset(card, step, ctx);
    await this.paintInto(card.canvas, pane, card.index, step, card);
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
      pane.banner.hidden = false;
      pane.banner.textContent = `Some images could not be loaded: ${err.message}`;
    }
  }

  /** The probe in a projection card's corner (drawn once: it does not change with epochs). */
  paintInset(card, step, ctx) {
    const url = card.inset && card.pane.probeUrls[itemProbe(card.pane.family, card.index, step, ctx)];
    if (!url || card.insetUrl === url) return;
    card.insetUrl = url;
    this.store.bitmap(url).then((bitmap) => V.paintBitmap(card.inset, bitmap)).catch(() => {});
  }

  onVisible(entries) {
    for (const entry of entries) {
      if (!entry.isIntersecting) continue;
      const card = entry.target.cardRef;
      if (card?.dirty && card.pane.step) {
        card.dirty = false;
        this.paintInset(card, card.pane.step, this.ctx(card.pane));
        this.paintInto(card.canvas, card.pane, card.index, card.pane.step, card);
      }
    }
  }

  /** Warm the cache with the next epoch's images, so that stepping forward is instant. */
  prefetch() {
    const index = this.epochs.indexOf(this.state.epoch);
    const next = this.epochs[index + 1];
    if (next === undefined) return;
    const idle = window.requestIdleCallback || ((fn) => setTimeout(fn, 50));
    idle(() => {
      for (const pane of this.panes) {
        if (!pane.steps) continue;
        const step = pane.steps.find((s) => s.step === next);
        if (step) for (const url of itemUrls(pane.family, step, this.ctx(pane))) this.store.bitmap(url).catch(() => {});
      }
    });
  }

  openDetail(paneIndex, item) {
    this.detail = { pane: paneIndex, item, returnFocus: this.doc.activeElement };
    this.renderDetail();
    if (!this.ui.dialog.open) this.ui.dialog.showModal();
    this.paintDetail();
  }

  renderDetail() {
    const detail = this.detail;
    const pane = this.panes[detail.pane];
    if (!pane || !pane.steps) {
      this.ui.dialog.close();
      return;
    }
    detail.item = Math.min(detail.item, pane.count - 1);
    const withProbe = pane.family !== 'filter_patterns' && pane.probeUrls.length > 0;
    detail.view = V.buildDetail(
      {
        close: () => this.ui.dialog.close(),
        item: (delta) => {
          detail.item = (detail.item + delta + pane.count) % pane.count;
          this.paintDetail();
        },
        pick: (index) => this.setEpoch(pane.steps[index].step),
      },
      pane.steps,
      withProbe,
    );
    const strip = detail.view.element.querySelector('.filmstrip');
    detail.stripObserver?.disconnect();
    detail.stripObserver = new IntersectionObserver((entries) => {
      for (const entry of entries) if (entry.isIntersecting) this.paintFrame(entry.target.frameRef);
    }, { root: strip, rootMargin: '0px 200px' });
    for (const frame of detail.view.frames) {
      frame.button.frameRef = frame;
      detail.stripObserver.observe(frame.button);
    }
    this.ui.dialog.replaceChildren(detail.view.element);
  }

  paintFrame(frame) {
    const detail = this.detail;
    if (!detail || !frame) return;
    const pane = this.panes[detail.pane];
    const want = JSON.stringify([detail.item, this.optionsSignature()]);
    if (frame.painted === want) return;
    frame.painted = want;
    this.paintInto(frame.canvas, pane, detail.item, pane.steps[frame.index], frame);
  }

  optionsSignature() {
    const s = this.state;
    return [s.probe, s.scaling, s.featureColormap, s.camColormap, s.opacity, s.threshold].join('|');
  }

  async paintDetail() {
    const detail = this.detail;
    const pane = this.panes[detail?.pane];
    if (!detail || !pane?.steps) return;
    const view = detail.view;
    const index = nearestStepIndex(pane.steps, this.state.epoch ?? 0);
    const step = pane.steps[index];
    const ctx = this.ctx(pane);
    view.title.textContent = itemName(pane.family, detail.item, step, ctx);
    view.subtitle.textContent = `${pane.run.name} · ${pane.layer.name} · ${pane.view.label}`;
    view.epoch.textContent = `Epoch ${step.step}`;
    V.setFacts(view.facts, itemFacts(pane.family, detail.item, step, ctx));
    for (const frame of view.frames) {
      const current = frame.index === index;
      frame.button.setAttribute('aria-current', String(current));
      if (current && frame.button.isConnected) frame.button.scrollIntoView({ block: 'nearest', inline: 'nearest' });
      if (frame.button.isConnected && onScreen(frame.button)) this.paintFrame(frame);
    }
    const jobs = [this.paintInto(view.big, pane, detail.item, step, view)];
    const probe = itemProbe(pane.family, detail.item, step, ctx);
    if (view.probe && pane.probeUrls[probe]) {
      jobs.push(this.store.bitmap(pane.probeUrls[probe]).then((bitmap) => V.paintBitmap(view.probe, bitmap)));
    }
    await Promise.all(jobs);
  }

  closeDetail() {
    const focus = this.detail?.returnFocus;
    this.detail?.stripObserver?.disconnect();
    this.detail = null;
    if (focus?.isConnected) focus.focus();
  }

  onKey(event) {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return;
    const target = event.target;
    if (['INPUT', 'SELECT', 'TEXTAREA'].includes(target.tagName) || this.ui.dialog.open) return;
    if (this.handleEpochKey(event)) return;
    if (event.key === ' ' && (target === this.doc.body || target.classList.contains('epoch-bar'))) {
      event.preventDefault();
      this.togglePlay();
    }
  }

  onDialogKey(event) {
    if (['INPUT', 'SELECT'].includes(event.target.tagName)) return;
    this.handleEpochKey(event);
  }

  handleEpochKey(event) {
    const moves = { ArrowLeft: -1, ArrowRight: 1 };
    if (event.key in moves) this.step(moves[event.key]);
    else if (event.key === 'Home') this.setEpoch(this.epochs[0]);
    else if (event.key === 'End') this.setEpoch(this.epochs.at(-1));
    else return false;
    event.preventDefault();
    return true;
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

/** Whether an element is (nearly) inside the visible part of the page. */
function onScreen(element) {
  const rect = element.getBoundingClientRect();
  return rect.width > 0 && rect.bottom > -200 && rect.top < window.innerHeight + 200;
}

/** Run a rebuild of a container's children and give focus back to the same position. */
function keepFocus(container, rebuild) {
  const active = container.ownerDocument.activeElement;
  const focusable = () => [...container.querySelectorAll('button, select, input')];
  const index = container.contains(active) ? focusable().indexOf(active) : -1;
  rebuild();
  if (index >= 0) focusable()[index]?.focus();
}

