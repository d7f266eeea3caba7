// Which of a step's items the cards show. A view that explains classes (layout.pickClass)
// may hold several maps per probe image (the callback's `cam_classes`; the format is in
// tb_cnnvis/summary.py): its cards show one class per probe, the one chosen (state.explain:
// the r-th map of each probe, most probable first or in the order of the list logged). A
// view about probe images (layout.filterProbes) can show only the probes misclassified, or
// only those correctly classified, at the epoch shown (state.probeFilter): the step's
// `predicted` against the probes' true labels. A view whose steps store no predictions
// (projections) borrows them from a view of the same run that does (pane.predictions).
// Pure functions of the pane, step and state; no DOM, no fetching.

import { className } from './format.js';
import { labelOf, nearestStepIndex, probeOfImage } from './model.js';

/** The probe filter's choices: [value, label]. */
export const PROBE_FILTERS = [['all', 'All'], ['wrong', 'Misclassified'], ['right', 'Correct']];

/** Per image of a step: its probe, its rank among that probe's maps, and maps per probe. */
function mapsOf(step) {
  const counts = new Map();
  const probes = step.images.map((_, i) => probeOfImage(step, i));
  const ranks = probes.map((probe) => {
    const rank = counts.get(probe) || 0;
    counts.set(probe, rank + 1);
    return rank;
  });
  return { probes, ranks, counts, most: Math.max(1, ...counts.values()) };
}

/** '1st', '2nd', '3rd', '4th', ..., '11th', '21st'. */
export function ordinal(n) {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? 'th' : ['th', 'st', 'nd', 'rd'][n % 10] || 'th';
  return `${n}${suffix}`;
}

/**
 * The classes a series can show per probe, or null when its steps hold one map per probe.
 *
 * Choice r is the r-th map of each probe. If every step has the same class at rank r for
 * every probe (a list of classes was logged), the choices are class names; otherwise (the
 * k most probable classes) they read '1st most probable', '2nd most probable', ...
 *
 * @param {Array<object>} steps the series (Store.steps()).
 * @param {?Array<string>} classNames the run's class names.
 * @returns {?Array<Array<string>>} [value, label] pairs, value '0', '1', ...
 * @example classChoices(steps, ['cat', 'dog'])  // [['0', '1st most probable'], ['1', ...]]
 */
export function classChoices(steps, classNames) {
  const classes = classesByRank(steps);
  if (!classes) return null;
  const order = classOrder(steps);
  if (order) return order.map((c, r) => [String(r), className(classNames, c)]);
  const fixed = classes.every((set) => set.size === 1 && [...set][0] !== null);
  return classes.map((set, r) => [String(r), fixed ? className(classNames, [...set][0]) : `${ordinal(r + 1)} most probable`]);
}

/** Per rank r, the classes of the r-th maps of the series' probes; null with one map per probe. */
function classesByRank(steps) {
  const layouts = steps.map((step) => ({ step, ...mapsOf(step) }));
  const k = Math.max(1, ...layouts.map((layout) => layout.most));
  if (k < 2) return null;
  const classes = Array.from({ length: k }, () => new Set());
  for (const { step, ranks } of layouts) {
    ranks.forEach((rank, i) => classes[rank].add(step.facts.class_index?.[i] ?? null));
  }
  return classes;
}

/**
 * A binary model's two classes, in class order, when every probe has a map of each at every
 * step but in an order that varies (most probable first): the chooser then offers them by
 * name, and choice r shows each probe's map of class order[r] (cardItems, through
 * ctx.classOrder). Null for other heads (their choices stay ranks: '1st most probable'),
 * when the r-th maps are of one class throughout, or when the probes' classes differ.
 *
 * @param {Array<object>} steps the series.
 * @returns {?Array<number>} class indices.
 * @example classOrder(binarySteps)  // [0, 1]
 */
export function classOrder(steps) {
  const classes = classesByRank(steps || []);
  if (!classes || classes.every((set) => set.size === 1)) return null;
  if (!steps.every((step) => step.facts.head === 'binary')) return null;
  let shared = null;
  for (const step of steps) {
    const byProbe = new Map();
    mapsOf(step).probes.forEach((probe, i) => {
      byProbe.set(probe, [...(byProbe.get(probe) || []), step.facts.class_index?.[i] ?? null]);
    });
    for (const list of byProbe.values()) {
      const key = JSON.stringify([...list].sort((a, b) => a - b));
      if (list.includes(null) || (shared !== null && key !== shared)) return null;
      shared = key;
    }
  }
  return shared === null ? null : JSON.parse(shared);
}

/**
 * The items (indices into the family's count) that a step's cards show, in order: every
 * item, or for a view with several classes per probe, the chosen class's map of each probe
 * (a probe with fewer maps, e.g. Eigen-CAM's one, shows its last): the r-th, or with
 * ctx.classOrder (classOrder()) the one of class classOrder[r].
 *
 * @param {Family} family the view's family.
 * @param {object} step a step of the series.
 * @param {object} ctx the page's ctx(pane) (state.explain among it).
 * @returns {Array<number>}
 */
export function cardItems(family, step, ctx) {
  const all = Array.from({ length: family.count(step, ctx) }, (_, i) => i);
  if (!family.layout.pickClass) return all;
  const { probes, ranks, counts, most } = mapsOf(step);
  if (most < 2) return all;
  const chosen = Math.max(0, Number(ctx.explain) || 0);
  if (ctx.classOrder) {
    const wanted = ctx.classOrder[Math.min(chosen, ctx.classOrder.length - 1)];
    const ofClass = all.filter((i) => step.facts.class_index?.[i] === wanted);
    if (ofClass.length) return ofClass;
  }
  return all.filter((i) => ranks[i] === Math.min(chosen, counts.get(probes[i]) - 1));
}

/**
 * A step's facts as its cards see them: for a view with several classes per probe, every
 * per-map list (one entry per image) keeps the entries of the maps the cards show
 * (cardItems), so the metrics of the bar are those of the class chosen; otherwise the facts
 * as stored.
 *
 * @param {Family} family the view's family.
 * @param {object} step a step of the series.
 * @param {object} ctx the page's ctx(pane).
 * @returns {object} facts.
 * @example shownFacts(family, step, { explain: '1' }).deletion_auc  // the 2nd class's, per probe
 */
export function shownFacts(family, step, ctx) {
  if (!family.layout.pickClass) return step.facts;
  return factsOfItems(step, cardItems(family, step, ctx)); // one item per image here
}

/**
 * A step's facts as the cards left visible see them: shownFacts, and of those only the
 * probes the probe filter keeps at that step, so the metrics bar speaks of the cards shown
 * (no probe kept: empty lists, and the metric reads '–').
 *
 * @param {object} pane the pane.
 * @param {object} step a step of the series.
 * @param {object} ctx the page's ctx(pane).
 * @returns {object} facts.
 * @example visibleFacts(pane, step, { probeFilter: 'wrong' }).objective  // misclassified only
 */
export function visibleFacts(pane, step, ctx) {
  if (!pane.family.layout.filterProbes) return shownFacts(pane.family, step, ctx);
  return factsOfItems(step, visibleItems(pane, step, ctx));
}

/** The facts with every per-image list cut down to `items` (as stored if all are kept). */
function factsOfItems(step, items) {
  const count = step.images.length;
  if (items.length === count) return step.facts;
  return Object.fromEntries(
    Object.entries(step.facts).map(([key, value]) => [
      key,
      Array.isArray(value) && value.length === count ? items.map((i) => value[i]) : value,
    ]),
  );
}

/** The tag of a view of the run whose steps store predictions (one that explains classes), or null. */
export function predictionsTag(run) {
  for (const layer of run.layers) {
    for (const [kind, tag] of layer.tags) {
      if (run.views.get(kind)?.family.layout.pickClass && !layer.unsupported.has(kind)) return tag;
    }
  }
  return null;
}

/** Whether a series' steps store predictions. */
export function predicts(steps) {
  return (steps || []).some((step) => Array.isArray(step.facts.predicted));
}

/**
 * Why the probe filter cannot apply to a pane, or '' when it can.
 *
 * @param {object} pane a pane (panes.js loadPane()).
 * @returns {string} the tooltip of the disabled filter.
 */
export function filterProblem(pane) {
  if (!pane?.steps || !pane.family.layout.filterProbes) return 'This view is not about probe images.';
  const head = pane.steps.find((step) => typeof step.facts.head === 'string')?.facts.head;
  if (head === 'regression' || head === 'segmentation') {
    return `The model’s head is a ${head}: no probe is classified right or wrong.`;
  }
  const labelled = pane.probeLabels || pane.steps.some((step) => Array.isArray(step.facts.labels));
  if (!labelled) {
    return 'The probe images have no true labels (give the callback probe_labels), so no ' +
      'prediction can be called right or wrong.';
  }
  if (!predicts(pane.steps) && !pane.predictionsTag) {
    return `No view of run "${pane.run.name}" stores the probes’ predictions (the CAMs and ` +
      'attributions do).';
  }
  return '';
}

/** The step whose predictions hold at a step: itself, or the borrowed one at or before it. */
function predictionStep(pane, step) {
  if (Array.isArray(step.facts.predicted)) return step;
  const borrowed = pane.predictions;
  if (!borrowed?.length) return null;
  const found = borrowed[nearestStepIndex(borrowed, step.step)];
  return found.step <= step.step && Array.isArray(found.facts.predicted) ? found : null;
}

/**
 * The probe filter at a step: which probes it keeps, and the sentence that counts them.
 *
 * @param {object} pane the pane.
 * @param {object} step the step shown.
 * @param {object} ctx the page's ctx(pane) (state.probeFilter among it).
 * @returns {?{keep: function(?number): boolean, sentence: string}} null when every probe
 *     is shown (the filter is 'all', or cannot apply).
 * @example probeFilter(pane, step, ctx).sentence  // '3 of 8 probes misclassified at epoch 5'
 */
export function probeFilter(pane, step, ctx) {
  const mode = ctx.probeFilter;
  if (!PROBE_FILTERS.some(([value]) => value === mode && value !== 'all') || filterProblem(pane)) return null;
  const source = predictionStep(pane, step);
  if (!source) {
    return { keep: () => true, sentence: `No predictions logged at or before epoch ${step.step}: every probe is shown.` };
  }
  const verdicts = new Map();
  source.facts.predicted.forEach((predicted, i) => {
    const probe = probeOfImage(source, i);
    const label = labelOf(step, probe, ctx);
    if (label !== null && label !== undefined && predicted !== null && predicted !== undefined) {
      verdicts.set(probe, label === predicted ? 'right' : 'wrong');
    }
  });
  const kept = [...verdicts.values()].filter((verdict) => verdict === mode).length;
  const what = mode === 'wrong' ? 'misclassified' : 'correctly classified';
  return {
    keep: (probe) => verdicts.get(probe) === mode,
    sentence: `${kept} of ${verdicts.size} probes ${what} at epoch ${source.step}`,
  };
}

/** The items a step's cards show that the probe filter keeps (the detail steps through them). */
export function visibleItems(pane, step, ctx) {
  const items = cardItems(pane.family, step, ctx);
  const filter = probeFilter(pane, step, ctx);
  return filter ? items.filter((item) => filter.keep(pane.family.probe(item, step, ctx))) : items;
}

/**
 * The item `delta` places from `item` among `items`; an item not among them (filtered out
 * at this epoch) moves to the nearest one in that direction.
 *
 * @param {Array<number>} items the items shown, in order.
 * @param {number} item the current item.
 * @param {number} delta +1 or -1.
 * @returns {number}
 */
export function nextItem(items, item, delta) {
  if (!items.length) return item;
  const at = items.indexOf(item);
  if (at >= 0) return items[(at + delta + items.length) % items.length];
  const after = items.findIndex((other) => other > item);
  if (delta > 0) return items[after >= 0 ? after : 0];
  return items[after > 0 ? after - 1 : items.length - 1];
}
