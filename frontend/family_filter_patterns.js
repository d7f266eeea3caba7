// Filter patterns: one card per filter, the input synthesized to excite it most
// (activation maximization), cut from the step's single atlas.

import { driftLabel, driftText, fmt, mean, show } from './format.js';
import { tileRect } from './model.js';
import { paintTile } from './paint.js';

/** The filter index of item i (the step lists which filters were synthesized). */
function filterOf(i, step) {
  return step.facts.filters?.[i] ?? i;
}

/** @type {Family} */
export default {
  name: 'filter_patterns',
  settings: {},
  layout: {
    pickProbe: false, inset: false, wide: false, detailProbe: false, detailTop: true, detailBig: true,
    pickClass: false, filterProbes: false,
  },

  count: (step) => step.facts.images?.[0]?.count ?? 0,
  urls: (step) => step.images.slice(0, 1),

  caption(i, step) {
    const f = step.facts;
    const filter = filterOf(i, step);
    const note = 'drift' in f ? `ρ ${show(f.drift?.[i])}` : '';
    const badge = (f.dead || []).includes(filter) ? 'dead' : '';
    return { title: `#${filter}`, note, meta: `act ${fmt(f.activations?.[i])}`, badge, tone: '', point: '' };
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
      ['Dead', (f.dead || []).includes(filter) ? 'yes (stayed ≤ 0)' : 'no'],
    ];
    if ('drift' in f) rows.push([driftLabel(f), driftText(f.drift?.[i], {})]);
    if (f.seconds !== undefined) rows.push(['Computed in', `${fmt(f.seconds)} s`]);
    return rows;
  },

  async load(i, step, ctx, store) {
    return { bitmap: await store.bitmap(step.images[0]), desc: step.facts.images[0] };
  },

  draw(canvas, i, step, ctx, data) {
    paintTile(canvas, data.bitmap, tileRect(data.desc, i));
  },

  options: () => [],

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
};
