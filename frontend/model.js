// What the dashboard knows: runs, layers, steps and decoded images, each fetched once.
//
// Everything here talks to the plugin's HTTP API (tb_cnnvis/http_api.md) with URLs relative
// to the iframe's <base href>, and interprets the stored facts (tb_cnnvis/summary.py). No DOM.

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
];

const VIEW_BY_KIND = new Map(VIEWS.map((view) => [view.kind, view]));

/** The view description of a kind, or undefined for kinds this page does not show. */
export function viewOf(kind) {
  return VIEW_BY_KIND.get(kind);
}

/** An HTTP or network failure, with a message that says which request and why. */
export class ApiError extends Error {
  constructor(message, status, url) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.url = url;
  }
}

/** Fetch a URL, turning network errors and non-2xx answers into an ApiError. */
async function request(fetchImpl, url) {
  let response;
  try {
    response = await fetchImpl(url);
  } catch (err) {
    throw new ApiError(`Could not reach TensorBoard for ${url}: ${err.message}`, 0, url);
  }
  if (!response.ok) {
    let detail = response.statusText;
    try {
      detail = (await response.json()).error || detail;
    } catch {
      // Not a JSON error body: keep the status text.
    }
    throw new ApiError(`${url} answered ${response.status}: ${detail}`, response.status, url);
  }
  return response;
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

/** A map with least-recently-used eviction once the summed sizes exceed a budget. */
class LruCache {
  constructor(budget, sizeOf, onEvict = () => {}) {
    this.budget = budget;
    this.sizeOf = sizeOf;
    this.onEvict = onEvict;
    this.used = 0;
    this.map = new Map();
  }

  get(key) {
    const value = this.map.get(key);
    if (value !== undefined) {
      this.map.delete(key);
      this.map.set(key, value);
    }
    return value;
  }

  set(key, value) {
    this.map.set(key, value);
    this.used += this.sizeOf(value);
    for (const [oldKey, oldValue] of this.map) {
      if (this.used <= this.budget || oldKey === key) break;
      this.map.delete(oldKey);
      this.used -= this.sizeOf(oldValue);
      this.onEvict(oldValue);
    }
  }
}

/**
 * Fetches and caches everything the page shows. Blobs never change, so a decoded image is
 * kept (up to a memory budget) and never requested twice; /tags and /steps are refetched
 * only by refresh().
 *
 * @example
 *   const store = new Store();
 *   const runs = await store.runs();
 *   const steps = await store.steps('cnnvis', 'grad_cam/conv3');
 *   const bitmap = await store.bitmap(steps[0].images[0]);
 */
export class Store {
  constructor(fetchImpl = (url) => fetch(url), { imageBudgetBytes = 256 << 20 } = {}) {
    this.fetchImpl = fetchImpl;
    this.requests = 0;
    this.runsPromise = null;
    this.series = new Map();
    const bytes = (entry) => entry.bytes;
    const release = (entry) => entry.bitmap?.close?.();
    this.images = new LruCache(imageBudgetBytes, bytes, release);
  }

  async fetch(url) {
    this.requests += 1;
    return request(this.fetchImpl, url);
  }

  /** Every run with cnnvis data (organizeRuns); cached until refresh(). */
  runs() {
    if (!this.runsPromise) {
      this.runsPromise = this.fetch('./tags')
        .then((response) => response.json())
        .then(organizeRuns);
      this.runsPromise.catch(() => {
        this.runsPromise = null;
      });
    }
    return this.runsPromise;
  }

  /** The steps of one series: [{step, wallTime, facts, images}], in step order; cached. */
  steps(run, tag) {
    const key = JSON.stringify([run, tag]);
    if (!this.series.has(key)) {
      const params = new URLSearchParams({ run, tag });
      const promise = this.fetch(`./steps?${params}`)
        .then((response) => response.json())
        .then((json) =>
          json.steps.map((s) => ({
            step: s.step,
            wallTime: s.wall_time,
            facts: s.facts || {},
            images: s.images || [],
          })),
        );
      promise.catch(() => this.series.delete(key));
      this.series.set(key, promise);
    }
    return this.series.get(key);
  }

  /** Refetch /tags and every series fetched so far; resolves true if anything changed. */
  async refresh() {
    const before = await this.snapshot();
    this.runsPromise = null;
    const keys = [...this.series.keys()];
    const old = new Map(this.series);
    this.series.clear();
    await this.runs();
    await Promise.all(
      keys.map((key) =>
        this.steps(...JSON.parse(key)).catch(() => {
          this.series.set(key, old.get(key));
        }),
      ),
    );
    return before !== (await this.snapshot());
  }

  /** A string that changes whenever the runs, tags or any cached series' steps change. */
  async snapshot() {
    const parts = [];
    try {
      const runs = await this.runs();
      for (const run of runs) {
        parts.push(run.name, ...run.layers.flatMap((layer) => [...layer.tags.values()]));
      }
    } catch {
      parts.push('runs failed');
    }
    for (const [key, promise] of this.series) {
      const steps = await promise.catch(() => []);
      parts.push(key, steps.map((s) => s.step).join(','));
    }
    return parts.join('\u0000');
  }

  /** The decoded image at a URL: {bitmap, width, height}; fetched at most once. */
  bitmap(url) {
    return this.entry(url).then((entry) => entry.bitmap);
  }

  entry(url) {
    let entry = this.images.get(url);
    if (!entry) {
      entry = { bytes: 4096, bitmap: null, rgba: null, gray: null };
      entry.ready = this.fetch(url)
        .then((response) => response.blob())
        .then((blob) =>
          createImageBitmap(blob, { premultiplyAlpha: 'none', colorSpaceConversion: 'none' }),
        )
        .then((bitmap) => {
          entry.bitmap = bitmap;
          entry.bytes = bitmap.width * bitmap.height * 4;
          return entry;
        });
      entry.ready.catch(() => this.images.map.delete(url));
      this.images.set(url, entry);
    }
    return entry.ready;
  }

  /** The RGBA pixels of the image at a URL (an ImageData); decoded once, cached. */
  async rgba(url) {
    const entry = await this.entry(url);
    if (!entry.rgba) {
      const { width, height } = entry.bitmap;
      const canvas = new OffscreenCanvas(width, height);
      const context = canvas.getContext('2d', { willReadFrequently: true });
      context.drawImage(entry.bitmap, 0, 0);
      entry.rgba = context.getImageData(0, 0, width, height);
      entry.bytes += width * height * 4;
    }
    return entry.rgba;
  }

  /** The single-channel intensities of a grayscale PNG: {width, height, gray}; cached. */
  async gray(url) {
    const entry = await this.entry(url);
    if (!entry.gray) {
      const rgba = await this.rgba(url);
      const gray = new Uint8ClampedArray(rgba.width * rgba.height);
      for (let i = 0; i < gray.length; i++) gray[i] = rgba.data[i * 4];
      entry.gray = { width: rgba.width, height: rgba.height, gray };
      entry.bytes += gray.length;
    }
    return entry.gray;
  }
}

/** '32×32×16' for a shape list, '' for none. */
export function shapeText(shape) {
  return Array.isArray(shape) ? shape.join('×') : '';
}
