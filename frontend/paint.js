// Canvas drawing that families share: atlas tiles cut by source rectangle, intensities
// through a colormap, heat-map overlays, signed maps, amplified RGB, and the marks of a
// drawn or failed frame. Each family's draw() (family_*.js) is made of these.

import { amplify, colorize, overlay, signedOverlay } from './colormaps.js';

/** Resize a canvas's pixel buffer (not its CSS size) when needed; returns its 2-D context. */
function sized(canvas, width, height) {
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
  }
  return canvas.getContext('2d');
}

/**
 * Draw tile `rect` of an atlas bitmap into a canvas at natural size (the page enlarges it
 * without smoothing: canvases are image-rendering: pixelated).
 */
export function paintTile(canvas, bitmap, rect) {
  const context = sized(canvas, rect.w, rect.h);
  context.drawImage(bitmap, rect.x, rect.y, rect.w, rect.h, 0, 0, rect.w, rect.h);
  canvas.classList.remove('see-through');
}

/**
 * Draw tile `rect` of an RGB atlas (RGBA ImageData) with the opacity of tile `alphaRect`
 * of a grayscale atlas ({width, gray}: 0 transparent .. 255 opaque), at natural size. The
 * canvas is marked see-through: the page shows a checkerboard behind it.
 */
export function paintTileWithAlpha(canvas, rgba, rect, alpha, alphaRect) {
  const context = sized(canvas, rect.w, rect.h);
  const out = context.createImageData(rect.w, rect.h);
  for (let y = 0; y < rect.h; y++) {
    for (let x = 0; x < rect.w; x++) {
      const from = ((rect.y + y) * rgba.width + rect.x + x) * 4;
      const to = (y * rect.w + x) * 4;
      out.data[to] = rgba.data[from];
      out.data[to + 1] = rgba.data[from + 1];
      out.data[to + 2] = rgba.data[from + 2];
      out.data[to + 3] = alpha.gray[(alphaRect.y + y) * alpha.width + alphaRect.x + x];
    }
  }
  context.putImageData(out, 0, 0);
  canvas.classList.add('see-through');
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

/** Draw a signed map (128 is zero) through a diverging table, over an image (RGBA ImageData) or alone. */
export function paintSigned(canvas, map, base, table, options) {
  const context = sized(canvas, map.width, map.height);
  const out = context.createImageData(map.width, map.height);
  signedOverlay(map.gray, base ? base.data : null, table, out, options);
  context.putImageData(out, 0, 0);
}

/** Show a broken-image mark in a canvas that could not be painted. */
export function paintFailed(canvas) {
  sized(canvas, 1, 1).clearRect(0, 0, 1, 1);
  canvas.closest('.frame')?.classList.add('failed');
}

/** Draw an RGB image whose deviations from mid-grey are multiplied by `gain`. */
export function paintAmplified(canvas, rgba, gain) {
  const context = sized(canvas, rgba.width, rgba.height);
  const out = context.createImageData(rgba.width, rgba.height);
  amplify(rgba.data, gain, out);
  context.putImageData(out, 0, 0);
}

/** Mark a canvas's frame as drawn (no longer pending, failed or missing). */
export function paintDone(canvas) {
  canvas.closest('.frame')?.classList.remove('failed', 'pending', 'missing');
}

/** Empty a canvas whose item the step does not hold; its frame says so (frame.missing). */
export function paintMissing(canvas) {
  sized(canvas, 1, 1).clearRect(0, 0, 1, 1);
  canvas.closest('.frame')?.classList.remove('failed', 'pending');
  canvas.closest('.frame')?.classList.add('missing');
}

/**
 * Put a grey mask ({width, height, gray}) under what a canvas shows, with a see-through gap
 * of `gap` rows (a segmentation map's predicted mask under its map); the canvas is marked
 * stacked (the page keeps its aspect). With no mask, only the mark is removed.
 */
export function paintMaskUnder(canvas, mask, gap = 2) {
  canvas.classList.toggle('stacked', Boolean(mask));
  if (!mask) return;
  const top = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
  const context = sized(canvas, Math.max(top.width, mask.width), top.height + gap + mask.height);
  context.clearRect(0, 0, canvas.width, canvas.height);
  context.putImageData(top, 0, 0);
  const out = context.createImageData(mask.width, mask.height);
  mask.gray.forEach((value, k) => {
    out.data.set([value, value, value, 255], k * 4);
  });
  context.putImageData(out, 0, top.height + gap);
}
