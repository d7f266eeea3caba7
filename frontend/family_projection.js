// Projections (deconvnet, guided backprop, saliency): one card per probe image, the
// layer's strongest unit projected back to pixels, stored with zero at mid-grey; the gain
// multiplies every deviation from grey.

import { fmt } from './format.js';
import { perProbeImage, probeOfImage } from './model.js';
import { rangeField } from './options.js';
import { paintAmplified, paintBitmap } from './paint.js';

/** @type {Family} */
export default {
  name: 'projection',
  label: 'Projections',
  settings: { gain: 1 },
  ...perProbeImage,

  caption(i, step) {
    const f = step.facts;
    return { title: `unit ${f.channel?.[i] ?? '–'}`, meta: `act ${fmt(f.activation?.[i])}`, badge: '', tone: '', point: '' };
  },

  facts(i, step) {
    const f = step.facts;
    const position = f.position?.[i];
    const rows = [
      ['Probe', String(probeOfImage(step, i))],
      ['Unit (channel)', String(f.channel?.[i] ?? '–')],
      ['Activation', fmt(f.activation?.[i])],
      ['Position (y, x)', position ? position.join(', ') : '–'],
      ['Largest |value|', fmt(f.scale?.[i])],
    ];
    if (f.seconds !== undefined) rows.push(['Computed in', `${fmt(f.seconds)} s`]);
    return rows;
  },

  async load(i, step, ctx, store) {
    const url = step.images[i];
    return ctx.gain > 1 ? { rgba: await store.rgba(url) } : { bitmap: await store.bitmap(url) };
  },

  draw(canvas, i, step, ctx, data) {
    if (data.rgba) paintAmplified(canvas, data.rgba, ctx.gain);
    else paintBitmap(canvas, data.bitmap);
  },

  options: (state, set) => [
    rangeField('Gain', state.gain, { min: 1, max: 8, step: 0.5 }, (v) => set('gain', v), (v) => `${v}×`),
  ],

  metrics: [],
};
