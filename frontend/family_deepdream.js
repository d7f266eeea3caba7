// DeepDream: one card per probe image, the probe with what the layer sees in it amplified
// (gradient ascent on the layer's mean squared activation, octave by octave), stored as one
// display-RGB PNG per probe at input resolution (tb_cnnvis/views/deepdream.py).

import { fmt, mean, NONE } from './format.js';
import { perProbeImage, probeOfImage } from './model.js';
import { paintBitmap } from './paint.js';

/** '2.4×' for how much the dream raised the objective over the probe's, '–' if unknown. */
function gainText(objective, start) {
  if (typeof objective !== 'number' || typeof start !== 'number' || !(start > 0)) return '–';
  return `${fmt(objective / start)}×`;
}

/** '14×14 → 28×28' for the octaves' (h, w) sizes, smallest first. */
function octavesText(octaves) {
  if (!Array.isArray(octaves) || !octaves.length) return '–';
  return octaves.map((size) => (Array.isArray(size) ? size.join('×') : String(size))).join(' → ');
}

/** The mean over the probes of objective / start objective, or null. */
function meanGain(f) {
  return mean((f.objective || []).map((o, i) => o / f.start_objective?.[i]));
}

/** @type {Family} */
export default {
  name: 'deepdream',
  label: 'DeepDream',
  settings: {},
  ...perProbeImage,

  caption(i, step) {
    const f = step.facts;
    const objective = f.objective?.[i];
    const gain = gainText(objective, f.start_objective?.[i]);
    // The gain leads: it is short at any scale (objectives of deep layers read 2.85e-23)
    // and says what the card shows; the objective itself is in the detail dialog.
    if (gain === '–') return { title: `obj ${fmt(objective)}`, meta: '', badge: '', tone: '', point: '' };
    return { title: gain, meta: 'raised', badge: '', tone: '', point: '' };
  },

  facts(i, step) {
    const f = step.facts;
    const rows = [
      ['Probe', String(probeOfImage(step, i))],
      ['Objective (mean squared activation)', fmt(f.objective?.[i])],
      ['Objective of the probe', fmt(f.start_objective?.[i])],
      ['Raised', gainText(f.objective?.[i], f.start_objective?.[i])],
      ['Octaves (h×w)', octavesText(f.octaves)],
      ['Ascent steps per octave', f.steps === undefined ? '–' : String(f.steps)],
    ];
    if (f.seconds !== undefined) rows.push(['Computed in', `${fmt(f.seconds)} s`]);
    return rows;
  },

  async load(i, step, ctx, store) {
    return { bitmap: await store.bitmap(step.images[i]) };
  },

  draw(canvas, i, step, ctx, data) {
    paintBitmap(canvas, data.bitmap);
  },

  options: () => [],

  metrics: [
    {
      key: 'dream_gain',
      label: 'Objective raised',
      keys: ['objective', 'start_objective'],
      hint: 'Mean over the probes of the dream’s objective (the layer’s mean squared activation) ' +
        'divided by the probe’s own',
      value: meanGain,
      text: (f) => (meanGain(f) === null ? NONE : `${fmt(meanGain(f))}×`),
    },
  ],
};
