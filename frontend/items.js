// What each view's items are (a channel, a filter, a probe image) and how to describe them:
// counts, captions, names and facts, read from a step's stored facts (tb_cnnvis/summary.py).
// Pure functions, no DOM and no fetching.

import { itemMetricRows, num, pointingOf, show } from './metrics.js';
import { imageIndexForProbe } from './model.js';

/** A class name for an index, or '#i' when the run has no class names. */
export function className(classNames, index) {
  if (index === null || index === undefined) return '–';
  return classNames && classNames[index] !== undefined ? String(classNames[index]) : `#${index}`;
}

/** A probability as a percentage: '83%', '99.6%', '4.2%', '100%'. */
function percent(p) {
  if (p === null || p === undefined) return '–';
  const digits = p >= 0.99 || p < 0.1 ? 1 : 0;
  return `${Number((100 * p).toFixed(digits))}%`;
}

/** A number with about three significant digits (exponent form when very large or small). */
export function fmt(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return '–';
  const abs = Math.abs(value);
  if (abs !== 0 && (abs >= 1e4 || abs < 1e-3)) return value.toExponential(2);
  return Number(value.toPrecision(3)).toString();
}

/** The probe index that item i of a step is about (probe-per-image kinds). */
function probeOfImage(step, i) {
  const desc = (step.facts.images || [])[i];
  return desc && desc.probe !== null && desc.probe !== undefined ? desc.probe : i;
}

/** The true label of a probe, from the step's facts or the probes tag. */
function labelOf(step, probe, ctx) {
  const labels = step.facts.labels || ctx.probeLabels;
  return labels ? labels[probe] : null;
}

/**
 * How many items (tiles or images) one step of a view holds.
 *
 * @param {string} family a VIEWS family.
 * @param {object} step a step from Store.steps().
 * @param {{probe: number}} ctx the chosen probe (feature maps).
 * @returns {number}
 */
export function itemCount(family, step, ctx) {
  const images = step.facts.images || [];
  if (family === 'feature_maps') {
    const desc = images[imageIndexForProbe(step.facts, ctx.probe)];
    return desc ? desc.count : 0;
  }
  if (family === 'filter_patterns') return images[0] ? images[0].count : 0;
  if (family === 'top_examples') return (step.facts.filters || []).length;
  return step.images.length;
}

/** The image URLs one step of a view needs (what a prefetch would load). */
export function itemUrls(family, step, ctx) {
  if (family === 'feature_maps') {
    const url = step.images[imageIndexForProbe(step.facts, ctx.probe)];
    return url ? [url] : [];
  }
  if (family === 'filter_patterns') return step.images.slice(0, 1);
  return step.images;
}

/** The filter (channel) item i is about, or null (CAMs and projections are about probes). */
export function itemFilter(family, i, step) {
  if (family === 'feature_maps') return i;
  if (family === 'filter_patterns' || family === 'top_examples') return step.facts.filters?.[i] ?? i;
  return null;
}

/**
 * The short caption of item i: {title, note, meta, badge, tone, point} (note: a short figure
 * beside the title, e.g. a filter's drift; tone: 'good' | 'bad' | ''; point: the pointing
 * game's 'hit' | 'miss' | '').
 *
 * @param {string} family a VIEWS family.
 * @param {number} i item index.
 * @param {object} step a step from Store.steps().
 * @param {object} ctx {probe, classNames, probeLabels}.
 */
export function itemCaption(family, i, step, ctx) {
  const f = step.facts;
  if (family === 'feature_maps') {
    const max = f.max?.[ctx.probe]?.[i];
    const dead = Array.isArray(f.dead_filters) && f.dead_filters.includes(i);
    return { title: `ch ${i}`, meta: `max ${fmt(max)}`, badge: dead ? 'dead' : max <= 0 ? 'off' : '', tone: '', point: '' };
  }
  if (family === 'filter_patterns') {
    const filter = f.filters ? f.filters[i] : i;
    const dead = (f.dead || []).includes(filter);
    const note = 'drift' in f ? `ρ ${show(f.drift?.[i])}` : '';
    return { title: `#${filter}`, note, meta: `act ${fmt(f.activations?.[i])}`, badge: dead ? 'dead' : '', tone: '', point: '' };
  }
  if (family === 'top_examples') {
    const best = f.activations?.[i]?.[0];
    const k = f.indices?.[i]?.length ?? 0;
    return { title: `#${itemFilter(family, i, step)}`, meta: `top ${k} · best ${fmt(num(best))}`, badge: '', tone: '', point: '' };
  }
  const probe = probeOfImage(step, i);
  if (family === 'cam') {
    const predicted = f.predicted?.[i];
    const label = labelOf(step, probe, ctx);
    const tone = label === null || label === undefined ? '' : label === predicted ? 'good' : 'bad';
    return {
      title: `${className(ctx.classNames, predicted)} ${percent(f.probability?.[i])}`,
      meta: label === null || label === undefined ? `probe ${probe}` : `true ${className(ctx.classNames, label)}`,
      badge: '',
      tone,
      point: pointingOf(f, i),
    };
  }
  return { title: `unit ${f.channel?.[i] ?? '–'}`, meta: `act ${fmt(f.activation?.[i])}`, badge: '', tone: '', point: '' };
}

/** The name of item i in its view, e.g. 'Filter 5' or 'Probe 2'. */
export function itemName(family, i, step, ctx) {
  if (family === 'feature_maps') return `Channel ${i}`;
  if (family === 'filter_patterns' || family === 'top_examples') return `Filter ${itemFilter(family, i, step)}`;
  return `Probe ${probeOfImage(step, i)}`;
}

/** The probe image an item is about, or null (filter patterns are about no probe). */
export function itemProbe(family, i, step, ctx) {
  if (family === 'filter_patterns' || family === 'top_examples') return null;
  if (family === 'feature_maps') return ctx.probe;
  return probeOfImage(step, i);
}

/**
 * Every stored fact of item i at one step, as [label, text] rows for the detail panel.
 *
 * @param {string} family a VIEWS family.
 * @param {number} i item index.
 * @param {object} step a step from Store.steps().
 * @param {object} ctx {probe, classNames, probeLabels}.
 * @returns {Array<[string, string]>}
 */
export function itemFacts(family, i, step, ctx) {
  const f = step.facts;
  const rows = [];
  if (family === 'feature_maps') {
    const p = ctx.probe;
    const label = labelOf(step, p, ctx);
    rows.push(['Channel', String(i)], ['Probe', label === null || label === undefined ? String(p) : `${p} (${className(ctx.classNames, label)})`]);
    rows.push(['Min', fmt(f.min?.[p]?.[i])], ['Max', fmt(f.max?.[p]?.[i])], ['Mean', fmt(f.mean?.[p]?.[i])]);
  } else if (family === 'filter_patterns') {
    const filter = f.filters ? f.filters[i] : i;
    rows.push(['Filter index', String(filter)], ['Activation reached', fmt(f.activations?.[i])]);
    rows.push(['Activation at start', fmt(f.start_activations?.[i])]);
    rows.push(['Dead', (f.dead || []).includes(filter) ? 'yes (stayed ≤ 0)' : 'no']);
  } else if (family === 'top_examples') {
    const field = f.receptive_field;
    rows.push(['Filter index', String(itemFilter(family, i, step))]);
    rows.push(['Strongest activation', fmt(num(f.activations?.[i]?.[0]))]);
    rows.push(['Reference images searched', String(f.reference_count ?? '–')]);
    if (field?.size) rows.push(['Receptive field', `${field.size.join('×')} px, stride ${field.stride.join('×')}`]);
  } else if (family === 'cam') {
    const probe = probeOfImage(step, i);
    const label = labelOf(step, probe, ctx);
    rows.push(['Probe', String(probe)]);
    rows.push(['Predicted class', className(ctx.classNames, f.predicted?.[i])]);
    rows.push(['Probability', percent(f.probability?.[i])]);
    rows.push(['True class', className(ctx.classNames, label)]);
    rows.push(['Explained class', className(ctx.classNames, f.class_index?.[i])]);
    rows.push(['Its probability', percent(f.target_probability?.[i])]);
    rows.push(['CAM maximum', fmt(f.cam_max?.[i])]);
  } else {
    const position = f.position?.[i];
    rows.push(['Probe', String(probeOfImage(step, i))], ['Unit (channel)', String(f.channel?.[i] ?? '–')]);
    rows.push(['Activation', fmt(f.activation?.[i])], ['Position (y, x)', position ? position.join(', ') : '–']);
    rows.push(['Largest |value|', fmt(f.scale?.[i])]);
  }
  rows.push(...itemMetricRows(family, i, f, itemFilter(family, i, step)));
  if (f.seconds !== undefined) rows.push(['Computed in', `${fmt(f.seconds)} s`]);
  return rows;
}
