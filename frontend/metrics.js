// The per-epoch metrics stored in the facts (tb_cnnvis/summary.py, "Metrics in the facts"):
// what each view shows of them, per item (a card's badge, the detail's rows) and per view (a
// compact bar above the cards, each number with an inline SVG sparkline across epochs).
// A key is absent in older logs and null where the metric failed: both read '—'.

import { h, svg } from './dom.js';

/** What a missing or failed metric reads. */
export const NONE = '—';

/** A finite number, or null (absent, null, or stored as the string "NaN"). */
export function num(value) {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

/** The mean of the finite numbers of a list, or null if it has none. */
export function mean(values) {
  const finite = Array.isArray(values) ? values.map(num).filter((v) => v !== null) : [];
  return finite.length ? finite.reduce((a, b) => a + b, 0) / finite.length : null;
}

/** A metric with three significant digits, or '—'. */
export function show(value) {
  const v = num(value);
  return v === null ? NONE : Number(v.toPrecision(3)).toString();
}

/** A fraction as a percentage with at most one decimal, or '—'. */
function percent(value) {
  const v = num(value);
  return v === null ? NONE : `${Number((100 * v).toFixed(v < 0.1 ? 1 : 0))}%`;
}

/** The pointing-game hits of a step: {hits, count}, or null without masks. */
function pointing(facts) {
  const hits = facts.pointing_hits;
  if (!Array.isArray(hits)) return null;
  const known = hits.filter((hit) => hit === true || hit === false);
  return known.length ? { hits: known.filter(Boolean).length, count: known.length } : null;
}

/** 'ρ 0.97 since epoch 3' for a mean rank correlation, or '—'. */
function driftText(value, facts) {
  if (num(value) === null) return NONE;
  const from = num(facts.drift_from);
  return `ρ ${show(value)}${from === null ? '' : ` since epoch ${from}`}`;
}

/**
 * The metrics of each view family: `keys` are the facts they read (the metric is shown when
 * a step of the series has one of them), `value(facts)` is the number plotted, `compare` a
 * second line (dashed), `text(facts)` the reading at one epoch.
 */
const METRICS = {
  cam: [
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
        return p ? `${p.hits}/${p.count} (${percent(p.hits / p.count)})` : NONE;
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
  feature_maps: [
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
      text: (f) => percent(f.sparsity),
    },
  ],
  filter_patterns: [
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

/**
 * The metrics a view shows for a series, read at one of its steps.
 *
 * @param {string} family a VIEWS family.
 * @param {Array<object>} steps the series (Store.steps()).
 * @param {number} index the step shown.
 * @returns {Array<{key, label, hint, text, points: Array<{step, value, compare}>}>} only the
 *     metrics some step of the series has facts for (none for logs older than the metrics).
 * @example viewMetrics('feature_maps', steps, 2)[1].text  // '23%'
 */
export function viewMetrics(family, steps, index) {
  const facts = steps[index]?.facts || {};
  return (METRICS[family] || [])
    .filter((metric) => steps.some((step) => metric.keys.some((key) => key in step.facts)))
    .map((metric) => ({
      key: metric.key,
      label: metric.label,
      hint: metric.hint,
      text: metric.text(facts),
      points: steps.map((step) => ({
        step: step.step,
        value: metric.value(step.facts),
        compare: metric.compare ? metric.compare(step.facts) : null,
      })),
    }));
}

/** An SVG polyline's points for values, broken into runs at nulls. */
function segments(points, field, x, y) {
  const runs = [[]];
  for (const point of points) {
    if (point[field] === null) runs.push([]);
    else runs.at(-1).push(`${x(point.step).toFixed(1)},${y(point[field]).toFixed(1)}`);
  }
  return runs.filter((run) => run.length > 1 || (run.length === 1 && points.length === 1));
}

/**
 * A small line chart of a metric across epochs, with a dot at the epoch shown.
 *
 * @param {Array<{step, value, compare}>} points one per logged epoch, in step order.
 * @param {number} current the step shown.
 * @returns {SVGElement|null} null when fewer than two epochs have a value.
 */
export function sparkline(points, current) {
  const values = points.flatMap((p) => [p.value, p.compare]).filter((v) => v !== null);
  if (points.filter((p) => p.value !== null).length < 2) return null;
  const [width, height, pad] = [72, 20, 3];
  const first = points[0].step;
  const span = Math.max(1, points.at(-1).step - first);
  const [lo, hi] = [Math.min(...values), Math.max(...values)];
  const x = (step) => pad + ((step - first) / span) * (width - 2 * pad);
  const y = (v) => (hi > lo ? height - pad - ((v - lo) / (hi - lo)) * (height - 2 * pad) : height / 2);
  const lines = [];
  for (const [field, cls] of [['compare', 'spark-compare'], ['value', 'spark-line']]) {
    for (const run of segments(points, field, x, y)) {
      lines.push(svg('polyline', { class: cls, attrs: { points: run.join(' ') } }));
    }
  }
  const at = points.find((p) => p.step === current && p.value !== null);
  const dot = at ? svg('circle', { class: 'spark-dot', attrs: { cx: x(at.step), cy: y(at.value), r: 2.5 } }) : null;
  return svg(
    'svg',
    { class: 'sparkline', attrs: { width, height, viewBox: `0 0 ${width} ${height}`, 'aria-hidden': 'true' } },
    ...lines,
    dot,
  );
}

/**
 * Fill a pane's metrics bar for the step shown (hidden when the view has no metrics).
 *
 * @param {HTMLElement} bar the pane's `.metrics` element.
 * @param {string} family a VIEWS family.
 * @param {Array<object>|null} steps the series.
 * @param {number} index the step shown.
 */
export function setMetricsBar(bar, family, steps, index) {
  const metrics = steps ? viewMetrics(family, steps, index) : [];
  bar.hidden = metrics.length === 0;
  const current = steps?.[index]?.step;
  bar.replaceChildren(
    ...metrics.map((metric) =>
      h(
        'div',
        { class: 'metric', title: metric.hint, dataset: { metric: metric.key } },
        h('span', { class: 'metric-label', text: metric.label }),
        h('span', { class: 'metric-value', text: metric.text }),
        sparkline(metric.points, current),
      ),
    ),
  );
}

/** The pointing-game result of probe card i: 'hit', 'miss' or '' (not computed). */
export function pointingOf(facts, i) {
  const hit = Array.isArray(facts.pointing_hits) ? facts.pointing_hits[i] : null;
  return hit === true ? 'hit' : hit === false ? 'miss' : '';
}

/** The detail rows of item i's metrics at one step (only for facts the step has). */
export function itemMetricRows(family, i, facts, filter = i) {
  const rows = [];
  const since = num(facts.drift_from) === null ? 'Drift' : `Drift since epoch ${facts.drift_from}`;
  if (family === 'cam') {
    if ('deletion_auc' in facts) {
      rows.push(['Deletion AUC', show(facts.deletion_auc?.[i])]);
      rows.push(['Random map’s AUC', show(facts.deletion_auc_random?.[i])]);
    }
    if ('pointing_hits' in facts) {
      const result = pointingOf(facts, i);
      rows.push(['Pointing game', result === 'hit' ? '✓ on the object' : result === 'miss' ? '✗ off the object' : NONE]);
    }
    if ('drift' in facts) rows.push([since, driftText(facts.drift?.[i], {})]);
  } else if (family === 'filter_patterns') {
    if ('drift' in facts) rows.push([since, driftText(facts.drift?.[i], {})]);
  } else if (family === 'feature_maps') {
    if ('dead_filters' in facts) {
      const dead = Array.isArray(facts.dead_filters) ? facts.dead_filters.includes(filter) : null;
      rows.push(['Dead (no probe above 0)', dead === null ? NONE : dead ? 'yes' : 'no']);
    }
  }
  return rows;
}
