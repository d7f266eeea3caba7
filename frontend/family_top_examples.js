// Top examples: one wide card per filter, its top-activating reference patches beside their
// deconvnet projections (Zeiler & Fergus, 2014); the mosaics and the detail's pairs are
// drawn by top_examples.js.

import { fmt, num } from './format.js';
import { loadAtlases, paintMosaics } from './top_examples.js';

/** The filter index of item i (row i of the step's atlases). */
function filterOf(i, step) {
  return step.facts.filters?.[i] ?? i;
}

/** @type {Family} */
export default {
  name: 'top_examples',
  label: 'Top examples',
  settings: {},
  layout: {
    pickProbe: false, inset: false, wide: true, detailProbe: false, detailTop: true, detailBig: false,
    pickClass: false, filterProbes: false,
  },

  count: (step) => (step.facts.filters || []).length,
  urls: (step) => step.images,

  caption(i, step) {
    const f = step.facts;
    const k = f.indices?.[i]?.length ?? 0;
    const best = fmt(num(f.activations?.[i]?.[0]));
    return { title: `#${filterOf(i, step)}`, meta: `top ${k} · best ${best}`, badge: '', tone: '', point: '' };
  },

  itemName: (i, step) => `Filter ${filterOf(i, step)}`,
  itemKey: filterOf,
  probe: () => null,
  filter: filterOf,

  facts(i, step) {
    const f = step.facts;
    const field = f.receptive_field;
    const rows = [
      ['Filter index', String(filterOf(i, step))],
      ['Strongest activation', fmt(num(f.activations?.[i]?.[0]))],
      ['Reference images searched', String(f.reference_count ?? '–')],
    ];
    if (field?.size) rows.push(['Receptive field', `${field.size.join('×')} px, stride ${field.stride.join('×')}`]);
    if (f.seconds !== undefined) rows.push(['Computed in', `${fmt(f.seconds)} s`]);
    return rows;
  },

  load: (i, step, ctx, store) => loadAtlases(step, store),

  draw(canvas, i, step, ctx, atlases) {
    paintMosaics(canvas, atlases, i, step.facts.indices?.[i]?.length ?? atlases.patches.desc.grid[1]);
  },

  detailRow: async () => null,
  options: () => [],
  metrics: [],

  intro(pane) {
    const facts = pane.steps?.at(-1)?.facts;
    if (!facts?.indices?.length) return '';
    const searched = facts.reference_count ? ` of ${facts.reference_count} reference images` : '';
    return `Top ${facts.indices[0].length}${searched} per filter, projections left, patches right.`;
  },
};
