// What the stored data means: the runs and layers of the /tags answer with the views it
// lists, atlas tiles, steps and probes, read from the stored facts (tb_cnnvis/summary.py).
// Pure functions, no DOM and no fetching (that is store.js).

/**
 * A view the page can show, from the `views` of /tags.
 *
 * @typedef {object} View
 * @property {string} kind the tag kind, e.g. 'grad_cam' (tags are '<kind>/<layer>').
 * @property {string} label the tab's text, e.g. 'Grad-CAM'.
 * @property {string} blurb one sentence on what it shows.
 * @property {Family} family the family module that draws it (families.js).
 */

/**
 * The views of a /tags answer that some family of `families` draws, by kind, in tab order.
 *
 * @param {Array<{kind: string, family: string, label: string, blurb: string}>} listed the
 *     answer's `views`.
 * @param {object} families family modules by name (the namespace of families.js).
 * @returns {Map<string, View>}
 */
function drawableViews(listed, families) {
  const views = new Map();
  for (const { kind, family, label, blurb } of listed || []) {
    if (typeof kind !== 'string' || !Object.hasOwn(families, family)) continue;
    views.set(kind, { kind, label: String(label ?? kind), blurb: String(blurb ?? ''), family: families[family] });
  }
  return views;
}

/**
 * Turn the /tags answer into runs with their layers in model order.
 *
 * @param {{runs: Array<{run: string, tags: Array<object>}>, views: Array<object>}} json the
 *     /tags answer.
 * @param {object} families family modules by name (the namespace of families.js): views of
 *     another family, and tags of a kind not among the views, are left out.
 * @returns {Array<object>} one {name, probesTag, classNames, probeCount, inputShape, layers,
 *     kinds, views, notes} per run (notes: the sentences of /tags about what could not be
 *     read); each layer is {name, index, layerClass, outputShape, tags:
 *     Map(kind -> tag), unsupported: Map(kind -> why it cannot be shown), defaults: Set of
 *     the kinds for which the callback chose the layer itself}; kinds lists the
 *     view kinds logged for any layer, in tab order; views maps every kind the page can show
 *     to its View (the same Map for every run).
 * @example organizeRuns({runs: [{run: 'cnnvis', tags: [...]}], views: [...]}, F)[0].layers[0].name
 */
export function organizeRuns(json, families) {
  const views = drawableViews(json.views, families);
  return (json.runs || []).map(({ run, tags = [], notes }) => {
    const layers = new Map();
    let probes = null;
    let first = null;
    for (const tag of tags) {
      if (tag.kind === 'probes') {
        probes = tag.unsupported ? null : tag;
        continue;
      }
      if (!views.has(tag.kind) || tag.layer == null) continue;
      if (!tag.unsupported) first = first || tag;
      if (!layers.has(tag.layer)) {
        layers.set(tag.layer, {
          name: tag.layer,
          index: tag.layer_index ?? Number.MAX_SAFE_INTEGER,
          layerClass: tag.layer_class || '',
          outputShape: tag.output_shape || null,
          tags: new Map(),
          defaults: new Set(),
          unsupported: new Map(),
        });
      }
      const layer = layers.get(tag.layer);
      layer.tags.set(tag.kind, tag.tag);
      if (tag.default_layer === true) layer.defaults.add(tag.kind);
      if (tag.unsupported) layer.unsupported.set(tag.kind, String(tag.unsupported));
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
      kinds: [...views.keys()].filter((kind) => logged.has(kind)),
      views,
      notes: Array.isArray(notes) ? notes.map(String) : [],
    };
  });
}

/**
 * One step of a /steps answer as the page uses it. Facts that could not be read (null)
 * become {} with `factsMissing`; the masks of a segmentation step (images whose `role` is
 * 'mask', each right after its map) leave the images: `masks[i]` is map i's mask URL (or
 * null), so that every per-map list of the facts is parallel to `images`.
 *
 * @param {{step: number, wall_time: number, facts: ?object, images: ?Array<string>}} s
 * @returns {{step, wallTime, facts, images, masks, factsMissing: boolean}}
 * @example readStep({step: 0, wall_time: 1, facts: null, images: []}).factsMissing  // true
 */
export function readStep(s) {
  const facts = s.facts && typeof s.facts === 'object' ? s.facts : {};
  const urls = Array.isArray(s.images) ? s.images : [];
  const step = { step: s.step, wallTime: s.wall_time, facts, images: urls, masks: null, factsMissing: facts !== s.facts };
  const described = Array.isArray(facts.images) ? facts.images : [];
  if (!described.some((desc) => desc?.role === 'mask')) return step;
  const kept = [];
  step.images = [];
  step.masks = [];
  described.forEach((desc, i) => {
    if (desc?.role === 'mask') {
      if (step.masks.length) step.masks[step.masks.length - 1] = urls[i] ?? null;
      return;
    }
    kept.push(desc);
    step.images.push(urls[i]);
    step.masks.push(null);
  });
  step.facts = { ...facts, images: kept };
  return step;
}

/**
 * A run's views grouped by family, in tab order (the order of each family's first view).
 *
 * @param {object} run a run from organizeRuns().
 * @returns {Array<{family: Family, views: Array<View>, layers: Array<string>}>} `layers`: the
 *     layers that have some view of the family.
 * @example viewFamilies(run).map((g) => g.family.label)  // ['Feature maps', 'CAMs', ...]
 */
export function viewFamilies(run) {
  const groups = new Map();
  for (const kind of run.kinds) {
    const view = run.views.get(kind);
    if (!groups.has(view.family)) groups.set(view.family, { family: view.family, views: [], layers: [] });
    groups.get(view.family).views.push(view);
  }
  for (const group of groups.values()) {
    group.layers = run.layers.filter((l) => group.views.some((v) => l.tags.has(v.kind))).map((l) => l.name);
  }
  return [...groups.values()];
}

/** The tag of `kind` at a layer if it is logged and can be read, else null. */
export function readableTag(layer, kind) {
  return layer && !layer.unsupported.has(kind) ? layer.tags.get(kind) ?? null : null;
}

/** Where tile k of an atlas sits: {x, y, w, h} in pixels (row-major, no gaps). */
export function tileRect(desc, k) {
  const cols = desc.grid[1];
  const [h, w] = desc.tile;
  return { x: (k % cols) * w, y: Math.floor(k / cols) * h, w, h };
}

/**
 * One atlas of a step whose PNGs are named in order (facts.atlases).
 *
 * @param {object} step a step from Store.steps().
 * @param {string} name e.g. 'patterns', 'transparency'.
 * @param {Array<string>} names the names when the facts have none (older logs).
 * @returns {?{url: string, desc: object}} its URL and image description, or null.
 * @example namedAtlas(step, 'diversity', ['patterns'])  // null in a step without diversity
 */
export function namedAtlas(step, name, names) {
  const i = (step.facts.atlases || names).indexOf(name);
  return i >= 0 && step.images[i] ? { url: step.images[i], desc: step.facts.images[i] } : null;
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

/** The probe index that item i of a step is about (families with one image per probe). */
export function probeOfImage(step, i) {
  const desc = (step.facts.images || [])[i];
  return desc && desc.probe !== null && desc.probe !== undefined ? desc.probe : i;
}

/**
 * The members of a family whose cards are a step's images, one per probe image
 * (projections, DeepDream), for the family to spread into itself (families.js): its layout,
 * the items and their probe, no filter, no detail row.
 */
export const perProbeImage = {
  layout: {
    pickProbe: false, inset: true, wide: false, detailProbe: true, detailTop: false, detailBig: true,
    pickClass: false, filterProbes: true,
  },
  count: (step) => step.images.length,
  urls: (step) => step.images,
  itemName: (i, step) => `Probe ${probeOfImage(step, i)}`,
  itemKey: (i, step) => probeOfImage(step, i),
  probe: (i, step) => probeOfImage(step, i),
  filter: () => null,
  detailRow: async () => null,
};

/** The true label of a probe, from the step's facts or the probes tag (ctx.probeLabels). */
export function labelOf(step, probe, ctx) {
  const labels = step.facts.labels || ctx.probeLabels;
  return labels ? labels[probe] : null;
}

/** '32×32×16' for a shape list, '' for none. */
export function shapeText(shape) {
  return Array.isArray(shape) ? shape.join('×') : '';
}

/**
 * A layer path split at its last '/': the nested model it belongs to and its own name.
 *
 * @param {string} name a layer path, e.g. 'mobilenetv2_1.00_224/block_13_expand'.
 * @returns {{model: string, short: string}} model is '' for a top-level layer.
 * @example splitPath('outer/inner/conv1')  // {model: 'outer/inner', short: 'conv1'}
 */
export function splitPath(name) {
  const at = name.lastIndexOf('/');
  return at < 0 ? { model: '', short: name } : { model: name.slice(0, at), short: name.slice(at + 1) };
}

/** A layer's resolution stage, its spatial size: '56×56' ('' when the shape is unknown). */
export function stageOf(shape) {
  return Array.isArray(shape) && shape.length >= 2 ? `${shape[0]}×${shape[1]}` : '';
}

/**
 * The layers grouped by nested model and, inside each, by resolution stage, keeping model
 * order: a group is a run of consecutive layers of one nested model (top-level layers
 * before and after a nested model make two groups), a stage a run of consecutive layers of
 * one spatial size.
 *
 * @param {Array<object>} layers a run's layers (organizeRuns()), in model order.
 * @returns {Array<{model: string, stages: Array<{size: string, layers: Array<object>}>}>}
 * @example layerGroups(run.layers)[0].stages[0].size  // '112×112'
 */
export function layerGroups(layers) {
  const groups = [];
  for (const layer of layers) {
    const { model } = splitPath(layer.name);
    if (!groups.length || groups.at(-1).model !== model) groups.push({ model, stages: [] });
    const { stages } = groups.at(-1);
    const size = stageOf(layer.outputShape);
    if (!stages.length || stages.at(-1).size !== size) stages.push({ size, layers: [] });
    stages.at(-1).layers.push(layer);
  }
  return groups;
}
