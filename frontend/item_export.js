// The detail's exports: one item across every logged epoch, as an animated PNG (one frame
// per epoch, its number in a strip below) and as a contact sheet (one PNG: every epoch in a
// grid, each with its number, under a title line). Both are drawn in the browser by the
// item's family from the images the page decodes anyway, with the page's display options
// (what you see is what you save), encoded by apng.js and handed to the browser as a
// download. The server is only asked for images, as when browsing.

import { encodeApng, encodePng } from './apng.js';
import { h } from './dom.js';

/** Small items are scaled up by a whole factor (nearest neighbour) to about this size. */
const ANIMATION_SIDE = 256;
const SHEET_SIDE = 128;
const SHEET_WIDTH = 1200; // at most, unless one cell is wider
const LABEL = 20; // the strip under each frame with its epoch
const PAD = 12;
const GAP = 10;
const TITLE = 28;
const FRAME_MS = 600;
const LAST_FRAME_MS = 1800;
const BACKGROUND = '#ffffff';
const INK = '#202124';
const FONT = '12px Roboto, "DejaVu Sans", Arial, sans-serif';

/** A part of a file name: runs of anything but letters, digits, '.', '-' become '_'. */
export function filePart(text) {
  const part = String(text).replace(/[^A-Za-z0-9.-]+/g, '_').replace(/^[_.]+|_+$/g, '');
  return part || 'item';
}

/**
 * The file name of an export: cnnvis_<run>_<layer>_<view>_<item><suffix>.png.
 *
 * @param {{run: string, layer: string, kind: string, item: string}} names what it shows.
 * @param {string} suffix e.g. '_sheet'.
 * @returns {string} e.g. 'cnnvis_fit_cnnvis_conv2_grad_cam_probe_1.png'.
 */
export function exportName({ run, layer, kind, item }, suffix = '') {
  return `cnnvis_${[run, layer, kind, item.toLowerCase()].map(filePart).join('_')}${suffix}.png`;
}

/** The scale factor that brings an item's longer side to about `side` pixels. */
function scaleFor(width, height, side) {
  return Math.max(1, Math.floor(side / Math.max(width, height)));
}

/**
 * Where the animation's frame goes: the whole factor, the size, the image's rectangle.
 *
 * @param {number} width the item's width at natural size.
 * @param {number} height its height.
 * @returns {{scale: number, width: number, height: number, image: {x, y, w, h}}}
 */
export function animationLayout(width, height) {
  const scale = scaleFor(width, height, ANIMATION_SIDE);
  const image = { x: 0, y: 0, w: width * scale, h: height * scale };
  return { scale, width: image.w, height: image.h + LABEL, image };
}

/**
 * Where the contact sheet's cells go: a title line, then rows of cells left to right.
 *
 * @param {number} count the number of epochs.
 * @param {number} width the item's width at natural size.
 * @param {number} height its height.
 * @returns {{scale: number, columns: number, width: number, height: number,
 *     cells: Array<{x, y, w, h}>}} each cell's image rectangle (its label is below it).
 */
export function sheetLayout(count, width, height) {
  const scale = scaleFor(width, height, SHEET_SIDE);
  const [w, tall] = [width * scale, height * scale];
  const columns = Math.max(1, Math.min(count, Math.floor((SHEET_WIDTH - 2 * PAD + GAP) / (w + GAP))));
  const rows = Math.ceil(count / columns);
  const cells = Array.from({ length: count }, (_, i) => ({
    x: PAD + (i % columns) * (w + GAP),
    y: TITLE + PAD + Math.floor(i / columns) * (tall + LABEL + GAP),
    w,
    h: tall,
  }));
  return {
    scale,
    columns,
    width: Math.max(2 * PAD + columns * w + (columns - 1) * GAP, 320),
    height: TITLE + 2 * PAD + rows * (tall + LABEL) + (rows - 1) * GAP,
    cells,
  };
}

/**
 * Draw the item at every step into a canvas of its own: [{step, canvas}] (canvas null if it
 * failed, or if the step does not hold the item). `item` is an item index, or a function
 * step -> its index there (-1: not held), for items followed by what they are.
 */
function drawFrames(pane, item, ctx, store) {
  return Promise.all(pane.steps.map(async (step) => {
    const canvas = h('canvas', { width: 1, height: 1 });
    const index = typeof item === 'function' ? item(step) : item;
    if (index < 0) return { step: step.step, canvas: null };
    try {
      const data = await pane.family.load(index, step, ctx, store);
      pane.family.draw(canvas, index, step, ctx, data);
      return { step: step.step, canvas };
    } catch {
      return { step: step.step, canvas: null };
    }
  }));
}

/** The largest natural size among the frames. */
function naturalSize(frames) {
  const drawn = frames.filter((frame) => frame.canvas);
  if (!drawn.length) throw new Error('No epoch of this item could be drawn');
  return {
    width: Math.max(...drawn.map((frame) => frame.canvas.width)),
    height: Math.max(...drawn.map((frame) => frame.canvas.height)),
  };
}

/** Draw one frame scaled up into its rectangle (centred if smaller), with its epoch below. */
function drawCell(context, frame, rect, scale) {
  context.imageSmoothingEnabled = false;
  if (frame.canvas) {
    const [w, tall] = [frame.canvas.width * scale, frame.canvas.height * scale];
    const [x, y] = [rect.x + Math.floor((rect.w - w) / 2), rect.y + Math.floor((rect.h - tall) / 2)];
    context.drawImage(frame.canvas, 0, 0, frame.canvas.width, frame.canvas.height, x, y, w, tall);
  } else {
    context.fillStyle = '#e8eaed';
    context.fillRect(rect.x, rect.y, rect.w, rect.h);
  }
  context.fillStyle = INK;
  context.font = FONT;
  context.textBaseline = 'middle';
  context.fillText(`epoch ${frame.step}${frame.canvas ? '' : ' (not drawn)'}`, rect.x + 4, rect.y + rect.h + LABEL / 2, rect.w - 8);
}

/** A 2-D context of a new canvas filled with the background. */
function blank(width, height) {
  const canvas = h('canvas', { width, height });
  const context = canvas.getContext('2d', { willReadFrequently: true });
  context.fillStyle = BACKGROUND;
  context.fillRect(0, 0, width, height);
  return context;
}

/**
 * The animated PNG of an item: one frame per logged epoch of the pane, in order.
 *
 * @param {object} pane the pane (panes.js), with its steps and family.
 * @param {number|Function} item the item's index, or step -> its index there.
 * @param {object} ctx the page's ctx(pane).
 * @param {Store} store the page's store.
 * @returns {Promise<Blob>}
 */
export async function animation(pane, item, ctx, store) {
  const frames = await drawFrames(pane, item, ctx, store);
  const { width, height } = naturalSize(frames);
  const layout = animationLayout(width, height);
  const pixels = frames.map((frame) => {
    const context = blank(layout.width, layout.height);
    drawCell(context, frame, layout.image, layout.scale);
    return context.getImageData(0, 0, layout.width, layout.height).data;
  });
  const delays = frames.map((_, i) => (i === frames.length - 1 ? LAST_FRAME_MS : FRAME_MS));
  return encodeApng(pixels, layout.width, layout.height, delays);
}

/**
 * The contact sheet of an item: every logged epoch in a grid, under a title line.
 *
 * @param {object} pane the pane.
 * @param {number|Function} item the item's index, or step -> its index there.
 * @param {object} ctx the page's ctx(pane).
 * @param {Store} store the page's store.
 * @param {string} title the line at the top (run, layer, view, item).
 * @returns {Promise<Blob>}
 */
export async function contactSheet(pane, item, ctx, store, title) {
  const frames = await drawFrames(pane, item, ctx, store);
  const { width, height } = naturalSize(frames);
  const layout = sheetLayout(frames.length, width, height);
  const context = blank(layout.width, layout.height);
  frames.forEach((frame, i) => drawCell(context, frame, layout.cells[i], layout.scale));
  context.fillStyle = INK;
  context.font = `600 ${FONT}`;
  context.textBaseline = 'middle';
  context.fillText(title, PAD, PAD + TITLE / 2 - 2, layout.width - 2 * PAD);
  return encodePng(context.getImageData(0, 0, layout.width, layout.height).data, layout.width, layout.height);
}

/** Hand a blob to the browser as a download named `name`. */
export function download(doc, blob, name) {
  const url = URL.createObjectURL(blob);
  const link = h('a', { href: url, download: name, hidden: true });
  doc.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
