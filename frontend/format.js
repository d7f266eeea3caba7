// How numbers, classes and metrics read on the page: the formatting every family shares.
// Pure functions, no DOM.

/** What a missing or failed metric reads. */
export const NONE = '—';

/**
 * A class name for an index, or '#i' when the run has no class names ('–' for no index).
 *
 * @param {?Array<string>} classNames the run's class names, if any.
 * @param {?number} index a class index.
 * @returns {string}
 * @example className(['cat', 'dog'], 1)  // 'dog'
 */
export function className(classNames, index) {
  if (index === null || index === undefined) return '–';
  return classNames && classNames[index] !== undefined ? String(classNames[index]) : `#${index}`;
}

/**
 * A probability as a percentage: '83%', '99.6%', '4.2%', '100%' ('–' for none).
 *
 * @param {?number} p a probability in [0, 1].
 * @returns {string}
 * @example percent(0.996)  // '99.6%'
 */
export function percent(p) {
  if (p === null || p === undefined) return '–';
  const digits = p >= 0.99 || p < 0.1 ? 1 : 0;
  return `${Number((100 * p).toFixed(digits))}%`;
}

/**
 * A number with about three significant digits (exponent form when very large or small).
 *
 * @param {?number} value any number.
 * @returns {string} '–' for null, undefined or NaN.
 * @example fmt(0.123456)  // '0.123'
 */
export function fmt(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return '–';
  const abs = Math.abs(value);
  if (abs !== 0 && (abs >= 1e4 || abs < 1e-3)) return value.toExponential(2);
  return Number(value.toPrecision(3)).toString();
}

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
export function share(value) {
  const v = num(value);
  return v === null ? NONE : `${Number((100 * v).toFixed(v < 0.1 ? 1 : 0))}%`;
}

/** 'ρ 0.97 since epoch 3' for a mean rank correlation, or '—'. */
export function driftText(value, facts) {
  if (num(value) === null) return NONE;
  const from = num(facts.drift_from);
  return `ρ ${show(value)}${from === null ? '' : ` since epoch ${from}`}`;
}

/** The detail label of a drift row: 'Drift since epoch 3', or 'Drift'. */
export function driftLabel(facts) {
  return num(facts.drift_from) === null ? 'Drift' : `Drift since epoch ${facts.drift_from}`;
}

/**
 * A name cut to at most `max` characters, keeping its start and its end around an ellipsis
 * (the page shows the whole name on hover).
 *
 * @param {string} name any name (a layer path).
 * @param {number} [max] the longest text returned.
 * @returns {string}
 * @example shortName('x'.repeat(10000), 9)  // 'xxxx…xxxx'
 */
export function shortName(name, max = 48) {
  const text = String(name);
  if (text.length <= max) return text;
  const head = Math.ceil((max - 1) / 2);
  return `${text.slice(0, head)}…${text.slice(text.length - (max - 1 - head))}`;
}
