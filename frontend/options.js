// The options row under the epoch bar: the fields every family builds its display settings
// from (a colormap, a range, a segmented choice), the probe chooser, the class chooser and
// the probe filter (what the cards show: subset.js), and the tile size.

import { COLORMAP_NAMES, cssGradient } from './colormaps.js';
import { field, h } from './dom.js';
import { classChoices, filterProblem, PROBE_FILTERS } from './subset.js';

/**
 * A select of colormaps with a gradient legend.
 *
 * @param {string} value the colormap chosen.
 * @param {function(string): void} onChange called with the new name.
 * @returns {HTMLElement}
 */
export function colormapField(value, onChange) {
  const legend = h('span', { class: 'legend', style: { background: cssGradient(value) } });
  const select = h(
    'select',
    { on: { change: (e) => onChange(e.target.value) } },
    COLORMAP_NAMES.map((name) => h('option', { value: name, text: name })),
  );
  select.value = value;
  return field('Colormap', select, legend);
}

/**
 * A labelled range input with its value shown beside it.
 *
 * @param {string} text the label.
 * @param {number} value the current value.
 * @param {{min: number, max: number, step: number}} range the input's range.
 * @param {function(number): void} onInput called with each new value.
 * @param {function(number): string} show how the value reads (a percentage by default).
 * @returns {HTMLElement}
 */
export function rangeField(text, value, { min, max, step }, onInput, show = (v) => `${Math.round(v * 100)}%`) {
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

/**
 * A checkbox with its label after it.
 *
 * @param {string} text the label.
 * @param {boolean} checked whether it is ticked.
 * @param {function(boolean): void} onChange called with the new state.
 * @param {string} hint the tooltip: what ticking it does.
 * @returns {HTMLElement}
 */
export function checkboxField(text, checked, onChange, hint = '') {
  const input = h('input', { type: 'checkbox', checked, on: { change: (e) => onChange(e.target.checked) } });
  const row = field(text, input);
  row.classList.add('check');
  row.title = hint;
  row.append(row.querySelector('label')); // the box first, then its label
  return row;
}

/**
 * Two or more mutually exclusive buttons (aria-pressed).
 *
 * @param {string} text the group's label.
 * @param {Array<Array<string>>} choices [value, label] pairs.
 * @param {string} value the value chosen.
 * @param {function(string): void} onChange called with the value clicked.
 * @returns {HTMLElement}
 */
export function segmented(text, choices, value, onChange) {
  const group = h('div', { class: 'segmented', attrs: { role: 'group', 'aria-label': text } });
  for (const [key, label] of choices) {
    group.append(
      h('button', {
        text: label,
        attrs: { 'aria-pressed': String(key === value) },
        dataset: { value: key },
        on: {
          click: (e) => {
            for (const button of group.children) button.setAttribute('aria-pressed', String(button === e.currentTarget));
            onChange(key);
          },
        },
      }),
    );
  }
  return h('div', { class: 'field' }, h('span', { class: 'field-label', text }), group);
}

/**
 * The fields that choose what a pane's cards show: the class explained, when its steps hold
 * several classes per probe, and the probe filter, for views about probe images (disabled,
 * with the reason as its tooltip, when the probes have no labels or no predictions).
 *
 * @param {?object} pane the pane the options follow (panes.js loadPane()).
 * @param {object} state the page's state.
 * @param {function(object): void} choose choose(changes) updates the state and rebuilds.
 * @returns {{fields: Array<HTMLElement>, key: string}} the fields, and what they depend on.
 */
export function subsetFields(pane, state, choose) {
  const layout = pane?.steps ? pane.family.layout : {};
  const choices = layout.pickClass ? classChoices(pane.steps, pane.run.classNames) : null;
  const problem = layout.filterProbes ? filterProblem(pane) : null;
  const fields = [];
  if (choices) {
    const select = h('select', { on: { change: (e) => choose({ explain: Number(e.target.value) }) } },
      choices.map(([value, text]) => h('option', { value, text })));
    select.value = String(Math.min(Number(state.explain) || 0, choices.length - 1));
    fields.push(field('Explained class', select));
  }
  if (problem !== null) {
    const value = problem ? 'all' : state.probeFilter;
    const group = segmented('Probes', PROBE_FILTERS, value, (v) => choose({ probeFilter: v }));
    group.classList.add('probe-filter');
    if (problem) {
      group.title = problem;
      for (const button of group.querySelectorAll('button')) {
        button.disabled = true;
        button.title = problem;
      }
    }
    fields.push(group);
  }
  return { fields, key: JSON.stringify([choices, problem, state.explain, state.probeFilter]) };
}

/**
 * The labels of some fields, in order: what an options row shows, without its values.
 *
 * @param {Array<HTMLElement>} fields fields of the options row.
 * @returns {Array<string>}
 */
export function fieldLabels(fields) {
  return fields.flatMap((node) => [...node.querySelectorAll('label, .field-label')].map((l) => l.textContent));
}

/**
 * Fill the options row: the probe chooser (if any), the fields that choose what the cards
 * show (subsetFields), the family's own fields (its options()), the tile size.
 *
 * @param {HTMLElement} container the options element.
 * @param {object} state the page's state.
 * @param {function(string, *): void} set set(key, value) updates the state and repaints.
 * @param {?HTMLElement} picker the probe chooser, if the family offers it.
 * @param {Array<HTMLElement>} subset the fields of subsetFields().
 * @param {Array<HTMLElement>} own the family's fields.
 * @example setOptions(ui.options, app.state, (k, v) => app.set({[k]: v}), null, [], family.options(...))
 */
export function setOptions(container, state, set, picker = null, subset = [], own = []) {
  const parts = [picker, ...subset, ...own].filter(Boolean);
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
