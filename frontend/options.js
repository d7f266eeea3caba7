// The options row under the epoch bar: the display settings of the current view family
// (colormaps, opacity, threshold, gain, scaling, tile size) and the probe chooser.

import { COLORMAP_NAMES, cssGradient } from './colormaps.js';
import { field, h } from './dom.js';

/** A select of colormaps with a gradient legend. */
function colormapField(value, onChange) {
  const legend = h('span', { class: 'legend', style: { background: cssGradient(value) } });
  const select = h(
    'select',
    { on: { change: (e) => onChange(e.target.value) } },
    COLORMAP_NAMES.map((name) => h('option', { value: name, text: name })),
  );
  select.value = value;
  return field('Colormap', select, legend);
}

/** A labelled range input with its value shown beside it. */
function rangeField(text, value, { min, max, step }, onInput, show = (v) => `${Math.round(v * 100)}%`) {
  const output = h('output', { text: show(value) });
  const input = h('input', {
    type: 'range',
    min,
    max,
    step,
    value,
    on: {
      input: (e) => {
        output.textContent = show(Number(e.target.value));
        onInput(Number(e.target.value));
      },
    },
  });
  return field(text, input, output);
}

/** Two or more mutually exclusive buttons (aria-pressed). */
function segmented(text, choices, value, onChange) {
  const group = h('div', { class: 'segmented', attrs: { role: 'group', 'aria-label': text } });
  for (const [key, label] of choices) {
    group.append(
      h('button', {
        text: label,
        attrs: { 'aria-pressed': String(key === value) },
        dataset: { value: key },
        on: { click: () => onChange(key) },
      }),
    );
  }
  return h('div', { class: 'field' }, h('span', { class: 'field-label', text }), group);
}

/**
 * The options row of a view family.
 *
 * @param {HTMLElement} container the options element.
 * @param {string} family 'feature_maps' | 'filter_patterns' | 'cam' | 'projection' |
 *     'top_examples'.
 * @param {object} state the page's state (colormaps, opacity, threshold, scaling, size).
 * @param {Function} set set(key, value) updates the state and repaints.
 * @param {HTMLElement|null} probePicker the probe chooser (feature maps), if any.
 * @example setOptions(ui.options, 'cam', app.state, (k, v) => app.set({[k]: v}))
 */
export function setOptions(container, family, state, set, probePicker = null) {
  const parts = [];
  if (probePicker) parts.push(probePicker);
  if (family === 'feature_maps') {
    parts.push(
      segmented('Scaling', [['channel', 'Per channel'], ['layer', 'Per layer']], state.scaling, (v) =>
        set('scaling', v),
      ),
      colormapField(state.featureColormap, (v) => set('featureColormap', v)),
    );
  }
  if (family === 'projection') {
    parts.push(rangeField('Gain', state.gain, { min: 1, max: 8, step: 0.5 }, (v) => set('gain', v), (v) => `${v}×`));
  }
  if (family === 'cam') {
    parts.push(
      colormapField(state.camColormap, (v) => set('camColormap', v)),
      rangeField('Opacity', state.opacity, { min: 0, max: 1, step: 0.05 }, (v) => set('opacity', v)),
      rangeField('Threshold', state.threshold, { min: 0, max: 0.95, step: 0.05 }, (v) => set('threshold', v)),
    );
  }
  parts.push(
    rangeField('Size', state.size, { min: 64, max: 256, step: 16 }, (v) => set('size', v), (v) => `${v}px`),
  );
  container.replaceChildren(...parts);
}

/**
 * The probe chooser: one small thumbnail button per probe image.
 *
 * @param {number} count number of probe images.
 * @param {number} active the chosen probe.
 * @param {Function} labelOf labelOf(i) -> class name of probe i, or ''.
 * @param {Function} onSelect onSelect(i) when probe i is chosen.
 * @returns {{element: HTMLElement, canvases: Array<HTMLCanvasElement>}} the canvases to
 *     draw the probes into.
 */
export function probePicker(count, active, labelOf, onSelect) {
  const group = h('div', { class: 'probe-picker', attrs: { role: 'group', 'aria-label': 'Probe image' } });
  const canvases = [];
  for (let i = 0; i < count; i++) {
    const canvas = h('canvas', { width: 1, height: 1 });
    canvases.push(canvas);
    group.append(
      h(
        'button',
        {
          class: 'probe',
          title: `Probe ${i}${labelOf(i) ? ` (${labelOf(i)})` : ''}`,
          attrs: { 'aria-pressed': String(i === active), 'aria-label': `Probe ${i}` },
          on: { click: () => onSelect(i) },
        },
        canvas,
      ),
    );
  }
  return { element: h('div', { class: 'field' }, h('span', { class: 'field-label', text: 'Probe' }), group), canvases };
}
