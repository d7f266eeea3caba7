// Class activation maps (Grad-CAM and its variants): one card per probe image, the map of
// where the layer sees evidence for the explained class, blended over the probe. With
// several classes per probe the page shows one class's maps (subset.js). The captions, facts
// and metrics of maps that explain a class are shared with the attributions.

import { lookupTable } from './colormaps.js';
import { className, driftLabel, driftText, fmt, mean, NONE, num, percent, share, show } from './format.js';
import { labelOf, probeOfImage } from './model.js';
import { colormapField, rangeField } from './options.js';
import { paintGray, paintMaskUnder, paintOverlay } from './paint.js';
import { cardItems } from './subset.js';

/** What a CAM card says when its map is zero everywhere (cam_max 0). */
export const NO_EVIDENCE = 'No positive evidence for this class at this layer';

/** The grey mask stored under map i (a segmentation probe's predicted mask), or null. */
export function maskOf(step, i, store) {
  const url = step.masks?.[i];
  return url ? store.gray(url) : Promise.resolve(null);
}

/** The pointing-game hits of a step: {hits, count}, or null without masks. */
function pointing(facts) {
  const hits = facts.pointing_hits;
  if (!Array.isArray(hits)) return null;
  const known = hits.filter((hit) => hit === true || hit === false);
  return known.length ? { hits: known.filter(Boolean).length, count: known.length } : null;
}

/** The pointing-game result of probe card i: 'hit', 'miss' or '' (not computed). */
export function pointingOf(facts, i) {
  const hit = Array.isArray(facts.pointing_hits) ? facts.pointing_hits[i] : null;
  return hit === true ? 'hit' : hit === false ? 'miss' : '';
}

/**
 * The detail rows of probe i's metrics at one step (only for facts the step has).
 *
 * @param {number} i the item (probe card) index.
 * @param {object} facts the step's facts.
 * @returns {Array<Array<string>>} [label, text] rows; a failed metric reads '—'.
 */
export function metricRows(i, facts) {
  const rows = [];
  if ('deletion_auc' in facts) {
    rows.push(['Deletion AUC', show(facts.deletion_auc?.[i])]);
    rows.push(['Random map’s AUC', show(facts.deletion_auc_random?.[i])]);
  }
  if ('pointing_hits' in facts) {
    const result = pointingOf(facts, i);
    rows.push(['Pointing game', result === 'hit' ? '✓ on the object' : result === 'miss' ? '✗ off the object' : NONE]);
  }
  if ('drift' in facts) rows.push([driftLabel(facts), driftText(facts.drift?.[i], {})]);
  return rows;
}

/** Whether image i of a step is one of several maps of its probe (it names its class). */
function ofSeveral(step, i) {
  const desc = step.facts.images?.[i];
  return desc?.class_index !== undefined && desc?.class_index !== null;
}

/**
 * The caption of a map that explains a class (CAMs and attributions): the prediction and its
 * probability; below, the true class, or with several classes per probe the class explained
 * ('for square 3%': its probability).
 *
 * @param {number} i the image index.
 * @param {object} step the step.
 * @param {object} ctx the page's ctx(pane).
 * @returns {Caption}
 */
export function explainedCaption(i, step, ctx) {
  const f = step.facts;
  const probe = probeOfImage(step, i);
  const target = targetOf(step, i);
  const caption = { badge: '', tone: '', point: pointingOf(f, i), meta: target || `probe ${probe}` };
  const head = headOf(step);
  if (head === 'regression') {
    // The model's value, and beside it the target value (the probe's label).
    const label = num(labelOf(step, probe, ctx));
    const note = label === null ? '' : `true ${fmt(label)}`;
    return { ...caption, title: fmt(num(f.values?.[i])), note, noteHint: 'The true value (the probe’s label)' };
  }
  if (head === 'segmentation') return { ...caption, title: className(ctx.classNames, f.class_index?.[i]) };
  const predicted = f.predicted?.[i];
  const label = labelOf(step, probe, ctx);
  const known = label !== null && label !== undefined;
  let meta = known ? `true ${className(ctx.classNames, label)}` : `probe ${probe}`;
  if (ofSeveral(step, i)) meta = `for ${className(ctx.classNames, f.class_index?.[i])} ${percent(f.target_probability?.[i])}`;
  return {
    ...caption,
    title: `${className(ctx.classNames, predicted)} ${percent(f.probability?.[i])}`,
    meta: target ? `${meta} · ${target}` : meta,
    tone: known ? (label === predicted ? 'good' : 'bad') : '',
  };
}

/** The head of the model a step explains ('softmax', 'binary', 'regression', ...), or ''. */
export function headOf(step) {
  return typeof step.facts.head === 'string' ? step.facts.head : '';
}

/** What map i explains, in words ('class 0 (cat): negated logit'), or '' (facts.targets). */
function targetOf(step, i) {
  const target = step.facts.targets?.[i];
  return target === null || target === undefined ? '' : String(target);
}

/** 'Probe 2', or with several classes per probe 'Probe 2 · square' (the class explained). */
/**
 * What item i is, to follow it across epochs: its probe, and with several maps per probe
 * which of them (a probe's maps are consecutive, in the same order at every step).
 */
export function explainedItemKey(i, step) {
  const images = step.facts.images || [];
  const probe = probeOfImage(step, i);
  if (images[i]?.class_index === undefined) return probe;
  const first = images.findIndex((desc) => desc.probe === images[i].probe);
  return `${probe}:${i - first}`;
}

export function explainedItemName(i, step, ctx) {
  const name = `Probe ${probeOfImage(step, i)}`;
  return ofSeveral(step, i) ? `${name} · ${className(ctx?.classNames, step.facts.class_index?.[i])}` : name;
}

/**
 * The detail rows every class-explaining map has: its probe, the prediction (a regression's
 * value and true value), the class explained, the model's head and the target explained.
 */
export function explainedRows(i, step, ctx) {
  const f = step.facts;
  const probe = probeOfImage(step, i);
  const head = headOf(step);
  const rows = [['Probe', String(probe)]];
  if (head === 'regression') {
    rows.push(['Prediction', fmt(num(f.values?.[i]))], ['True value', fmt(num(labelOf(step, probe, ctx)))]);
  } else if (head === 'segmentation') {
    rows.push(['Explained class', className(ctx.classNames, f.class_index?.[i])]);
  } else {
    rows.push(
      ['Predicted class', className(ctx.classNames, f.predicted?.[i])],
      ['Probability', percent(f.probability?.[i])],
      ['True class', className(ctx.classNames, labelOf(step, probe, ctx))],
      ['Explained class', className(ctx.classNames, f.class_index?.[i])],
      ['Its probability', percent(f.target_probability?.[i])],
    );
  }
  if (head) rows.push(['Head', head]);
  if (targetOf(step, i)) rows.push(['Target', targetOf(step, i)]);
  return rows;
}

/**
 * The members of a family whose cards are maps explaining a class of each probe image (CAMs,
 * attributions), for the family to spread into itself: its layout, the items, the cards of
 * the class chosen (subset.js), their captions and names, no filter, no detail row.
 */
export const classMaps = {
  layout: {
    pickProbe: false, inset: false, wide: false, detailProbe: true, detailTop: false, detailBig: true,
    pickClass: true, filterProbes: true,
  },
  count: (step) => step.images.length,
  urls(step, ctx) {
    return cardItems(this, step, ctx).flatMap((i) => [step.images[i], step.masks?.[i]]).filter(Boolean);
  },
  caption: explainedCaption,
  itemName: explainedItemName,
  itemKey: explainedItemKey,
  probe: (i, step) => probeOfImage(step, i),
  filter: () => null,
  detailRow: async () => null,
};

/** @type {Family} */
export default {
  name: 'cam',
  label: 'CAMs',
  settings: { camColormap: 'jet', opacity: 0.5, threshold: 0.1 },
  ...classMaps,

  caption(i, step, ctx) {
    const caption = explainedCaption(i, step, ctx);
    return num(step.facts.cam_max?.[i]) === 0 ? { ...caption, empty: NO_EVIDENCE } : caption;
  },

  facts(i, step, ctx) {
    const f = step.facts;
    const rows = [...explainedRows(i, step, ctx), ['CAM maximum', fmt(f.cam_max?.[i])], ...metricRows(i, f)];
    if (f.seconds !== undefined) rows.push(['Computed in', `${fmt(f.seconds)} s`]);
    return rows;
  },

  async load(i, step, ctx, store) {
    const probeUrl = ctx.probeUrls[probeOfImage(step, i)];
    const [base, heat, mask] = await Promise.all([
      probeUrl ? store.rgba(probeUrl) : null,
      store.gray(step.images[i]),
      maskOf(step, i, store),
    ]);
    return { base, heat, mask };
  },

  draw(canvas, i, step, ctx, { base, heat, mask }) {
    const table = lookupTable(ctx.camColormap);
    if (base && base.width === heat.width && base.height === heat.height) {
      paintOverlay(canvas, base, heat, table, { opacity: ctx.opacity, threshold: ctx.threshold });
    } else {
      paintGray(canvas, heat.gray, heat.width, heat.height, table, { scale: 1, offset: 0 });
    }
    paintMaskUnder(canvas, mask);
  },

  options: (state, set) => [
    colormapField(state.camColormap, (v) => set('camColormap', v)),
    rangeField('Opacity', state.opacity, { min: 0, max: 1, step: 0.05 }, (v) => set('opacity', v)),
    rangeField('Threshold', state.threshold, { min: 0, max: 0.95, step: 0.05 }, (v) => set('threshold', v)),
  ],

  metrics: [
    {
      key: 'deletion_auc',
      label: 'Deletion AUC',
      keys: ['deletion_auc'],
      hint: 'Mean deletion AUC (Petsiuk et al., 2018): the explained class’s probability as the ' +
        'pixels the map ranks highest are blurred away first. Lower is more faithful; the dashed ' +
        'line is a random map’s.',
      value: (f) => mean(f.deletion_auc),
      compare: (f) => mean(f.deletion_auc_random),
      text: (f) => (mean(f.deletion_auc) === null ? NONE :
        `${show(mean(f.deletion_auc))} · random ${show(mean(f.deletion_auc_random))}`),
    },
    {
      key: 'pointing_game',
      label: 'Pointing game',
      keys: ['pointing_hits'],
      hint: 'Probes whose map peaks on the object (Zhang et al., 2016; needs probe_masks).',
      value: (f) => {
        const p = pointing(f);
        return p ? p.hits / p.count : null;
      },
      text: (f) => {
        const p = pointing(f);
        return p ? `${p.hits}/${p.count} (${share(p.hits / p.count)})` : NONE;
      },
    },
    {
      key: 'cam_drift',
      label: 'Drift',
      keys: ['drift'],
      hint: 'Rank correlation (Spearman) of each probe’s map with the previous logged epoch, ' +
        'averaged: 1 is unchanged.',
      value: (f) => mean(f.drift),
      text: (f) => driftText(mean(f.drift), f),
    },
  ],
};
