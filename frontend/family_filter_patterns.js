// Filter patterns: one card per filter, the input synthesized to excite it most
// (activation maximization), cut from the step's atlases (facts.atlases): the patterns, MaCo's
// transparency, the diversity members (tb_cnnvis/summary.py). Each tile is the display crop
// (the receptive field of the canvas's central unit, e.g. 3×3 px), drawn at natural size and
// enlarged by the page without smoothing. Older logs have only the patterns atlas.

import { driftLabel, driftText, fmt, mean, show } from './format.js';
import { namedAtlas, nearestStepIndex, tileRect } from './model.js';
import { checkboxField } from './options.js';
import { paintTile, paintTileWithAlpha } from './paint.js';

/** The atlases of a step written before facts.atlases existed. */
const OLDER = ['patterns'];

const SEEDED_HINT = 'Dead from noise; restarted from the crop of the reference (or probe) images ' +
  'that excites it most.';

const PRESETS = {
  fast: 'fast (pixels, random shifts, light regularizers)',
  quality: 'quality (Lucid: decorrelated Fourier image, transforms)',
  maco: 'MaCo (Fel et al. 2023: phase only, natural-image magnitude)',
};

const SPECTRA = {
  reference_images: 'estimated from the reference images',
  probe_images: 'estimated from the probe images',
  power_law: 'a 1/f amplitude law (no images)',
};

/** The filter index of item i (the step lists which filters were synthesized). */
function filterOf(i, step) {
  return step.facts.filters?.[i] ?? i;
}

/** '11×11' for [h, w]. */
function dims(size) {
  return `${size[0]}×${size[1]}`;
}

/**
 * What a step's tiles show of the canvas the patterns were optimized on.
 *
 * @param {object} facts a filter_patterns step's facts.
 * @returns {string} e.g. 'receptive field 11×11 px of the 24×24 px canvas'; '' in older logs.
 * @example shownText({canvas: [24, 24], images: [{tile: [11, 11]}]})
 */
export function shownText(facts) {
  const tile = facts.images?.[0]?.tile;
  const { canvas } = facts;
  if (!Array.isArray(tile) || !Array.isArray(canvas)) return '';
  const field = facts.receptive_field?.size;
  const other = Array.isArray(field) && (field[0] !== tile[0] || field[1] !== tile[1]);
  const of = `the ${dims(canvas)} px canvas`;
  if (tile[0] >= canvas[0] && tile[1] >= canvas[1]) {
    return `the whole ${dims(canvas)} px canvas${other ? ` (receptive field ${dims(field)} px)` : ''}`;
  }
  if (other) return `${dims(tile)} px of the ${dims(field)} px receptive field in ${of}`;
  return `receptive field ${dims(tile)} px of ${of}`;
}

/** How a preset reads ('' for none). */
function presetText(preset) {
  return preset ? PRESETS[preset] || String(preset) : '';
}

/** Whether any of the steps stores MaCo's transparency. */
function hasTransparency(steps) {
  return steps.some((step) => namedAtlas(step, 'transparency', OLDER) !== null);
}

/** The facts rows that logs before presets and canvases lack (none for those logs). */
function patternRows(f, filter) {
  const rows = [];
  if ('seeded' in f) {
    const seeded = (f.seeded || []).includes(filter);
    rows.push(['Seeded from data', seeded ? `yes: ${SEEDED_HINT.toLowerCase()}` : 'no']);
  }
  if ('preset' in f) rows.push(['Preset', presetText(f.preset) || '–']);
  if (f.spectrum) {
    const own = (f.seeded || []).includes(filter) ? '; this filter keeps its own crop’s' : '';
    rows.push(['Magnitude spectrum', `${SPECTRA[f.spectrum] || String(f.spectrum)}${own}`]);
  }
  const shown = shownText(f);
  if (shown) rows.push(['Shown', shown]);
  if (Array.isArray(f.crop)) rows.push(['Crop (top, left, bottom, right)', f.crop.join(', ')]);
  const field = f.receptive_field;
  if (field?.size) rows.push(['Receptive field', `${dims(field.size)} px, stride ${dims(field.stride)}`]);
  if (f.diversity > 1) rows.push(['Diversity', `${f.diversity} patterns`]);
  return rows;
}

/** @type {Family} */
export default {
  name: 'filter_patterns',
  label: 'Filter patterns',
  settings: { patternAlpha: false },
  layout: {
    pickProbe: false, inset: false, wide: false, detailProbe: false, detailTop: true, detailBig: true,
    pickClass: false, filterProbes: false,
  },

  count: (step) => step.facts.images?.[0]?.count ?? 0,
  urls(step, ctx) {
    const alpha = ctx.patternAlpha ? namedAtlas(step, 'transparency', OLDER) : null;
    return [step.images[0], alpha?.url].filter(Boolean);
  },

  caption(i, step) {
    const f = step.facts;
    const filter = filterOf(i, step);
    const note = 'drift' in f ? `ρ ${show(f.drift?.[i])}` : '';
    const badge = (f.dead || []).includes(filter) ? 'dead' : '';
    const seeded = (f.seeded || []).includes(filter);
    return {
      title: `#${filter}`, note, meta: `act ${fmt(f.activations?.[i])}`,
      badge, tone: '', point: '',
      tag: seeded ? 'seeded' : '', tagHint: seeded ? SEEDED_HINT : '',
    };
  },

  itemName: (i, step) => `Filter ${filterOf(i, step)}`,
  itemKey: filterOf,
  probe: () => null,
  filter: filterOf,

  facts(i, step) {
    const f = step.facts;
    const filter = filterOf(i, step);
    const rows = [
      ['Filter index', String(filter)],
      ['Activation reached', fmt(f.activations?.[i])],
      ['Activation at start', fmt(f.start_activations?.[i])],
      ['Dead', (f.dead || []).includes(filter) ? 'yes (never responded: no input moved its activation)' : 'no'],
      ...patternRows(f, filter),
    ];
    if ('drift' in f) rows.push([driftLabel(f), driftText(f.drift?.[i], {})]);
    if (f.seconds !== undefined) rows.push(['Computed in', `${fmt(f.seconds)} s`]);
    return rows;
  },

  async load(i, step, ctx, store) {
    const patterns = namedAtlas(step, 'patterns', OLDER);
    const alpha = ctx.patternAlpha ? namedAtlas(step, 'transparency', OLDER) : null;
    if (!alpha) return { bitmap: await store.bitmap(patterns.url), desc: patterns.desc };
    const [rgba, gray] = await Promise.all([store.rgba(patterns.url), store.gray(alpha.url)]);
    return { rgba, desc: patterns.desc, alpha: gray, alphaDesc: alpha.desc };
  },

  draw(canvas, i, step, ctx, data) {
    if (data.alpha) paintTileWithAlpha(canvas, data.rgba, tileRect(data.desc, i), data.alpha, tileRect(data.alphaDesc, i));
    else paintTile(canvas, data.bitmap, tileRect(data.desc, i));
  },

  /** The filter's diversity members side by side, with their activations. */
  async detailRow(i, step, ctx, store) {
    const atlas = namedAtlas(step, 'diversity', OLDER);
    if (!atlas || !(atlas.desc.grid[1] > 1)) return null;
    const bitmap = await store.bitmap(atlas.url);
    const members = atlas.desc.grid[1];
    const activations = step.facts.diversity_activations?.[i] || [];
    const filter = filterOf(i, step);
    return {
      title: `Diversity · ${members} patterns of filter ${filter}`,
      note: 'Optimized together and pushed apart (Gram-matrix penalty); the first is the pattern above.',
      figures: Array.from({ length: members }, (_, j) => ({
        caption: `act ${fmt(activations[j])}`,
        hint: `${j === 0 ? 'The pattern itself' : `Member ${j + 1} of ${members}`}: mean activation ${fmt(activations[j])}`,
        draw: (canvas) => paintTile(canvas, bitmap, tileRect(atlas.desc, i * members + j)),
      })),
    };
  },

  options(state, set, steps) {
    if (!hasTransparency(steps)) return [];
    return [checkboxField('Show MaCo’s attribution as transparency', state.patternAlpha, (on) => set('patternAlpha', on),
      'Draw each pattern with MaCo’s attribution as its opacity: where the optimization’s gradients were ' +
      'weak, the pattern fades to the checkerboard.')];
  },

  metrics: [
    {
      key: 'pattern_drift',
      label: 'Pattern drift',
      keys: ['drift'],
      hint: 'Rank correlation (Spearman) of each filter’s pattern with the previous logged ' +
        'epoch, averaged: 1 is unchanged.',
      value: (f) => mean(f.drift),
      text: (f) => driftText(mean(f.drift), f),
    },
  ],

  intro(pane, state) {
    const step = pane.steps?.[nearestStepIndex(pane.steps, state.epoch ?? pane.steps.at(-1).step)];
    if (!step) return '';
    const preset = presetText(step.facts.preset);
    const shown = shownText(step.facts);
    return [
      preset ? `Preset ${preset}.` : '',
      shown ? `Shown: ${shown}, enlarged without smoothing.` : '',
    ].filter(Boolean).join(' ');
  },
};
