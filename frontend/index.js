// The cnnvis dashboard: TensorBoard imports this module in the plugin's iframe and calls
// render(). The App owns the page state (run, layer, view, epoch, display options) and
// decides what to fetch (store.js) and when to redraw: controls.js keeps the controls in
// step, panes.js draws the cards, detail.js the detail dialog. Each of them is given the
// AppInterface below, and nothing else of the App.

import { Controls } from './controls.js';
import { h } from './dom.js';
import { Detail } from './detail.js';
import { exploreButton } from './explore.js';
import { listenForReloads, loadState, loadStylesheets, saveState, watchTheme } from './host.js';
import { Board, loadPane } from './panes.js';
import { DEFAULTS, layerFor, normalize, optionsSignature, SAVED, shownEpoch } from './selection.js';
import { Store } from './store.js';
import * as V from './views.js';
// Modules deep in the import graph, imported here as well so that the browser asks for them
// in its first round of module requests: each level of the graph is a round trip.
import './apng.js';
import './colormaps.js';
import './families.js';
import './format.js';

const POLL_SECONDS = 10;
/** The stylesheets, one per part of the page, loaded side by side (cascade in this order). */
const STYLESHEETS = ['style.css', 'layers.css', 'controls.css', 'cards.css', 'metrics.css', 'detail.css', 'top_examples.css'];

/**
 * What the App lends the parts of the page (Controls, Board, Detail): the only way they
 * read the page's state and ask for changes. Built once by the App (appInterface()).
 *
 * @typedef {object} AppInterface
 * @property {Document} doc the iframe's document.
 * @property {object} ui the page skeleton's elements (views.js buildShell()).
 * @property {object} state the page state: run, compare, layer, kind, epoch, probe, size and
 *     every family's settings. Read it; change it only through set().
 * @property {Store} store fetching and caching of /tags, /steps and images.
 * @property {Array<object>} runs (read-only) the runs of /tags (model.js organizeRuns()).
 * @property {Array<object>} panes (read-only) the panes shown (panes.js loadPane()).
 * @property {Array<number>} epochs (read-only) the logged epochs of the view, in order.
 * @property {function(): ?number} shownEpoch the epoch shown: the newest logged at or
 *     before the chosen one.
 * @property {function(object): object} ctx ctx(pane): what a family's members read of the
 *     page and the pane (see families.js).
 * @property {function(object, boolean=): Promise<void>} set set(changes, structural):
 *     change the state, save it, and repaint (rebuild the panes if structural).
 * @property {function(object): void} remember remember(changes): change state that no
 *     pixel depends on (the layer list's filter) and save it, without redrawing.
 * @property {function(string): Promise<void>} selectKind switch view, moving to the nearest
 *     layer that has it if the current one does not.
 * @property {function(): Promise<void>} update rebuild the controls and panes, then paint.
 * @property {function(): void} startSwitchTimer the next paint is an epoch switch: time it.
 * @property {function(number, boolean=): Promise<void>} setEpoch setEpoch(epoch, fromPlay):
 *     show an epoch (stops playback unless fromPlay).
 * @property {function(number, number): Promise<void>} openDetail openDetail(paneIndex,
 *     item): open the detail of an item; the focus comes back to where it was.
 * @property {function(HTMLCanvasElement, object, number, object, object): Promise<void>}
 *     paintInto paintInto(canvas, pane, index, step, owner): load and draw one item.
 * @property {function(): string} optionsSignature what pixels depend on besides the step.
 * @property {function(Function): HTMLElement} retryButton a 'Retry' button that calls its
 *     argument.
 */

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
    this.state = { ...DEFAULTS, ...loadState(SAVED) };
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
    // /tags and the first view's steps are fetched while the stylesheets load; the page
    // stays hidden until they apply, and cards are laid out only then (rebuild()).
    const runs = this.store.runs();
    const styled = loadStylesheets(this.doc, STYLESHEETS.map((name) => `./${name}`));
    const app = this.appInterface();
    this.controls = new Controls(app);
    this.ui = V.buildShell({
      // A view at the newest epoch shows the newest of the run chosen too.
      run: (name) => this.set({ run: name, ...(this.controls.atNewest() ? { epoch: null } : {}) }, true),
      compare: (name) => this.set({ compare: name }, true),
      epochIndex: (i) => this.controls.setEpoch(this.epochs[i]),
      play: () => this.controls.togglePlay(),
      step: (delta) => this.controls.step(delta),
      refresh: () => this.refresh(),
    });
    this.ui.root.hidden = true;
    this.styled = styled.then(() => {
      this.ui.root.hidden = false;
    });
    this.doc.body.replaceChildren(this.ui.root);
    (this.ui.root.querySelector('.topbar') || this.ui.root).append(exploreButton(this.doc, () => this.state.run)); // explore.js
    this.board = new Board(app);
    this.detail = new Detail(app);
    this.ui.dialog.addEventListener('keydown', (e) => this.controls.onKey(e, true));
    this.doc.addEventListener('keydown', (e) => this.controls.onKey(e, false));
    watchTheme(this.doc);
    listenForReloads(() => {
      this.reloads += 1;
      this.refresh();
    });
    setInterval(() => this.doc.hidden || this.refresh(), POLL_SECONDS * 1000);
    await this.load(runs);
  }

  /**
   * The interface the parts of the page are given (see AppInterface).
   *
   * @returns {AppInterface} a frozen object: parts cannot add to it or replace members.
   */
  appInterface() {
    const app = this;
    return Object.freeze({
      doc: this.doc,
      get ui() {
        return app.ui;
      },
      state: this.state,
      store: this.store,
      get runs() {
        return app.runs;
      },
      get panes() {
        return app.panes;
      },
      get epochs() {
        return app.epochs;
      },
      shownEpoch: () => this.shownEpoch(),
      ctx: (pane) => this.ctx(pane),
      set: (changes, structural = false) => this.set(changes, structural),
      remember: (changes) => {
        Object.assign(this.state, changes);
        this.save();
      },
      selectKind: (kind) => this.selectKind(kind),
      update: () => this.update(),
      startSwitchTimer: () => {
        this.switchStart = performance.now();
      },
      setEpoch: (epoch, fromPlay = false) => this.controls.setEpoch(epoch, fromPlay),
      openDetail: (paneIndex, item) => this.detail.open(paneIndex, item, this.doc.activeElement),
      paintInto: (canvas, pane, index, step, owner) => this.board.paintInto(canvas, pane, index, step, owner),
      optionsSignature: () => optionsSignature(this.state),
      retryButton: (action) => this.retryButton(action),
    });
  }

  /** Whether playback is running (for tests and benchmarks). */
  get playing() {
    return this.controls.playing;
  }

  setStatus(text) {
    this.ui.status.textContent = text;
  }

  /** First load (of `runs`, if already asked for), and reload after an error: the runs, then the current view. */
  async load(runs = this.store.runs()) {
    this.setStatus('Loading…');
    this.doc.body.dataset.state = 'loading';
    try {
      this.runs = await runs;
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

  /** Remember the selection for this browser tab; at the newest epoch, remember to follow it. */
  save() {
    const following = this.epochs.length > 0 && this.controls.atNewest();
    saveState({ ...this.state, epoch: following ? null : this.state.epoch }, SAVED);
  }

  /**
   * Change state and redraw: `structural` changes rebuild the panes, the rest repaint (and
   * rebuild too when the epoch chosen holds a different number of items).
   */
  set(changes, structural = false) {
    Object.assign(this.state, changes);
    this.save();
    if (structural || ('epoch' in changes && this.board.stale())) return this.update();
    if ('size' in changes) {
      for (const grid of this.ui.panesHost.querySelectorAll('.grid')) grid.style.setProperty('--tile', `${changes.size}px`);
    }
    return this.paint();
  }

  /** Switch view; if the current layer lacks it, go to the nearest layer that has it. */
  selectKind(kind) {
    const run = this.runByName(this.state.run);
    const family = run.views.get(kind)?.family.name;
    const methods = family ? { ...this.state.methods, [family]: kind } : this.state.methods;
    return this.set({ kind, methods, layer: layerFor(run, this.state.layer, kind) }, true);
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
    const run = normalize(this.state, this.runs);
    this.controls.syncSelectors(run);
    const names = [this.state.run, this.state.compare].filter(Boolean);
    const spinner = setTimeout(() => {
      if (token !== this.token) return;
      const count = run.layers.find((l) => l.name === this.state.layer)?.outputShape?.[2];
      this.ui.panesHost.replaceChildren(V.loadingState(`Loading ${this.state.layer}…`, count, this.state.size));
    }, 150);
    const panes = await Promise.all(names.map((name) => loadPane(this.store, this.runByName(name), this.state)));
    await this.styled;
    clearTimeout(spinner);
    if (token !== this.token) return;
    this.epochs = [...new Set(panes.flatMap((p) => (p.steps || []).map((s) => s.step)))].sort((a, b) => a - b);
    if (this.state.epoch === null || (this.followNewest && this.epochs.length)) {
      this.state.epoch = this.epochs.at(-1) ?? null;
      this.save();
    }
    this.followNewest = false;
    this.panes = this.board.build(panes, this.ui.panesHost);
    this.controls.syncOptions();
    this.controls.syncEpochBar();
    this.doc.body.dataset.state = 'ready';
    this.detail.sync();
    await this.paint();
  }

  ctx(pane) {
    const { classNames } = pane.run;
    return { ...this.state, classNames, probeUrls: pane.probeUrls, probeLabels: pane.probeLabels, classOrder: pane.classOrder };
  }

  /** The step shown: the newest logged epoch at or before the chosen one. */
  shownEpoch() {
    return shownEpoch(this.epochs, this.state.epoch);
  }

  async repaint() {
    const token = ++this.paintToken;
    const switching = this.switchStart !== null && this.switchStart !== undefined;
    const start = switching ? this.switchStart : performance.now();
    this.switchStart = null;
    const shown = this.shownEpoch();
    // The intro may say what the step shown stores (e.g. a subset of a layer's channels).
    // With runs compared, each pane's head says what its own steps store.
    const first = this.panes.find((p) => p.layer) || this.panes[0];
    this.ui.intro.replaceChildren(...V.viewIntro(first, this.state, this.panes.length < 2));
    const jobs = this.board.paint(shown);
    if (this.detail.isOpen) jobs.push(this.detail.paint());
    await Promise.all(jobs);
    if (token !== this.paintToken) return;
    if (this.timings.firstPaint === null && this.panes.some((p) => p.dom?.cards)) {
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
