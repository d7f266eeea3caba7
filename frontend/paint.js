// Canvas drawing: what an item needs (loadItem, through the Store's caches) and how it is
// drawn (drawItem) with the page's display options: atlas tiles cut by source rectangle,
// feature maps through a colormap and a scaling, CAM overlays, amplified projections, and
// the top examples' mosaics (top_examples.js).

import { amplify, colorize, lookupTable, overlay } from './colormaps.js';
import { itemProbe } from './items.js';
import { imageIndexForProbe, remapFor, tileGray, tileRect } from './model.js';
import { loadAtlases, paintMosaics } from './top_examples.js';

/** Resize a canvas's pixel buffer (not its CSS size) when needed; returns its 2-D context. */
function sized(canvas, width, height) {
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
  }
  return canvas.getContext('2d');
}

/** Draw tile `rect` of an atlas bitmap into a canvas at natural size. */
export function paintTile(canvas, bitmap, rect) {
  const context = sized(canvas, rect.w, rect.h);
  context.drawImage(bitmap, rect.x, rect.y, rect.w, rect.h, 0, 0, rect.w, rect.h);
}

/** Draw a whole bitmap into a canvas at natural size. */
export function paintBitmap(canvas, bitmap) {
  paintTile(canvas, bitmap, { x: 0, y: 0, w: bitmap.width, h: bitmap.height });
}

/** Draw intensities through a colormap table, remapped by {scale, offset}. */
export function paintGray(canvas, gray, width, height, table, remap) {
  const context = sized(canvas, width, height);
  const out = context.createImageData(width, height);
  colorize(gray, table, out, remap);
  context.putImageData(out, 0, 0);
}

/** Draw a heat map over an image (RGBA ImageData) with opacity and threshold. */
export function paintOverlay(canvas, base, heat, table, options) {
  const context = sized(canvas, base.width, base.height);
  const out = context.createImageData(base.width, base.height);
  overlay(base.data, heat.gray, table, out, options);
  context.putImageData(out, 0, 0);
}

/** Show a broken-image mark in a canvas that could not be painted. */
export function paintFailed(canvas) {
  sized(canvas, 1, 1).clearRect(0, 0, 1, 1);
  canvas.closest('.frame')?.classList.add('failed');
}

/**
 * Fetch (or take from the cache) what item i of a step needs to be drawn.
 *
 * @param {string} family a VIEWS family.
 * @param {number} i item index.
 * @param {object} step a step from Store.steps().
 * @param {object} ctx {probe, probeUrls, ...}.
 * @param {Store} store the page's store.
 * @returns {Promise<object>} the input of drawItem.
 */
export async function loadItem(family, i, step, ctx, store) {
  if (family === 'feature_maps') {
    const index = imageIndexForProbe(step.facts, ctx.probe);
    return { atlas: await store.gray(step.images[index]), desc: step.facts.images[index] };
  }
  if (family === 'filter_patterns') {
    return { bitmap: await store.bitmap(step.images[0]), desc: step.facts.images[0] };
  }
  if (family === 'top_examples') return loadAtlases(step, store);
  if (family === 'cam') {
    const probeUrl = ctx.probeUrls[itemProbe(family, i, step, ctx)];
    const [base, heat] = await Promise.all([
      probeUrl ? store.rgba(probeUrl) : null,
      store.gray(step.images[i]),
    ]);
    return { base, heat };
  }
  const url = step.images[i];
  return ctx.gain > 1 ? { rgba: await store.rgba(url) } : { bitmap: await store.bitmap(url) };
}

/** Draw item i from loadItem's result with the page's current display options. */
export function drawItem(canvas, family, i, step, ctx, data) {
  if (family === 'feature_maps') {
    const rect = tileRect(data.desc, i);
    const gray = tileGray(data.atlas.gray, data.atlas.width, rect);
    const remap = remapFor(step.facts, ctx.probe, i, ctx.scaling);
    paintGray(canvas, gray, rect.w, rect.h, lookupTable(ctx.featureColormap), remap);
  } else if (family === 'filter_patterns') {
    paintTile(canvas, data.bitmap, tileRect(data.desc, i));
  } else if (family === 'top_examples') {
    paintMosaics(canvas, data, i, step.facts.indices?.[i]?.length ?? data.patches.desc.grid[1]);
  } else if (family === 'cam') {
    const table = lookupTable(ctx.camColormap);
    const { base, heat } = data;
    if (base && base.width === heat.width && base.height === heat.height) {
      paintOverlay(canvas, base, heat, table, { opacity: ctx.opacity, threshold: ctx.threshold });
    } else {
      paintGray(canvas, heat.gray, heat.width, heat.height, table, { scale: 1, offset: 0 });
    }
  } else if (data.rgba) {
    const context = sized(canvas, data.rgba.width, data.rgba.height);
    const out = context.createImageData(data.rgba.width, data.rgba.height);
    amplify(data.rgba.data, ctx.gain, out);
    context.putImageData(out, 0, 0);
  } else {
    paintBitmap(canvas, data.bitmap);
  }
  canvas.closest('.frame')?.classList.remove('failed', 'pending');
}
