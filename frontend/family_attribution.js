// Class attributions (SmoothGrad, integrated gradients, occlusion): one card per probe
// image, a signed map at the input through a diverging colormap with zero at its neutral
// middle: red where the pixels raise the explained class's score, blue where they lower
// it. Each map is stored as grey 128 + 127 * value / scale with its own scale (the largest
// |value|, in the facts: tb_cnnvis/summary.py), so a card's colours run from -scale to
// +scale; the gain saturates them at scale / gain. Captions, facts and metric chips are the
// CAMs' (family_cam.js), plus the scale (at full colour) and the method's settings.

import { cssGradient, DIVERGING, lookupTable } from './colormaps.js';
import { h } from './dom.js';
import cam, { classMaps, explainedCaption, explainedRows, maskOf, metricRows } from './family_cam.js';
import { fmt, num } from './format.js';
import { probeOfImage } from './model.js';
import { rangeField, segmented } from './options.js';
import { paintMaskUnder, paintSigned } from './paint.js';

/** The |value| shown at full colour on map i: its scale divided by the gain (null if unknown). */
export function fullScale(step, i, gain) {
  const scale = num(step.facts.scale?.[i]);
  return scale === null ? null : scale / Math.max(1, Number(gain) || 1);
}

/** A method setting's value as text: numbers with three digits, lists joined. */
function settingText(value) {
  if (Array.isArray(value)) return value.map(settingText).join(', ');
  if (typeof value === 'number') return fmt(value);
  if (value !== null && typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** The detail rows of the method's settings (`settings` of the facts), one per setting. */
function settingRows(facts) {
  const settings = facts.settings;
  if (!settings || typeof settings !== 'object') return [];
  return Object.entries(settings).map(([name, value]) => [`Setting: ${name}`, settingText(value)]);
}

/** The legend of the options row: the diverging colours from -s through 0 to +s. */
function legend() {
  const hint = 's: the largest |value| of each map (at the end of its card’s caption), divided by the gain. ' +
    'Red raises the explained class’s score, blue lowers it; zero is neutral.';
  return h(
    'div',
    { class: 'field signed-legend', title: hint },
    h('span', { class: 'field-label', text: 'Attribution' }),
    h('span', { class: 'legend-end', text: '−s' }),
    h('span', { class: 'legend', style: { background: cssGradient(DIVERGING) }, attrs: { role: 'img', 'aria-label': 'blue −s, white 0, red +s' } }),
    h('span', { class: 'legend-end', text: '+s' }),
  );
}

/** The metric chips of the CAMs, the deletion AUC's hint said of attributions. */
const METRICS = cam.metrics.map((metric) =>
  metric.key === 'deletion_auc'
    ? {
      ...metric,
      hint: 'Mean deletion AUC (Petsiuk et al., 2018): the explained class’s probability as the ' +
        'pixels with the largest positive attribution are blurred away first. Lower is more ' +
        'faithful; the dashed line is a random map’s.',
    }
    : metric);

/** @type {Family} */
export default {
  name: 'attribution',
  label: 'Attributions',
  settings: { attributionBase: 'map', opacity: 0.5, attributionGain: 1 },
  ...classMaps,

  caption(i, step, ctx) {
    const caption = explainedCaption(i, step, ctx);
    const full = fullScale(step, i, ctx.attributionGain);
    // The |value| at full colour ends the second line: the first keeps the prediction whole.
    return full === null ? caption : { ...caption, meta: `${caption.meta} · ±${Number(full.toPrecision(2))}` };
  },

  facts(i, step, ctx) {
    const f = step.facts;
    const full = fullScale(step, i, ctx.attributionGain);
    const rows = [
      ...explainedRows(i, step, ctx),
      ['Largest |value|', fmt(num(f.scale?.[i]))],
      ['Colours', full === null ? '–' : `blue −${fmt(full)} · white 0 · red +${fmt(full)}`],
      ...settingRows(f),
      ...metricRows(i, f),
    ];
    if (f.seconds !== undefined) rows.push(['Computed in', `${fmt(f.seconds)} s`]);
    return rows;
  },

  async load(i, step, ctx, store) {
    const probeUrl = ctx.attributionBase === 'probe' ? ctx.probeUrls[probeOfImage(step, i)] : null;
    const [base, map, mask] = await Promise.all([
      probeUrl ? store.rgba(probeUrl) : null, store.gray(step.images[i]), maskOf(step, i, store),
    ]);
    return { base, map, mask };
  },

  draw(canvas, i, step, ctx, { base, map, mask }) {
    const over = base && base.width === map.width && base.height === map.height ? base : null;
    paintSigned(canvas, map, over, lookupTable(DIVERGING), { opacity: ctx.opacity, gain: ctx.attributionGain });
    paintMaskUnder(canvas, mask);
  },

  options: (state, set) => [
    segmented('Show', [['map', 'Map alone'], ['probe', 'Over the probe']], state.attributionBase,
      (v) => set('attributionBase', v)),
    rangeField('Opacity', state.opacity, { min: 0, max: 1, step: 0.05 }, (v) => set('opacity', v)),
    rangeField('Gain', state.attributionGain, { min: 1, max: 8, step: 0.5 }, (v) => set('attributionGain', v), (v) => `${v}×`),
    legend(),
  ],

  metrics: METRICS,

  intro: () => 'Red: these pixels raise the explained class’s score; blue: they lower it. Each map ' +
    'is scaled to its own largest |value| (at the end of its card’s caption).',
};
