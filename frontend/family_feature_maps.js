// Feature maps: one card per stored channel of the layer, for the probe image chosen; each
// tile is a channel's activations through a colormap, scaled to its own range or the whole
// layer's. Within the byte budget a step may store only the most active channels, and large
// maps downsampled (facts `channels`, `channel_count`, `map_size`): cards and the detail
// name the real channel, and the intro says what is stored.

import { lookupTable } from './colormaps.js';
import { className, fmt, NONE, num, share } from './format.js';
import { imageIndexForProbe, labelOf, nearestStepIndex, shapeText, tileGray, tileRect } from './model.js';
import { colormapField, segmented } from './options.js';
import { paintGray } from './paint.js';

/**
 * How to redisplay a stored feature-map tile for the chosen scaling.
 *
 * Tiles are stored scaled from their own (probe, channel) min..max, so a stored pixel p
 * means value = min + p / 255 * (max - min). Per channel, the stored pixels are shown as
 * they are; per layer, every channel of the probe shares the range of the whole layer.
 *
 * @param {object} facts the step's feature_maps facts ({min, max} indexed [probe][tile]: by
 *     stored channel, in tile order; per layer is then the range of the stored channels).
 * @param {number} probe probe index.
 * @param {number} channel the tile index (not the channel id, see channelOf).
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

/**
 * The channel that tile i of a step shows: `facts.channels[i]`, or i in logs written before
 * the byte budget (every channel stored, in order).
 *
 * @param {object} facts a feature_maps step's facts.
 * @param {number} i the tile (card) index.
 * @returns {number}
 * @example channelOf({channels: [7, 3]}, 1)  // 3
 */
export function channelOf(facts, i) {
  return Array.isArray(facts.channels) ? facts.channels[i] ?? i : i;
}

/**
 * What a step stores of its layer.
 *
 * @param {object} facts a feature_maps step's facts.
 * @returns {{stored: number, total: number, subset: boolean, tile: ?Array<number>, size:
 *     ?Array<number>, downsampled: boolean}} channels stored and in the layer (`subset`: fewer
 *     stored, the most active first), the stored tile size and the true map size.
 * @example storedOf({channels: [4, 1], channel_count: 8, map_size: [112, 112], images: [{tile: [56, 56]}]})
 */
export function storedOf(facts) {
  const tile = facts.images?.[0]?.tile || null;
  const stored = Array.isArray(facts.channels) ? facts.channels.length : facts.images?.[0]?.count ?? 0;
  const total = typeof facts.channel_count === 'number' ? facts.channel_count : stored;
  const size = Array.isArray(facts.map_size) ? facts.map_size : tile;
  const downsampled = Boolean(tile && size && (tile[0] !== size[0] || tile[1] !== size[1]));
  return { stored, total, subset: stored < total, tile, size, downsampled };
}

/**
 * What a step shows of its layer, in words: '32 of 256 channels, the most active first,
 * stored at 56×56 of 112×112' ('all 64 channels, stored at …' when only downsampled); ''
 * when every channel is stored at full size.
 *
 * @param {object} facts a feature_maps step's facts.
 * @returns {string}
 */
export function storageText(facts) {
  const s = storedOf(facts);
  const parts = [];
  if (s.subset) parts.push(`${s.stored} of ${s.total} channels, the most active first`);
  else if (s.downsampled) parts.push(`all ${s.total} channels`);
  if (s.downsampled) parts.push(`stored at ${shapeText(s.tile)} of ${shapeText(s.size)}`);
  return parts.join(', ');
}

/** Whether a channel is listed as dead (one value on every probe), or null when not computed. */
function isDead(facts, channel) {
  return Array.isArray(facts.dead_filters) ? facts.dead_filters.includes(channel) : null;
}

/** @type {Family} */
export default {
  name: 'feature_maps',
  label: 'Feature maps',
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
    const badge = isDead(step.facts, channelOf(step.facts, i)) ? 'dead' : max <= 0 ? 'off' : '';
    return { title: `ch ${channelOf(step.facts, i)}`, meta: `max ${fmt(max)}`, badge, tone: '', point: '' };
  },

  itemName: (i, step) => `Channel ${channelOf(step.facts, i)}`,
  itemKey: (i, step) => channelOf(step.facts, i),
  probe: (i, step, ctx) => ctx.probe,
  filter: (i, step) => channelOf(step.facts, i),

  facts(i, step, ctx) {
    const f = step.facts;
    const p = ctx.probe;
    const label = labelOf(step, p, ctx);
    const stored = storedOf(f);
    const rows = [
      ['Channel', String(channelOf(f, i))],
      ['Probe', label === null || label === undefined ? String(p) : `${p} (${className(ctx.classNames, label)})`],
      ['Min', fmt(f.min?.[p]?.[i])],
      ['Max', fmt(f.max?.[p]?.[i])],
      ['Mean', fmt(f.mean?.[p]?.[i])],
    ];
    if ('dead_filters' in f) {
      const dead = isDead(f, channelOf(f, i));
      rows.push(['Dead (one value on every probe)', dead === null ? NONE : dead ? 'yes' : 'no']);
    }
    if (stored.subset) {
      rows.push(['Activity rank', `${i + 1} of ${stored.total}`]);
      rows.push(['Channels stored', `${stored.stored} of ${stored.total}, the most active first`]);
    }
    if (stored.downsampled) rows.push(['Map size', `${shapeText(stored.size)}, stored at ${shapeText(stored.tile)}`]);
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

  detailRow: async () => null,
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
        const channels = storedOf(f).total;
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
    const step = pane.steps?.[nearestStepIndex(pane.steps, state.epoch ?? pane.steps.at(-1).step)];
    const stored = step ? storedOf(step.facts) : { subset: false };
    const what = step && storageText(step.facts) ? `: ${storageText(step.facts)};` : ',';
    const range = state.scaling !== 'layer' ? 'its own range' :
      stored.subset ? `the range of the ${stored.stored} stored channels` : 'the whole layer range';
    return `Showing ${probe}${what} each channel scaled to ${range}.`;
  },
};
