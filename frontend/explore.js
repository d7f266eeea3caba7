// Explore mode: any layer, view, filter and image of a run's saved models, computed by the
// plugin on request (POST ./explore, tb_cnnvis/http_api.md "Explore") and drawn by the same
// family modules as logged steps. A dialog over the dashboard: choose run, step, layer,
// view, channels or class, and an image (a probe, or one dropped on the dialog or picked
// from disk, resized here to the model's input size); a filmstrip follows the result
// across every saved step. index.js adds the button (exploreButton) to the top bar.

import { h, field } from './dom.js';
import * as FAMILIES from './families.js';
import { DEFAULTS } from './selection.js';
import { Store } from './store.js';
import { cardItems } from './subset.js';

const UPLOAD = 'explore:upload';
const POLL_MS = 150;
const SESSION = globalThis.crypto?.randomUUID?.() ?? String(Math.random()).slice(2);

/**
 * The top-bar button that opens the explore dialog.
 *
 * @param {Document} doc the iframe's document.
 * @param {function(): string} currentRun the run the dashboard shows (chosen first).
 * @returns {HTMLButtonElement}
 * @example header.append(exploreButton(document, () => state.run));
 */
export function exploreButton(doc, currentRun) {
  let panel = null;
  return h('button', {
    class: 'explore-open',
    text: 'Explore',
    title: 'Compute any layer, view, filter or image of a saved model',
    on: {
      click: () => {
        panel = panel || new ExplorePanel(doc);
        panel.open(currentRun());
      },
    },
  });
}

/** POST a request; poll its 202 answers; resolve with the 200 JSON (onProgress(0..1) meanwhile). */
export async function explore(body, { batch = 'single', onProgress = () => {} } = {}) {
  const headers = {
    'Content-Type': 'application/json',
    'X-XSRF-Protected': '1',
    'X-Cnnvis-Session': SESSION,
    'X-Cnnvis-Batch': batch,
  };
  let response = await fetch('./explore', { method: 'POST', headers, body: JSON.stringify(body) });
  for (;;) {
    const json = await response.json().catch(() => ({ error: response.statusText }));
    if (response.status === 200) return json;
    if (response.status !== 202) throw new Error(json.error || `explore answered ${response.status}`);
    onProgress(json.progress);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    response = await fetch(`./${json.poll}`);
  }
}

/** "0-3, 7" as [0, 1, 2, 3, 7]; '' as null. */
export function parseChannels(text) {
  const channels = [];
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [a, b] = part.split('-').map((s) => Number(s.trim()));
    if (!Number.isInteger(a) || (b !== undefined && !Number.isInteger(b))) throw new Error(`not a channel: ${part}`);
    for (let c = a; c <= (b ?? a); c++) if (!channels.includes(c)) channels.push(c);
  }
  return channels.length ? channels.slice(0, 64) : null;
}

/** A picture resized to width x height: {rgba: ImageData, png: base64 PNG}. */
export async function resizedImage(blob, width, height) {
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext('2d', { willReadFrequently: true });
  context.imageSmoothingQuality = 'high';
  context.drawImage(bitmap, 0, 0, width, height);
  bitmap.close();
  const rgba = context.getImageData(0, 0, width, height);
  const bytes = new Uint8Array(await (await canvas.convertToBlob({ type: 'image/png' })).arrayBuffer());
  let text = '';
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return { rgba, png: btoa(text) };
}

class ExplorePanel {
  constructor(doc) {
    this.doc = doc;
    this.store = new Store();
    this.pixels = Object.create(this.store); // the upload's pixels are known here, not fetched
    this.pixels.rgba = (url) => (url === UPLOAD ? Promise.resolve(this.upload.rgba) : this.store.rgba(url));
    this.upload = null;
    this.info = null;
    this.batch = 0;
    this.loads = 0; // loadRun calls begun: only the latest one fills the fields
    const select = (key) => h('select', { dataset: { explore: key }, on: { change: () => this.changed(key) } });
    this.c = {
      run: select('run'), step: select('step'), layer: select('layer'), view: select('view'),
      image: select('image'), klass: select('class'),
      channels: h('input', { type: 'text', placeholder: 'e.g. 0-7, 12', dataset: { explore: 'channels' } }),
      file: h('input', { type: 'file', attrs: { accept: 'image/png,image/jpeg' }, dataset: { explore: 'file' },
        on: { change: (e) => e.target.files[0] && this.useFile(e.target.files[0]) } }),
    };
    this.status = h('p', { class: 'explore-status', attrs: { role: 'status', 'aria-live': 'polite' } });
    this.cards = h('div', { class: 'explore-cards' });
    this.strip = h('div', { class: 'explore-strip' });
    const c = this.c;
    this.dialog = h('dialog', { class: 'explore', attrs: { 'aria-label': 'Explore' } },
      h('header', {}, h('h2', { text: 'Explore a saved model' }),
        h('button', { class: 'icon-button', text: '✕', attrs: { 'aria-label': 'Close' }, on: { click: () => this.dialog.close() } })),
      h('div', { class: 'explore-fields' }, field('Run', c.run), field('Step', c.step), field('Layer', c.layer),
        field('View', c.view), field('Channels', c.channels), field('Class', c.klass), field('Image', c.image),
        field('Upload', c.file)),
      h('p', { class: 'explore-hint', text: 'Drop a PNG or JPEG here to explore it; it is resized to the model’s input size.' }),
      h('div', { class: 'explore-actions' },
        h('button', { class: 'primary', text: 'Compute', dataset: { explore: 'compute' }, on: { click: () => this.compute() } }),
        h('button', { text: 'Filmstrip across steps', dataset: { explore: 'filmstrip' }, on: { click: () => this.filmstrip() } })),
      this.status, this.cards, this.strip);
    this.dialog.addEventListener('dragover', (e) => e.preventDefault());
    this.dialog.addEventListener('drop', (e) => {
      e.preventDefault();
      const file = e.dataTransfer?.files?.[0];
      if (file) this.useFile(file);
    });
    doc.head.append(h('link', { rel: 'stylesheet', href: './explore.css' }));
    doc.body.append(this.dialog);
  }

  say(text) {
    this.status.textContent = text;
  }

  async open(run) {
    this.dialog.showModal();
    this.doc.body.dataset.explore = 'loading';
    try {
      const runs = (await (await fetch('./explore_info')).json()).runs || [];
      if (!runs.length) throw new Error('no run has a saved model: log with keep_models=True, or use cv.explore');
      fill(this.c.run, runs.map((r) => [r.run, r.run]), runs.some((r) => r.run === run) ? run : runs[0].run);
      await this.loadRun();
    } catch (err) {
      this.say(err.message);
      this.doc.body.dataset.explore = 'error';
    }
  }

  /** Fill the fields from explore_info; body[data-explore] is 'loading' until it is done. */
  async loadRun(step = null) {
    const load = ++this.loads;
    this.doc.body.dataset.explore = 'loading';
    const params = new URLSearchParams({ run: this.c.run.value });
    if (step !== null) params.set('step', step);
    const response = await fetch(`./explore_info?${params}`);
    const info = await response.json();
    if (load !== this.loads) return; // a later choice of run or step replaced this one
    if (!response.ok) throw new Error(info.error);
    this.info = info;
    const keep = (select, fallback) => select.value || fallback;
    fill(this.c.step, info.steps.map((s) => [s, s === -1 ? 'live' : `step ${s}`]), String(info.step));
    fill(this.c.layer, info.layers.map((l) => [l.path, `${l.path} (${l.output_shape.join('×')})`]), keep(this.c.layer, info.layers.at(-1)?.path));
    const views = info.views.filter((v) => FAMILIES[v.family]);
    fill(this.c.view, views.map((v) => [v.kind, v.label]), keep(this.c.view, 'grad_cam'));
    const classes = info.class_names || [];
    fill(this.c.klass, [['', 'label or prediction'], ...classes.map((name, i) => [i, `${i}: ${name}`])], this.c.klass.value);
    const probes = Array.from({ length: info.probes }, (_, i) => [i, `probe ${i}`]);
    fill(this.c.image, [...probes, ...(this.upload ? [[UPLOAD, 'uploaded image']] : [])], keep(this.c.image, probes.length ? '0' : UPLOAD));
    this.probeSteps = info.probes ? this.store.steps(this.c.run.value, 'probes').catch(() => []) : Promise.resolve([]);
    this.doc.body.dataset.explore = 'ready';
    this.say(`${info.layers.length} layers with (h, w, c) outputs; ${info.steps.length} saved steps.`);
  }

  changed(key) {
    const failed = (err) => {
      this.say(err.message);
      this.doc.body.dataset.explore = 'error';
    };
    if (key === 'run') this.loadRun().catch(failed);
    if (key === 'step') this.loadRun(Number(this.c.step.value)).catch(failed);
  }

  async useFile(file) {
    const [height, width] = this.info.input_shape;
    this.upload = await resizedImage(file, width, height);
    const options = [...this.c.image.options].filter((o) => o.value !== UPLOAD).map((o) => [o.value, o.textContent]);
    fill(this.c.image, [...options, [UPLOAD, `uploaded: ${file.name}`]], UPLOAD);
    this.say(`${file.name} resized to ${width}×${height}.`);
  }

  /** The JSON body of the current choices at `step`. */
  body(step) {
    const c = this.c;
    const image = c.image.value === UPLOAD ? { png: this.upload.png } : { probe: Number(c.image.value) };
    const body = { run: c.run.value, step, view: c.view.value, layer: c.layer.value, image };
    if (c.klass.value !== '') body.class_index = Number(c.klass.value);
    const channels = parseChannels(c.channels.value);
    if (channels) body.channels = channels;
    return body;
  }

  /** What the family members read of the page for a result (ctx of families.js). */
  async ctx() {
    const uploaded = this.c.image.value === UPLOAD;
    const probe = uploaded ? null : Number(this.c.image.value);
    const probes = (await this.probeSteps)[0];
    const probeUrl = uploaded ? UPLOAD : probes?.images?.[probe];
    const label = probe === null ? null : (probes?.facts?.labels?.[probe] ?? null);
    return { ...DEFAULTS, probe: 0, explain: 0, classNames: this.info.class_names, probeUrls: [probeUrl], probeLabels: [label] };
  }

  async compute() {
    const batch = `b${++this.batch}`;
    this.cards.replaceChildren();
    this.doc.body.dataset.explore = 'computing';
    try {
      const result = await explore(this.body(Number(this.c.step.value)), {
        batch, onProgress: (p) => this.say(`Computing… ${Math.round(p * 100)}%`),
      });
      if (batch !== `b${this.batch}`) return; // another request replaced this one
      await this.draw(result, this.cards, null);
      this.say(`${result.content.kind} of ${result.content.layer} at step ${result.step}.`);
      this.dialog.dataset.images = JSON.stringify(result.images);
      this.doc.body.dataset.explore = 'done';
    } catch (err) {
      this.say(err.message);
      this.doc.body.dataset.explore = 'error';
    }
  }

  async filmstrip() {
    const batch = `b${++this.batch}`;
    const steps = this.info.steps;
    this.strip.replaceChildren();
    this.doc.body.dataset.explore = 'filmstrip';
    let done = 0;
    const frames = steps.map(async (step) => {
      const frame = h('figure', { class: 'explore-frame', dataset: { step } }, h('figcaption', { text: `step ${step}` }));
      this.strip.append(frame);
      try {
        const result = await explore(this.body(step), { batch });
        await this.draw(result, frame, 1);
      } catch (err) {
        frame.append(h('p', { class: 'explore-error', text: err.message }));
      }
      done += 1;
      this.say(`Filmstrip: ${done} of ${steps.length} steps`);
    });
    await Promise.all(frames);
    if (batch === `b${this.batch}`) this.doc.body.dataset.explore = 'strip-done';
  }

  /** Draw a result's cards (at most `limit`) into `host` with its family's members. */
  async draw(result, host, limit) {
    const view = this.info.views.find((v) => v.kind === result.content.kind);
    const family = FAMILIES[view.family];
    const step = { step: result.step, wallTime: 0, facts: result.facts, images: result.images };
    const ctx = await this.ctx();
    const items = cardItems(family, step, ctx).slice(0, limit ?? undefined);
    await Promise.all(items.map(async (i) => {
      const canvas = h('canvas', { class: 'explore-canvas' });
      const caption = family.caption(i, step, ctx);
      const meta = ctx.probeUrls[0] === UPLOAD ? caption.meta.replace(/^probe 0$/, 'your image') : caption.meta;
      host.append(h('figure', { class: 'explore-card' }, canvas,
        h('figcaption', { text: `${caption.title} · ${meta}` })));
      family.draw(canvas, i, step, ctx, await family.load(i, step, ctx, this.pixels));
    }));
  }
}

/** Fill a <select> with [value, text] options, keeping `value` when it is one of them. */
function fill(select, options, value) {
  select.replaceChildren(...options.map(([v, text]) => h('option', { value: String(v), text: String(text) })));
  if (options.some(([v]) => String(v) === String(value))) select.value = String(value);
}
