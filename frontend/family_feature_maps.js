// Feature maps: one card per channel of the layer, for the probe image chosen; each tile is
// a channel's activations through a colormap, scaled to its own range or the whole layer's.

import { lookupTable } from './colormaps.js';
import { className, fmt, NONE, num, share } from './format.js';
import { imageIndexForProbe, labelOf, tileGray, tileRect } from './model.js';
import { colormapField, segmented } from './options.js';
import { paintGray } from './paint.js';

/**
 * How to redisplay a stored feature-map tile for the chosen scaling.
 *
 * Tiles are stored scaled from their own (probe, channel) min..max, so a stored pixel p
 * means value = min + p / 255 * (max - min). Per channel, the stored pixels are shown as
 * they are; per layer, every channel of the probe shares the range of the whole layer.
 *
 * @param {object} facts the step's feature_maps facts ({min, max} indexed [probe][channel]).
 * @param {number} probe probe index.
 * @param {number} channel channel index.
 * @param {'channel'|'layer'} scaling the scaling mode.
 * @returns {{scale: number, offset: number}} display pixel = offset + scale * p.
 * @example remapFor({min: [[0, 0]], max: [[1, 2]]}, 0, 0, 'layer')  // {scale: 0.5, offset: 0}
 */
export function remapFor(facts, probe, channel, scaling) {
  if (scaling !== 'layer' || !facts.min || !facts.max) return { scale: 1, offset: 0 };
  const lo = Math.min(...facts.min[probe]);
  const hi = Math.max(...facts.max[probe]);
  const min = facts.min[probe][channel];
  const max = facts.max[probe][channel];
  if (!(hi > lo)) return { scale: 0, offset: 0 };
  return { scale: (max - min) / (hi - lo), offset: (255 * (min - lo)) / (hi - lo) };
}

/** Whether a channel is listed as dead (never above 0), or null when not computed. */
function isDead(facts, channel) {
  return Array.isArray(facts.dead_filters) ? facts.dead_filters.includes(channel) : null;
}

/** @type {Family} */
export default {
  name: 'feature_maps',
  settings: { scaling: 'channel', featureColormap: 'viridis' },
  layout: { pickProbe: true, inset: false, wide: false, detailProbe: true, detailTop: true, detailBig: true, pickClass: false, filterProbes: false },

  count(step, ctx) {
    const desc = (step.facts.images || [])[imageIndexForProbe(step.facts, ctx.probe)];
    return desc ? desc.count : 0;
  },

  urls(step, ctx) {
    const url = step.images[imageIndexForProbe(step.facts, ctx.probe)];
    return url ? [url] : [];
  },

  caption(i, step, ctx) {
    const max = step.facts.max?.[ctx.probe]?.[i];
    const badge = isDead(step.facts, i) ? 'dead' : max <= 0 ? 'off' : '';
    return { title: `ch ${i}`, meta: `max ${fmt(max)}`, badge, tone: '', point: '' };
  },

  itemName: (i) => `Channel ${i}`,
  probe: (i, step, ctx) => ctx.probe,
  filter: (i) => i,

  facts(i, step, ctx) {
    const f = step.facts;
    const p = ctx.probe;
    const label = labelOf(step, p, ctx);
    const rows = [
      ['Channel', String(i)],
      ['Probe', label === null || label === undefined ? String(p) : `${p} (${className(ctx.classNames, label)})`],
      ['Min', fmt(f.min?.[p]?.[i])],
      ['Max', fmt(f.max?.[p]?.[i])],
      ['Mean', fmt(f.mean?.[p]?.[i])],
    ];
    if ('dead_filters' in f) {
      const dead = isDead(f, i);
      rows.push(['Dead (no probe above 0)', dead === null ? NONE : dead ? 'yes' : 'no']);
    }
    if (f.seconds !== undefined) rows.push(['Computed in', `${fmt(f.seconds)} s`]);
    return rows;
  },

  async load(i, step, ctx, store) {
    const index = imageIndexForProbe(step.facts, ctx.probe);
    return { atlas: await store.gray(step.images[index]), desc: step.facts.images[index] };
  },

  draw(canvas, i, step, ctx, data) {
    const rect = tileRect(data.desc, i);
    const gray = tileGray(data.atlas.gray, data.atlas.width, rect);
    const remap = remapFor(step.facts, ctx.probe, i, ctx.scaling);
    paintGray(canvas, gray, rect.w, rect.h, lookupTable(ctx.featureColormap), remap);
  },

  options(state, set) {
    const scaling = [['channel', 'Per channel'], ['layer', 'Per layer']];
    return [
      segmented('Scaling', scaling, state.scaling, (v) => set('scaling', v)),
      colormapField(state.featureColormap, (v) => set('featureColormap', v)),
    ];
  },

  metrics: [
    {
      key: 'dead_filters',
      label: 'Dead filters',
      keys: ['dead_filters'],
      hint: 'Channels never above 0 on any probe image.',
      value: (f) => (Array.isArray(f.dead_filters) ? f.dead_filters.length : null),
      text: (f) => {
        if (!Array.isArray(f.dead_filters)) return NONE;
        const channels = f.images?.[0]?.count;
        return channels ? `${f.dead_filters.length} / ${channels}` : String(f.dead_filters.length);
      },
    },
    {
      key: 'sparsity',
      label: 'Sparsity',
      keys: ['sparsity'],
      hint: 'The fraction of the layer’s activations ≤ 0 over the probe images.',
      value: (f) => num(f.sparsity),
      text: (f) => share(f.sparsity),
    },
  ],

  intro(pane, state) {
    const label = pane.probeLabels ? pane.probeLabels[state.probe] : null;
    const probe = label === null || label === undefined ? `probe ${state.probe}` :
      `probe ${state.probe} (${className(pane.run.classNames, label)})`;
    return `Showing ${probe}, each channel scaled to ${state.scaling === 'layer' ? 'the whole layer' : 'its own'} range.`;
  },
};
