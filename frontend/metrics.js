// The per-epoch metrics stored in the facts (tb_cnnvis/summary.py, "Metrics in the facts"),
// shown per view as a compact bar above the cards: each metric chip a number with an inline
// SVG sparkline across epochs. Which metrics a view has is its family's (`metrics`, see
// families.js); per item they are rows of the family's facts. A key is absent in older logs
// and null where the metric failed: both read '—'.

import { h, svg } from './dom.js';

/**
 * The metrics a view shows for a series, read at one of its steps.
 *
 * @param {Family} family the view's family (families.js).
 * @param {Array<object>} steps the series (Store.steps()).
 * @param {number} index the step shown.
 * @param {function(object): object} factsOf the facts a step's metrics are read from (the
 *     stored ones, or those of the cards shown: subset.visibleFacts).
 * @returns {Array<{key, label, hint, text, points: Array<{step, value, compare}>}>} only the
 *     metrics some step of the series has facts for (none for logs older than the metrics).
 * @example viewMetrics(families.feature_maps, steps, 2)[1].text  // '23%'
 */
export function viewMetrics(family, steps, index, factsOf = (step) => step.facts) {
  const metrics = (family?.metrics || [])
    .filter((metric) => steps.some((step) => metric.keys.some((key) => key in step.facts)));
  if (!metrics.length) return [];
  const read = steps.map(factsOf); // once per step for every metric
  const facts = read[index] || {};
  return metrics.map((metric) => ({
    key: metric.key,
    label: metric.label,
    hint: metric.hint,
    text: metric.text(facts),
    points: steps.map((step, k) => ({
      step: step.step,
      value: metric.value(read[k]),
      compare: metric.compare ? metric.compare(read[k]) : null,
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
 * @param {Family} family the view's family.
 * @param {Array<object>|null} steps the series.
 * @param {number} index the step shown.
 * @param {function(object): object} [factsOf] the facts a step's metrics are read from.
 */
export function setMetricsBar(bar, family, steps, index, factsOf = undefined) {
  const metrics = steps ? viewMetrics(family, steps, index, factsOf) : [];
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
