// What the stored data means: the views, the runs and layers of the /tags answer, atlas
// tiles, steps and feature-map scaling, read from the stored facts (tb_cnnvis/summary.py).
// Pure functions, no DOM and no fetching (that is store.js).

/** The layer views, in the order the tabs show them. */
export const VIEWS = [
  { kind: 'feature_maps', label: 'Feature maps', family: 'feature_maps',
    blurb: 'what each channel of the layer responds to in a probe image.' },
  { kind: 'filter_patterns', label: 'Filter patterns', family: 'filter_patterns',
    blurb: 'inputs synthesized to excite each filter most (activation maximization).' },
  { kind: 'grad_cam', label: 'Grad-CAM', family: 'cam',
    blurb: 'where the layer sees evidence for the explained class (Selvaraju et al., 2017).' },
  { kind: 'gradcam_plus_plus', label: 'Grad-CAM++', family: 'cam',
    blurb: 'Grad-CAM with pixel-wise gradient weights (Chattopadhay et al., 2018).' },
  { kind: 'score_cam', label: 'Score-CAM', family: 'cam',
    blurb: 'channels weighted by the class score of the masked input (Wang et al., 2020).' },
  { kind: 'deconvnet', label: 'Deconvnet', family: 'projection',
    blurb: "the input pattern behind the layer's strongest unit (Zeiler & Fergus, 2014)." },
  { kind: 'guided_backprop', label: 'Guided backprop', family: 'projection',
    blurb: 'the strongest unit projected back with guided backpropagation (Springenberg et al., 2015).' },
  { kind: 'saliency', label: 'Saliency', family: 'projection',
    blurb: "the gradient of the strongest unit with respect to the pixels (Simonyan et al., 2013)." },
  { kind: 'top_examples', label: 'Top examples', family: 'top_examples',
    blurb: 'the reference images that excite each filter most, each patch beside its deconvnet projection (Zeiler & Fergus, 2014).' },
];

const VIEW_BY_KIND = new Map(VIEWS.map((view) => [view.kind, view]));

/** The view description of a kind, or undefined for kinds this page does not show. */
export function viewOf(kind) {
  return VIEW_BY_KIND.get(kind);
}

/**
 * Turn the /tags answer into runs with their layers in model order.
 *
 * @param {{runs: Array<{run: string, tags: Array<object>}>}} json the /tags answer.
 * @returns {Array<object>} one {name, probesTag, classNames, probeCount, inputShape, layers,
 *     kinds} per run; each layer is {name, index, layerClass, outputShape, tags: Map(kind ->
 *     tag)}; kinds lists the view kinds logged for any layer, in VIEWS order.
 * @example organizeRuns({runs: [{run: 'cnnvis', tags: [...]}]})[0].layers[0].name  // 'conv1'
 */
export function organizeRuns(json) {
  return (json.runs || []).map(({ run, tags }) => {
    const layers = new Map();
    let probes = null;
    let first = null;
    for (const tag of tags) {
      if (tag.kind === 'probes') {
        probes = tag;
        continue;
      }
      if (!viewOf(tag.kind) || tag.layer == null) continue;
      first = first || tag;
      if (!layers.has(tag.layer)) {
        layers.set(tag.layer, {
          name: tag.layer,
          index: tag.layer_index ?? Number.MAX_SAFE_INTEGER,
          layerClass: tag.layer_class || '',
          outputShape: tag.output_shape || null,
          tags: new Map(),
        });
      }
      layers.get(tag.layer).tags.set(tag.kind, tag.tag);
    }
    const ordered = [...layers.values()].sort((a, b) => a.index - b.index);
    const logged = new Set(ordered.flatMap((layer) => [...layer.tags.keys()]));
    const meta = probes || first || {};
    return {
      name: run,
      probesTag: probes ? probes.tag : null,
      classNames: meta.class_names || null,
      probeCount: meta.probe_count || 0,
      inputShape: meta.input_shape || null,
      layers: ordered,
      kinds: VIEWS.filter((view) => logged.has(view.kind)).map((view) => view.kind),
    };
  });
}

/** Where tile k of an atlas sits: {x, y, w, h} in pixels (row-major, no gaps). */
export function tileRect(desc, k) {
  const cols = desc.grid[1];
  const [h, w] = desc.tile;
  return { x: (k % cols) * w, y: Math.floor(k / cols) * h, w, h };
}

/** Copy one tile's intensities out of a whole atlas's intensities. */
export function tileGray(gray, atlasWidth, rect) {
  const out = new Uint8ClampedArray(rect.w * rect.h);
  for (let row = 0; row < rect.h; row++) {
    const start = (rect.y + row) * atlasWidth + rect.x;
    out.set(gray.subarray(start, start + rect.w), row * rect.w);
  }
  return out;
}

/** The index into step.images of the image that belongs to probe p (or p itself). */
export function imageIndexForProbe(facts, probe) {
  const found = (facts.images || []).findIndex((desc) => desc.probe === probe);
  return found >= 0 ? found : probe;
}

/** Index of the last step whose number is <= epoch (the first step if none is). */
export function nearestStepIndex(steps, epoch) {
  let best = 0;
  for (let i = 0; i < steps.length; i++) if (steps[i].step <= epoch) best = i;
  return best;
}

/**
 * How to redisplay a stored feature-map tile for the chosen scaling.
 *
 * Tiles are stored scaled from their own (probe, channel) min..max, so a stored pixel p
 * means value = min + p / 255 * (max - min). Per channel, the stored pixels are shown as
 * they are; per layer, every channel of the probe shares the range of the whole layer.
 *
 * @param {object} facts the step's feature_maps facts ({min, max} indexed [probe][channel]).
 * @param {number} probe probe index.
 * @param {number} channel channel index.
 * @param {'channel'|'layer'} scaling the scaling mode.
 * @returns {{scale: number, offset: number}} display pixel = offset + scale * p.
 * @example remapFor({min: [[0, 0]], max: [[1, 2]]}, 0, 0, 'layer')  // {scale: 0.5, offset: 0}
 */
export function remapFor(facts, probe, channel, scaling) {
  if (scaling !== 'layer' || !facts.min || !facts.max) return { scale: 1, offset: 0 };
  const lo = Math.min(...facts.min[probe]);
  const hi = Math.max(...facts.max[probe]);
  const min = facts.min[probe][channel];
  const max = facts.max[probe][channel];
  if (!(hi > lo)) return { scale: 0, offset: 0 };
  return { scale: (max - min) / (hi - lo), offset: (255 * (min - lo)) / (hi - lo) };
}

/** '32×32×16' for a shape list, '' for none. */
export function shapeText(shape) {
  return Array.isArray(shape) ? shape.join('×') : '';
}
