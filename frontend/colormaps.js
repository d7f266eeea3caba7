// Colormaps and the per-pixel compositing the dashboard does in the browser.
//
// Every colormap is a 256-entry lookup table (Uint8ClampedArray of RGB triples) built once
// from a handful of stops by linear interpolation. The stops of viridis and inferno are ten
// evenly spaced samples of matplotlib's maps (van der Walt & Smith, 2015); jet is the
// classic piecewise-linear rainbow that Grad-CAM figures use (Selvaraju et al., 2017).
// Signed maps (class attributions) use a diverging map, ColorBrewer's RdBu (Brewer 2003):
// blue below zero, red above, its neutral near-white exactly at the stored zero, 128.

const STOPS = {
  viridis: [
    '#440154', '#482878', '#3e4a89', '#31688e', '#26828e',
    '#1f9e89', '#35b779', '#6dcd59', '#b4de2c', '#fde725',
  ],
  inferno: [
    '#000004', '#1b0c42', '#4b0c6b', '#781c6d', '#a52c60',
    '#cf4446', '#ed6925', '#fb9a06', '#f7d03c', '#fcffa4',
  ],
  gray: ['#000000', '#ffffff'],
};

/** RdBu's eleven stops, from the most negative (dark blue) to the most positive (dark red). */
const DIVERGING_STOPS = [
  '#053061', '#2166ac', '#4393c3', '#92c5de', '#d1e5f0', '#f7f7f7',
  '#fddbc7', '#f4a582', '#d6604d', '#b2182b', '#67001f',
];

/** The name of the diverging colormap of signed maps (not among the page's choices). */
export const DIVERGING = 'diverging';

/** Names of the colormaps, in the order the page offers them. */
export const COLORMAP_NAMES = ['viridis', 'jet', 'inferno', 'gray'];

const tables = new Map();

/** Parse '#rrggbb' into [r, g, b]. */
function hexToRgb(hex) {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/** A table interpolated linearly between evenly spaced stops. */
function fromStops(stops) {
  const rgb = stops.map(hexToRgb);
  const table = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) {
    const pos = (i / 255) * (rgb.length - 1);
    const lo = Math.min(Math.floor(pos), rgb.length - 2);
    const frac = pos - lo;
    for (let c = 0; c < 3; c++) {
      table[i * 3 + c] = Math.round(rgb[lo][c] + (rgb[lo + 1][c] - rgb[lo][c]) * frac);
    }
  }
  return table;
}

/** Jet: blue, cyan, yellow, red, each channel a clipped triangle over t in [0, 1]. */
function jet() {
  const table = new Uint8ClampedArray(256 * 3);
  const clip = (x) => Math.max(0, Math.min(1, x));
  for (let i = 0; i < 256; i++) {
    const t = i / 255;
    table[i * 3] = Math.round(255 * clip(1.5 - Math.abs(4 * t - 3)));
    table[i * 3 + 1] = Math.round(255 * clip(1.5 - Math.abs(4 * t - 2)));
    table[i * 3 + 2] = Math.round(255 * clip(1.5 - Math.abs(4 * t - 1)));
  }
  return table;
}

/**
 * The diverging table of signed maps stored as 128 + 127 * value / scale: entry 128 is
 * RdBu's middle stop exactly, 255 and 1 its ends (entry 0, unused, is the blue end too), so
 * equal values of opposite sign get colours of equal strength.
 */
function diverging() {
  const rgb = DIVERGING_STOPS.map(hexToRgb);
  const half = (rgb.length - 1) / 2;
  const table = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) {
    const pos = (1 + Math.max(-1, (i - 128) / 127)) * half;
    const lo = Math.min(Math.floor(pos), rgb.length - 2);
    const frac = pos - lo;
    for (let c = 0; c < 3; c++) {
      table[i * 3 + c] = Math.round(rgb[lo][c] + (rgb[lo + 1][c] - rgb[lo][c]) * frac);
    }
  }
  return table;
}

/**
 * The 256-entry RGB lookup table of a colormap.
 *
 * @param {string} name one of COLORMAP_NAMES, or DIVERGING.
 * @returns {Uint8ClampedArray} 768 values: entry i is table[3i..3i+2].
 * @throws {Error} for an unknown name (the message lists the known ones).
 * @example lookupTable('viridis').slice(0, 3)  // Uint8ClampedArray [68, 1, 84]
 */
export function lookupTable(name) {
  if (!tables.has(name)) {
    if (name === 'jet') tables.set(name, jet());
    else if (name === DIVERGING) tables.set(name, diverging());
    else if (STOPS[name]) tables.set(name, fromStops(STOPS[name]));
    else throw new Error(`Unknown colormap "${name}"; expected one of ${COLORMAP_NAMES.join(', ')}`);
  }
  return tables.get(name);
}

/**
 * A CSS linear-gradient showing a colormap from low (left) to high (right), for legends.
 *
 * @param {string} name one of COLORMAP_NAMES.
 * @returns {string} e.g. 'linear-gradient(to right, rgb(68,1,84), ...)'.
 */
export function cssGradient(name) {
  const table = lookupTable(name);
  const parts = [];
  for (let i = 0; i <= 8; i++) {
    const k = Math.round((i / 8) * 255) * 3;
    parts.push(`rgb(${table[k]},${table[k + 1]},${table[k + 2]})`);
  }
  return `linear-gradient(to right, ${parts.join(', ')})`;
}

/**
 * Colour single-channel intensities through a lookup table, with an optional remapping.
 *
 * @param {Uint8ClampedArray} gray intensities 0..255, one per pixel.
 * @param {Uint8ClampedArray} table from lookupTable().
 * @param {ImageData} out receives RGBA pixels (same pixel count as gray).
 * @param {{scale?: number, offset?: number}} remap display = clamp(offset + scale * gray):
 *     the identity by default; feature maps use it to switch to a per-layer range.
 */
export function colorize(gray, table, out, { scale = 1, offset = 0 } = {}) {
  const px = out.data;
  for (let i = 0, j = 0; i < gray.length; i++, j += 4) {
    let v = Math.round(offset + scale * gray[i]);
    v = v < 0 ? 0 : v > 255 ? 255 : v;
    px[j] = table[v * 3];
    px[j + 1] = table[v * 3 + 1];
    px[j + 2] = table[v * 3 + 2];
    px[j + 3] = 255;
  }
}

/**
 * Blend a heat map over an image: the class activation map overlay of Grad-CAM.
 *
 * Pixels whose intensity is below the threshold keep the image; the others get
 * image * (1 - opacity) + colour * opacity.
 *
 * @param {Uint8ClampedArray} base RGBA pixels of the image (probe).
 * @param {Uint8ClampedArray} heat intensities 0..255 (map in [0, 1] times 255), one per pixel.
 * @param {Uint8ClampedArray} table from lookupTable().
 * @param {ImageData} out receives RGBA pixels (same size as base).
 * @param {{opacity: number, threshold: number}} options opacity and threshold in [0, 1].
 * @example overlay(probe.data, cam, lookupTable('jet'), out, {opacity: 0.5, threshold: 0.2})
 */
export function overlay(base, heat, table, out, { opacity, threshold }) {
  const px = out.data;
  const cut = threshold * 255;
  const keep = 1 - opacity;
  for (let i = 0, j = 0; i < heat.length; i++, j += 4) {
    const v = heat[i];
    if (v < cut) {
      px[j] = base[j];
      px[j + 1] = base[j + 1];
      px[j + 2] = base[j + 2];
    } else {
      px[j] = base[j] * keep + table[v * 3] * opacity;
      px[j + 1] = base[j + 1] * keep + table[v * 3 + 1] * opacity;
      px[j + 2] = base[j + 2] * keep + table[v * 3 + 2] * opacity;
    }
    px[j + 3] = 255;
  }
}

/**
 * Amplify an RGB image's deviations from mid-grey: how projections (deconvnet, guided
 * backprop, saliency), stored with zero at grey, are made easier to see.
 *
 * @param {Uint8ClampedArray} src RGBA pixels.
 * @param {number} gain 1 keeps the image; k multiplies every (value - 128) by k.
 * @param {ImageData} out receives RGBA pixels (same size).
 */
export function amplify(src, gain, out) {
  const px = out.data;
  for (let j = 0; j < src.length; j += 4) {
    px[j] = 128 + (src[j] - 128) * gain;
    px[j + 1] = 128 + (src[j + 1] - 128) * gain;
    px[j + 2] = 128 + (src[j + 2] - 128) * gain;
    px[j + 3] = 255;
  }
}

/**
 * Colour a signed map (stored as 128 + 127 * value / scale) through the diverging table,
 * alone or blended over an image.
 *
 * Over an image, each pixel is image * (1 - a) + colour * a with a = opacity * sqrt(|t|),
 * where t = gain * (stored - 128) / 127 clipped to [-1, 1]: zero leaves the image as it is,
 * the strongest values get the full opacity, and the square root keeps weaker ones in view.
 * Alone, the colour is the table's entry for t.
 *
 * @param {Uint8ClampedArray} signed stored values 0..255, one per pixel.
 * @param {?Uint8ClampedArray} base RGBA pixels of the image, or null for the map alone.
 * @param {Uint8ClampedArray} table lookupTable(DIVERGING).
 * @param {ImageData} out receives RGBA pixels (same pixel count).
 * @param {{opacity: number, gain: number}} options opacity in [0, 1]; gain >= 1 saturates
 *     at scale / gain.
 * @example signedOverlay(map, null, lookupTable(DIVERGING), out, {opacity: 0.5, gain: 1})
 */
export function signedOverlay(signed, base, table, out, { opacity, gain }) {
  const px = out.data;
  for (let i = 0, j = 0; i < signed.length; i++, j += 4) {
    let t = (gain * (signed[i] - 128)) / 127;
    t = t < -1 ? -1 : t > 1 ? 1 : t;
    const k = Math.round(128 + 127 * t) * 3;
    if (base) {
      const a = opacity * Math.sqrt(Math.abs(t));
      px[j] = base[j] * (1 - a) + table[k] * a;
      px[j + 1] = base[j + 1] * (1 - a) + table[k + 1] * a;
      px[j + 2] = base[j + 2] * (1 - a) + table[k + 2] * a;
    } else {
      px[j] = table[k];
      px[j + 1] = table[k + 1];
      px[j + 2] = table[k + 2];
    }
    px[j + 3] = 255;
  }
}
