// The page's selection: which run, layer, view and epoch are shown, with which display
// settings (every family's `settings`, families.js), and how it is made consistent with
// the data. Pure functions of the state and the runs; no DOM.

import * as FAMILIES from './families.js';
import { nearestStepIndex } from './model.js';

/** Every family's display settings, with their defaults. */
export const SETTINGS = Object.assign({}, ...Object.values(FAMILIES).map((family) => family.settings));

/** The layer list's own state: the filter typed, the default-only toggle, collapsed groups. */
const LAYER_LIST = { layerFilter: '', defaultLayersOnly: false, closedGroups: [] };

/**
 * The state of a fresh page: the selection (with the method last chosen in each family's
 * tab), the probe and tile size, the class explained
 * (the r-th of each probe's maps, subset.js), the probe filter, the layer list's state,
 * every setting.
 */
export const DEFAULTS = {
  run: '', compare: '', layer: '', kind: '', methods: {}, epoch: null, probe: 0, size: 112, explain: 0,
  probeFilter: 'all', ...LAYER_LIST, ...SETTINGS,
};

/** The state keys kept for the browser tab (host.js saveState). */
export const SAVED = Object.keys(DEFAULTS);

/**
 * Make the selection consistent with the data: a run that exists, a compare run other than
 * it, a view it logged, and a layer of it (one with the view, if the layer is gone).
 *
 * @param {object} state the page state; changed in place.
 * @param {Array<object>} runs the runs (organizeRuns()), at least one.
 * @returns {object} the selected run.
 */
export function normalize(state, runs) {
  const byName = (name) => runs.find((run) => run.name === name);
  const run = byName(state.run) || runs[0];
  state.run = run.name;
  if (state.compare === state.run || !byName(state.compare)) state.compare = '';
  if (!run.kinds.includes(state.kind)) state.kind = run.kinds[0] || '';
  if (!run.layers.some((layer) => layer.name === state.layer)) {
    const first = run.layers.find((layer) => layer.tags.has(state.kind)) || run.layers[0];
    state.layer = first ? first.name : '';
  }
  return run;
}

/**
 * The layer to show a view at: the current one if it has the view, else the nearest one in
 * model order that has it, else the current one.
 *
 * @param {object} run a run (organizeRuns()).
 * @param {string} current the current layer's name.
 * @param {string} kind the view chosen.
 * @returns {string} a layer name.
 */
export function layerFor(run, current, kind) {
  const at = run.layers.findIndex((layer) => layer.name === current);
  if (at >= 0 && run.layers[at].tags.has(kind)) return current;
  const having = run.layers
    .map((layer, index) => ({ layer, distance: Math.abs(index - at) }))
    .filter(({ layer }) => layer.tags.has(kind))
    .sort((a, b) => a.distance - b.distance);
  return having.length ? having[0].layer.name : current;
}

/**
 * The epoch shown: the newest logged at or before the chosen one (the newest if none is
 * chosen), or null when nothing is logged.
 *
 * @param {Array<number>} epochs the logged epochs, in order.
 * @param {?number} chosen the epoch chosen.
 * @returns {?number}
 */
export function shownEpoch(epochs, chosen) {
  if (!epochs.length) return null;
  if (chosen === null) return epochs.at(-1);
  return epochs[nearestStepIndex(epochs.map((step) => ({ step })), chosen)];
}

/** What the pixels of a card depend on besides its step: the probe and every setting. */
export function optionsSignature(state) {
  return JSON.stringify(['probe', ...Object.keys(SETTINGS)].map((key) => state[key]));
}
