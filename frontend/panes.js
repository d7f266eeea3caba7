// The panes: one column per run (two when comparing), each a metrics bar and a grid of cards
// for the current layer and view. loadPane fetches a pane's data; Board builds the panes'
// DOM and paints the cards (lazily: a card off screen is painted when it scrolls into view).

import { h, onScreen } from './dom.js';
import { shortName } from './format.js';
import { setMetricsBar } from './metrics.js';
import { nearestStepIndex } from './model.js';
import { paintBitmap, paintDone, paintFailed } from './paint.js';
import { cardItems, classOrder, predicts, predictionsTag, probeFilter, visibleFacts } from './subset.js';
import * as V from './views.js';

/**
 * Fetch one run's series for the current layer and view, and its probe images.
 *
 * @param {Store} store the page's store.
 * @param {object} run a run from organizeRuns().
 * @param {{kind: string, layer: string, probeFilter: string}} state the view and layer
 *     chosen, and the probe filter.
 * @returns {Promise<object>} a pane: {run, layer, view, family, tag, steps, probeUrls,
 *     probeLabels, predictionsTag, predictions, classOrder (subset.js)}, with `message` ([title, text], `tone` 'info'
 *     or 'error', and `jump`, the layers that have the view) or `error` when there is nothing
 *     to draw. For a view about probes whose steps store no predictions, `predictionsTag` is
 *     a tag of the run that does, and `predictions` its steps once the probe filter is on.
 * @example const pane = await loadPane(store, runs[0], {kind: 'grad_cam', layer: 'conv3'});
 */
export async function loadPane(store, run, state) {
  const view = run.views.get(state.kind);
  const layer = run.layers.find((l) => l.name === state.layer);
  const pane = {
    run, layer, view, family: view?.family, steps: null, probeUrls: [], probeLabels: null,
    predictionsTag: null, predictions: null, tone: 'info',
  };
  if (!view) {
    pane.message = ['Nothing to show', `No view of run "${run.name}" can be shown by this dashboard.`];
    return pane;
  }
  if (!layer) {
    pane.message = ['Layer not in this run', `Run "${run.name}" has no layer "${shortName(state.layer, 80)}".`];
    return pane;
  }
  pane.tag = layer.tags.get(view.kind);
  if (!pane.tag) {
    pane.jump = run.layers.filter((l) => l.tags.has(view.kind)).map((l) => l.name);
    const where = pane.jump.length ? `Logged for: ${pane.jump.map((name) => shortName(name)).join(', ')}.` : `No layer of "${run.name}" has it.`;
    pane.message = [`${view.label} not logged for ${shortName(layer.name, 80)}`, where];
    return pane;
  }
  if (layer.unsupported.has(view.kind)) {
    pane.message = [`Cannot show ${shortName(pane.tag, 80)}`, layer.unsupported.get(view.kind)];
    pane.tone = 'error';
    return pane;
  }
  const [steps, probes] = await Promise.allSettled([
    store.steps(run.name, pane.tag),
    run.probesTag ? store.steps(run.name, run.probesTag) : Promise.resolve([]),
  ]);
  if (steps.status === 'rejected') {
    pane.error = steps.reason;
    return pane;
  }
  pane.steps = steps.value.length ? steps.value : null;
  pane.classOrder = pane.family.layout.pickClass ? classOrder(pane.steps) : null;
  if (!pane.steps) pane.message = ['No epochs yet', `${shortName(pane.tag, 80)} has no logged steps.`];
  const first = probes.status === 'fulfilled' ? probes.value[0] : null;
  if (first) {
    first.images.forEach((url, i) => {
      pane.probeUrls[first.facts.images?.[i]?.probe ?? i] = url;
    });
    pane.probeLabels = first.facts.labels || null;
  }
  if (pane.steps && pane.family.layout.filterProbes && !predicts(pane.steps)) {
    pane.predictionsTag = predictionsTag(run);
    if (pane.predictionsTag && state.probeFilter !== 'all') {
      pane.predictions = await store.steps(run.name, pane.predictionsTag).catch(() => null);
    }
  }
  return pane;
}

/** The items a step's cards show (cardItems), or none when its facts cannot place them. */
function itemsOf(pane, step, ctx) {
  try {
    return cardItems(pane.family, step, ctx);
  } catch {
    return [];
  }
}

/**
 * Why a step has no card to draw for the chosen probe: [title, sentence].
 *
 * @param {{step: number, images: string[], facts: object, factsMissing?: boolean}} step
 * @param {number} probe the probe chosen.
 * @returns {string[]}
 * @example emptyMessage({step: 2, images: ['a'], facts: {budget: {probes: 2}}}, 3)
 */
export function emptyMessage(step, probe) {
  const kept = step.facts.budget?.probes;
  if (Number.isInteger(kept) && Number.isInteger(probe) && probe >= kept) {
    const probes = kept === 1 ? 'probe 0' : `probes 0–${kept - 1}`;
    return [`Probe ${probe} was not logged at epoch ${step.step}`,
      `The cost budget kept the first ${kept} probes at this step: choose ${probes}, or another epoch.`];
  }
  return [`Nothing to draw at epoch ${step.step}`, emptyReason(step)];
}

/** Why a step has no card to draw, in a sentence. */
function emptyReason(step) {
  const images = step.images.length ? 'its images cannot be placed' : 'it holds no images';
  if (step.factsMissing) return `The facts of this step could not be read (a damaged file?), and ${images}.`;
  return step.images.length ? `The facts of this step describe no item: ${images}.` : 'This step holds no images.';
}

/** The sentences shown above a step's cards: its facts' `notes`, and whether its facts are missing. */
function stepNotes(step) {
  const notes = Array.isArray(step.facts.notes) ? step.facts.notes.map(String) : [];
  if (step.factsMissing) notes.push(`The facts of epoch ${step.step} could not be read: captions and metrics are missing.`);
  return notes;
}

/**
 * Builds the panes' DOM and paints their cards, each through its view's family.
 *
 * @example
 *   const board = new Board(app);  // app: the AppInterface (index.js)
 *   const panes = board.build(await Promise.all(runs.map((run) => loadPane(store, run, state))), host);
 *   await board.paint();
 */
export class Board {
  /** @param {AppInterface} app the page's interface; the Board uses nothing else of it. */
  constructor(app) {
    this.app = app;
    this.panes = [];
    this.observer = new IntersectionObserver((entries) => this.onVisible(entries), { rootMargin: '200px' });
  }

  /** The step of a pane shown at the chosen epoch. */
  stepOf(pane) {
    return pane.steps[nearestStepIndex(pane.steps, this.app.state.epoch ?? pane.steps.at(-1).step)];
  }

  /** Put the panes on the page, keeping the DOM of those whose content did not change. */
  build(panes, host) {
    const previous = new Map(this.panes.map((pane) => [pane.key, pane]));
    const columns = panes.map((pane, index) => {
      pane.key = this.paneKey(pane, index, panes.length);
      const same = previous.get(pane.key);
      if (!same) return this.buildPane(pane, index, panes.length > 1);
      // Nothing visible changed (e.g. a refresh that only added epochs): keep the DOM.
      previous.delete(pane.key);
      pane.dom = same.dom; // what buildPane made: the element, its parts and the cards
      for (const card of pane.dom.cards || []) card.pane = pane;
      return pane.dom.element;
    });
    for (const old of previous.values()) for (const card of old.dom?.cards || []) this.observer.unobserve(card.button);
    this.panes = panes;
    const container = host.firstElementChild;
    const unchanged = container?.classList.contains('panes') && container.children.length === columns.length &&
      columns.every((column, i) => container.children[i] === column);
    if (!unchanged) host.replaceChildren(h('div', { class: `panes panes-${panes.length}` }, columns));
    return panes;
  }

  /** What a pane's DOM depends on: equal keys mean the old cards can be kept. */
  paneKey(pane, index, total) {
    const { state } = this.app;
    const step = pane.steps ? this.stepOf(pane) : null;
    const items = step ? itemsOf(pane, step, this.app.ctx(pane)) : null;
    const problem = pane.error ? pane.error.message : pane.message;
    return JSON.stringify([index, total, pane.run.name, pane.tag, state.layer, pane.family?.name,
      state.probe, items, problem, pane.probeUrls.length]);
  }

  buildPane(pane, index, titled) {
    const { app } = this;
    pane.dom = {}; // everything built here, kept whole by build() while the key is the same
    pane.dom.note = h('span', { class: 'pane-note' });
    pane.dom.intro = h('p', { class: 'pane-intro' });
    pane.dom.banner = h('p', { class: 'pane-banner', hidden: true, attrs: { role: 'alert' } });
    pane.dom.metrics = h('div', { class: 'metrics', hidden: true, attrs: { 'aria-label': 'Metrics' } });
    pane.dom.filterNote = h('p', { class: 'pane-filter', hidden: true, attrs: { role: 'status' } });
    pane.dom.notes = h('ul', { class: 'step-notes', hidden: true, attrs: { 'aria-label': 'Notes on this epoch' } });
    const runNotes = pane.run.notes.length
      ? h('ul', { class: 'run-notes', attrs: { role: 'note', 'aria-label': `Notes on run ${pane.run.name}` } },
        pane.run.notes.map((text) => h('li', { text })))
      : null;
    const head = titled
      ? h('header', { class: 'pane-head' }, h('div', { class: 'pane-title' }, h('h2', { text: pane.run.name }), pane.dom.note), pane.dom.intro)
      : null;
    let body;
    if (pane.error) {
      const title = `Could not load ${shortName(pane.tag, 80)}`;
      body = V.message('error', title, pane.error.message, app.retryButton(() => app.update()));
    } else if (pane.message) {
      const jumps = (pane.jump || []).map((name) =>
        h('button', { class: 'chip', text: shortName(name), title: name, on: { click: () => app.set({ layer: name }, true) } }));
      body = V.message(pane.tone, pane.message[0], pane.message[1], jumps.length ? h('div', { class: 'chips' }, jumps) : null);
    } else if (!itemsOf(pane, this.stepOf(pane), app.ctx(pane)).length) {
      const [title, text] = emptyMessage(this.stepOf(pane), app.ctx(pane).probe);
      body = V.message('info', title, text);
    } else {
      const { family } = pane;
      const step = this.stepOf(pane);
      const ctx = app.ctx(pane);
      const items = itemsOf(pane, step, ctx); // card k shows item items[k]
      pane.dom.count = items.length;
      const label = (k) => `Open ${family.itemName(items[k], step, ctx).toLowerCase()}`;
      const open = (k) => app.openDetail(index, items[k]);
      const inset = family.layout.inset && pane.probeUrls.length > 0;
      const grid = V.buildGrid(pane.dom.count, app.state.size, label, open, { inset, wide: family.layout.wide });
      pane.dom.cards = grid.cards;
      for (const card of pane.dom.cards) {
        card.item = items[card.index];
        card.pane = pane;
        card.button.cardRef = card;
        this.observer.observe(card.button);
      }
      body = grid.element;
    }
    pane.dom.element = h('section', { class: 'pane', attrs: { 'aria-label': pane.run.name } },
      head, runNotes, pane.dom.banner, pane.dom.notes, pane.dom.metrics, pane.dom.filterNote, body);
    return pane.dom.element;
  }

  /**
   * Whether a pane's cards no longer fit the step of the chosen epoch: its item count
   * differs (a byte budget may store fewer channels at one epoch than at another).
   *
   * @returns {boolean} true when the panes must be rebuilt rather than repainted.
   */
  stale() {
    return this.panes.some((pane) => (pane.dom.cards || pane.steps) &&
      itemsOf(pane, this.stepOf(pane), this.app.ctx(pane)).length !== (pane.dom.count ?? 0));
  }

  /** Paint every card of every pane at the chosen epoch (pixels of on-screen cards only). */
  paint(shown) {
    const jobs = [];
    for (const pane of this.panes) {
      if (!pane.dom.cards) continue;
      pane.step = this.stepOf(pane);
      pane.dom.note.textContent = pane.step.step === shown ? '' : `showing epoch ${pane.step.step}`;
      pane.dom.intro.textContent = this.panes.length > 1 ? V.paneIntro(pane, this.app.state) : '';
      pane.dom.intro.hidden = !pane.dom.intro.textContent;
      const ctx = this.app.ctx(pane);
      const notes = stepNotes(pane.step);
      pane.dom.notes.hidden = !notes.length;
      pane.dom.notes.replaceChildren(...notes.map((text) => h('li', { text })));
      const factsOf = (step) => visibleFacts(pane, step, ctx);
      setMetricsBar(pane.dom.metrics, pane.family, pane.steps, pane.steps.indexOf(pane.step), factsOf);
      const filter = probeFilter(pane, pane.step, ctx);
      pane.dom.filterNote.hidden = !filter;
      pane.dom.filterNote.textContent = filter ? filter.sentence : '';
      for (const card of pane.dom.cards) {
        card.button.hidden = filter ? !filter.keep(pane.family.probe(card.item, pane.step, ctx)) : false;
        jobs.push(this.paintCard(card));
      }
    }
    return jobs;
  }

  /** Caption now; pixels now if the card is on screen, else when it scrolls into view. */
  async paintCard(card) {
    const { pane } = card;
    const ctx = this.app.ctx(pane);
    const caption = pane.family.caption(card.item, pane.step, ctx);
    card.title.textContent = caption.title;
    card.note.textContent = caption.note || '';
    card.note.title = caption.note ? caption.noteHint || 'Drift: rank correlation with the previous logged epoch' : '';
    card.meta.textContent = caption.meta;
    card.button.dataset.tone = caption.tone;
    card.button.dataset.badge = caption.badge;
    card.badge.hidden = !caption.point;
    card.badge.dataset.point = caption.point;
    card.badge.textContent = caption.point === 'hit' ? '✓' : caption.point === 'miss' ? '✗' : '';
    card.badge.title = caption.point ? `Pointing game: the map's peak is ${caption.point === 'hit' ? 'on' : 'off'} the object` : '';
    card.tag.hidden = !caption.tag;
    card.tag.textContent = caption.tag || '';
    card.tag.title = caption.tagHint || '';
    card.button.dataset.tag = caption.tag || '';
    card.empty.hidden = !caption.empty;
    card.empty.textContent = caption.empty || '';
    card.dirty = !onScreen(card.button);
    if (card.dirty) return;
    this.paintInset(card, ctx);
    await this.paintInto(card.canvas, pane, card.item, pane.step, card);
  }

  /** Load and draw one item into a canvas, unless a newer paint of it started meanwhile. */
  async paintInto(canvas, pane, index, step, owner) {
    const key = {};
    owner.key = key;
    const ctx = this.app.ctx(pane);
    try {
      const data = await pane.family.load(index, step, ctx, this.app.store);
      if (owner.key !== key) return;
      pane.family.draw(canvas, index, step, ctx, data);
      paintDone(canvas);
    } catch (err) {
      if (owner.key !== key) return;
      paintFailed(canvas);
      if (pane.dom.banner) {
        pane.dom.banner.hidden = false;
        pane.dom.banner.textContent = `Some images could not be loaded: ${err.message}`;
      }
    }
  }

  /** The probe beside a projection (drawn once: it does not change with epochs). */
  paintInset(card, ctx) {
    const url = card.inset && card.pane.probeUrls[card.pane.family.probe(card.item, card.pane.step, ctx)];
    if (!url || card.insetUrl === url) return;
    card.insetUrl = url;
    this.app.store.bitmap(url).then((bitmap) => paintBitmap(card.inset, bitmap), () => {});
  }

  onVisible(entries) {
    for (const entry of entries) {
      const card = entry.target.cardRef;
      if (!entry.isIntersecting || !card?.dirty || !card.pane.step) continue;
      card.dirty = false;
      this.paintInset(card, this.app.ctx(card.pane));
      this.paintInto(card.canvas, card.pane, card.item, card.pane.step, card);
    }
  }

  /** Warm the cache with the images of the given epochs, after the current paint. */
  prefetch(upcoming) {
    if (!upcoming.length) return;
    setTimeout(() => {
      for (const pane of this.panes.filter((p) => p.steps)) {
        for (const step of pane.steps.filter((s) => upcoming.includes(s.step))) {
          for (const url of pane.family.urls(step, this.app.ctx(pane))) this.app.store.bitmap(url).catch(() => {});
        }
      }
    }, 0);
  }
}
