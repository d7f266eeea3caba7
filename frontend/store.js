// What the dashboard fetches: runs, steps and decoded images, each fetched once and cached.
//
// Everything here talks to the plugin's HTTP API (tb_cnnvis/http_api.md) with URLs relative
// to the iframe's <base href>. No DOM.

import * as FAMILIES from './families.js';
import { shortName } from './format.js';
import { organizeRuns, readStep } from './model.js';

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
/** Past this many characters of run and tag names, /steps is asked for by series id. */
const LONG_NAME_CHARS = 1000;

async function request(fetchImpl, url) {
  let response;
  try {
    response = await fetchImpl(url);
  } catch (err) {
    throw new ApiError(`Could not reach TensorBoard for ${shortName(url, 120)}: ${err.message}`, 0, url);
  }
  if (!response.ok) {
    let detail = response.statusText;
    try {
      detail = (await response.json()).error || detail;
    } catch {
      // Not a JSON error body: keep the status text.
    }
    throw new ApiError(`${shortName(url, 120)} answered ${response.status}: ${shortName(detail, 300)}`, response.status, url);
  }
  return response;
}

/**
 * A map with least-recently-used eviction once the summed sizes exceed a budget. A value's
 * size may grow after it is set (an image counted as a placeholder until it decodes):
 * recount(key) counts it again, and evicts others if the budget is now exceeded.
 */
export class LruCache {
  constructor(budget, sizeOf, onEvict = () => {}) {
    this.budget = budget;
    this.sizeOf = sizeOf;
    this.onEvict = onEvict;
    this.used = 0;
    this.map = new Map();
    this.counted = new Map(); // key -> the size counted for it in `used`
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
    this.delete(key);
    this.map.set(key, value);
    this.recount(key);
  }

  /** Count the value at `key` again (its size changed); evict the oldest others if needed. */
  recount(key) {
    if (!this.map.has(key)) return;
    const size = this.sizeOf(this.map.get(key));
    this.used += size - (this.counted.get(key) || 0);
    this.counted.set(key, size);
    for (const [oldKey, oldValue] of this.map) {
      if (this.used <= this.budget) break;
      if (oldKey === key) continue;
      this.delete(oldKey);
      this.onEvict(oldValue);
    }
  }

  /** Forget `key` (without onEvict). */
  delete(key) {
    this.used -= this.counted.get(key) || 0;
    this.counted.delete(key);
    this.map.delete(key);
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
    this.seriesIds = new Map(); // JSON [run, tag] -> the series id /tags gave it
    // An evicted image is only dropped, not closed: a paint may still be drawing it; the
    // garbage collector frees it once nothing holds it.
    this.images = new LruCache(imageBudgetBytes, (entry) => entry.bytes);
  }

  async fetch(url) {
    this.requests += 1;
    return request(this.fetchImpl, url);
  }

  /** Every run with cnnvis data, with the views the page can show (organizeRuns); cached until refresh(). */
  runs() {
    if (!this.runsPromise) {
      this.runsPromise = this.fetch('./tags')
        .then((response) => response.json())
        .then((json) => {
          for (const run of json.runs || []) {
            for (const tag of run.tags || []) {
              if (tag.series) this.seriesIds.set(JSON.stringify([run.run, tag.tag]), tag.series);
            }
          }
          return organizeRuns(json, FAMILIES);
        });
      this.runsPromise.catch(() => {
        this.runsPromise = null;
      });
    }
    return this.runsPromise;
  }

  /**
   * The steps of one series: [{step, wallTime, facts, images}], in step order; cached.
   * Long names are asked for by the series id /tags gave (a request line has a limit).
   */
  steps(run, tag) {
    const key = JSON.stringify([run, tag]);
    if (!this.series.has(key)) {
      const id = this.seriesIds.get(key);
      const long = run.length + tag.length > LONG_NAME_CHARS;
      const params = new URLSearchParams(id && long ? { s: id } : { run, tag });
      const promise = this.fetch(`./steps?${params}`)
        .then((response) => response.json())
        .then((json) =>
          json.steps.map((s) => readStep(s)),
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
          this.images.recount(url);
          return entry;
        });
      entry.ready.catch(() => this.images.map.get(url) === entry && this.images.delete(url));
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
      this.images.recount(url);
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
      this.images.recount(url);
    }
    return entry.gray;
  }
}
