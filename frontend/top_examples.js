// Top-activating examples (Zeiler & Fergus, 2014, Fig. 2; the "top 9" of Yosinski et al.,
// 2015): for one filter, the reference-image patches that excite it most beside their
// deconvnet projections, cut from the two atlases of a top_examples step (row = filter,
// column = rank, best first; see tb_cnnvis/summary.py).

import { h } from './dom.js';
import { fmt } from './format.js';
import { namedAtlas, nearestStepIndex, tileRect } from './model.js';

const CELL_PX = 40; // a mosaic cell is drawn at least about this large (whole multiples)
const GAP_PX = 2;

/** The row of a filter in a top_examples step's atlases, or -1 if it has none. */
export function rowOf(facts, filter) {
  return (facts.filters || []).indexOf(filter);
}

/**
 * The atlases of a top_examples step, by the names in facts.atlases.
 *
 * @param {object} step a step from Store.steps().
 * @returns {{patches: ?{url, desc}, projections: ?{url, desc}}} null where not stored.
 */
export function atlasesOf(step) {
  const names = ['patches', 'projections'];
  return { patches: namedAtlas(step, 'patches', names), projections: namedAtlas(step, 'projections', names) };
}

/**
 * Load what a step's top examples need: the decoded atlases.
 *
 * @param {object} step a top_examples step.
 * @param {Store} store the page's store.
 * @returns {Promise<{patches: ?{bitmap, desc}, projections: ?{bitmap, desc}}>}
 */
export async function loadAtlases(step, store) {
  const { patches, projections } = atlasesOf(step);
  const load = async (atlas) => (atlas ? { bitmap: await store.bitmap(atlas.url), desc: atlas.desc } : null);
  const [p, q] = await Promise.all([load(patches), load(projections)]);
  return { patches: p, projections: q };
}

/** Where tile (row, rank) of an atlas sits. */
function rankRect(desc, row, rank) {
  return tileRect(desc, row * desc.grid[1] + rank);
}

/**
 * Draw one filter's top examples as two mosaics, projections left and patches right (as
 * Zeiler & Fergus lay them out), cells scaled by a whole factor with small transparent gaps.
 *
 * @param {HTMLCanvasElement} canvas the target.
 * @param {{patches, projections}} atlases from loadAtlases().
 * @param {number} row the filter's row.
 * @param {number} k how many examples the row has.
 */
export function paintMosaics(canvas, atlases, row, k) {
  const blocks = [atlases.projections, atlases.patches].filter(Boolean);
  const [th, tw] = blocks[0].desc.tile;
  const scale = Math.max(1, Math.round(CELL_PX / Math.max(th, tw)));
  const [cw, ch] = [tw * scale, th * scale];
  const cols = Math.ceil(Math.sqrt(k));
  const rows = Math.ceil(k / cols);
  const blockW = cols * cw + (cols - 1) * GAP_PX;
  const between = 4 * GAP_PX;
  const width = blocks.length * blockW + (blocks.length - 1) * between;
  const height = rows * ch + (rows - 1) * GAP_PX;
  if (canvas.width !== width || canvas.height !== height) Object.assign(canvas, { width, height });
  const context = canvas.getContext('2d');
  context.clearRect(0, 0, width, height);
  context.imageSmoothingEnabled = false;
  blocks.forEach((block, b) => {
    for (let j = 0; j < k; j++) {
      const r = rankRect(block.desc, row, j);
      const x = b * (blockW + between) + (j % cols) * (cw + GAP_PX);
      const y = Math.floor(j / cols) * (ch + GAP_PX);
      context.drawImage(block.bitmap, r.x, r.y, r.w, r.h, x, y, cw, ch);
    }
  });
}

/** Draw one tile of an atlas into a canvas at its natural size. */
function paintRank(canvas, atlas, row, rank) {
  const r = rankRect(atlas.desc, row, rank);
  Object.assign(canvas, { width: r.w, height: r.h });
  canvas.getContext('2d').drawImage(atlas.bitmap, r.x, r.y, r.w, r.h, 0, 0, r.w, r.h);
}

/**
 * The detail panel's section: a heading that says which epoch the examples are from, and
 * the pairs (filled by paintSection).
 *
 * @returns {{element, epoch, note, pairs}}
 */
export function buildSection() {
  const epoch = h('span', { class: 'top-epoch' });
  const note = h('span', { class: 'top-note' });
  const pairs = h('div', { class: 'top-pairs' });
  const element = h(
    'section',
    { class: 'top-section', attrs: { 'aria-label': 'Top-activating reference images' } },
    h('h3', {}, 'Top-activating reference images ', epoch),
    note,
    pairs,
  );
  return { element, epoch, note, pairs };
}

/** The heading's note: which epoch the examples come from, when it is not the one chosen. */
function epochNote(logged, chosen) {
  if (logged === chosen) return '';
  if (logged > chosen) return `None logged at or before epoch ${chosen}: the first logged.`;
  return `Top examples are logged every few epochs: the newest at or before epoch ${chosen}.`;
}

/**
 * Show one filter's top examples at (the newest logged step at or before) an epoch: each
 * example's patch above its deconvnet projection, with its reference index and activation.
 *
 * @param {object} section from buildSection().
 * @param {{store, run: string, tag: string, filter: number, epoch: number}} what the series
 *     (run and top_examples tag), the filter and the epoch chosen.
 * @returns {Promise<void>} resolves once every canvas is drawn (or the section says why not).
 */
export async function paintSection(section, { store, run, tag, filter, epoch }) {
  const token = {};
  section.token = token;
  const steps = await store.steps(run, tag);
  if (section.token !== token || !steps.length) return;
  const step = steps[nearestStepIndex(steps, epoch)];
  const f = step.facts;
  const row = rowOf(f, filter);
  section.element.dataset.epoch = String(step.step);
  section.epoch.textContent = `· epoch ${step.step}`;
  section.note.textContent = epochNote(step.step, epoch);
  if (row < 0) {
    const logged = (f.filters || []).join(', ');
    section.note.textContent = `Not logged for filter ${filter} (only for filters ${logged}).`;
    section.pairs.replaceChildren();
    return;
  }
  const atlases = await loadAtlases(step, store);
  if (section.token !== token) return;
  const indices = f.indices?.[row] || [];
  const figures = indices.map((index, rank) => {
    const patch = h('canvas', { class: 'patch', width: 1, height: 1 });
    const projection = atlases.projections ? h('canvas', { class: 'projection', width: 1, height: 1 }) : null;
    paintRank(patch, atlases.patches, row, rank);
    if (projection) paintRank(projection, atlases.projections, row, rank);
    const activation = fmt(f.activations?.[row]?.[rank]);
    const where = f.positions?.[row]?.[rank];
    return h(
      'figure',
      {
        class: 'top-pair',
        title: `Reference image ${index}: activation ${activation}${where ? ` at (${where.join(', ')})` : ''}`,
        dataset: { index, rank },
      },
      h('div', { class: 'frame' }, patch),
      projection ? h('div', { class: 'frame' }, projection) : null,
      h('figcaption', {}, h('span', { class: 'top-index', text: `img ${index}` }), h('span', { class: 'top-act', text: activation })),
    );
  });
  const legend = h(
    'div',
    { class: 'top-legend', attrs: { 'aria-hidden': 'true' } },
    h('span', { text: 'Patch' }),
    atlases.projections ? h('span', { text: 'Deconvnet' }) : null,
  );
  section.pairs.replaceChildren(legend, ...figures);
}
