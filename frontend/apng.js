// A small PNG and APNG (animated PNG) encoder for the detail's exports: 8-bit RGBA, filter
// type 0 on every row, compressed by the browser's own zlib (CompressionStream 'deflate',
// which writes the zlib format PNG asks for), so no library and no build step. APNG is PNG
// plus three chunks, acTL (frame count, loops), fcTL (each frame's size, place and delay)
// and fdAT (the frames after the first; the first is the IDAT), as in the APNG
// specification (Mozilla, 2008), part of PNG's third edition (W3C, 2025). A reader that
// knows no APNG shows the first frame.

const SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

let crcTable = null;

/** The CRC-32 (ISO 3309, as PNG uses it) of some byte arrays, one after the other. */
function crc32(...parts) {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (const part of parts) {
    for (let i = 0; i < part.length; i++) crc = crcTable[(crc ^ part[i]) & 255] ^ (crc >>> 8);
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** Big-endian bytes of unsigned integers, each `size` bytes (4 or 2) or one byte (1). */
function bytes(...fields) {
  const out = [];
  for (const [value, size] of fields) {
    for (let shift = (size - 1) * 8; shift >= 0; shift -= 8) out.push((value >>> shift) & 255);
  }
  return new Uint8Array(out);
}

/** One chunk: length, type, data, CRC of type and data. */
function chunk(type, data) {
  const name = new TextEncoder().encode(type);
  const out = new Uint8Array(12 + data.length);
  out.set(bytes([data.length, 4]), 0);
  out.set(name, 4);
  out.set(data, 8);
  out.set(bytes([crc32(name, data), 4]), 8 + data.length);
  return out;
}

/** zlib-compressed bytes (RFC 1950), by the browser. */
async function deflate(data) {
  const stream = new Blob([data]).stream().pipeThrough(new CompressionStream('deflate'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** The image data PNG compresses: each row of RGBA pixels after a filter-type byte (0: none). */
function scanlines(rgba, width, height) {
  const row = width * 4;
  const out = new Uint8Array(height * (row + 1));
  for (let y = 0; y < height; y++) out.set(rgba.subarray(y * row, (y + 1) * row), y * (row + 1) + 1);
  return out;
}

/** IHDR of an 8-bit RGBA image, not interlaced. */
function header(width, height) {
  return chunk('IHDR', bytes([width, 4], [height, 4], [8, 1], [6, 1], [0, 1], [0, 1], [0, 1]));
}

/** Check that frames hold width x height RGBA pixels. */
function check(frames, width, height) {
  if (!(width > 0 && height > 0) || !frames.length) throw new Error(`Nothing to encode (${frames.length} frames of ${width}×${height})`);
  for (const frame of frames) {
    if (frame.length !== width * height * 4) {
      throw new Error(`A frame of ${frame.length} bytes is not ${width}×${height} RGBA`);
    }
  }
}

/**
 * Encode one RGBA image as a PNG.
 *
 * @param {Uint8ClampedArray|Uint8Array} rgba width * height * 4 bytes (ImageData.data).
 * @param {number} width in pixels.
 * @param {number} height in pixels.
 * @returns {Promise<Blob>} an image/png blob.
 * @example const blob = await encodePng(context.getImageData(0, 0, w, h).data, w, h);
 */
export async function encodePng(rgba, width, height) {
  check([rgba], width, height);
  const data = await deflate(scanlines(rgba, width, height));
  const parts = [new Uint8Array(SIGNATURE), header(width, height), chunk('IDAT', data), chunk('IEND', new Uint8Array())];
  return new Blob(parts, { type: 'image/png' });
}

/**
 * Encode RGBA frames of one size as an animated PNG that loops forever (each frame replaces
 * the whole canvas: dispose none, blend source).
 *
 * @param {Array<Uint8ClampedArray|Uint8Array>} frames width * height * 4 bytes each.
 * @param {number} width in pixels.
 * @param {number} height in pixels.
 * @param {Array<number>} delays each frame's time on screen in milliseconds (< 65536).
 * @returns {Promise<Blob>} an image/png blob (APNG).
 * @example const blob = await encodeApng([a.data, b.data], w, h, [500, 1500]);
 */
export async function encodeApng(frames, width, height, delays) {
  check(frames, width, height);
  const compressed = await Promise.all(frames.map((rgba) => deflate(scanlines(rgba, width, height))));
  const parts = [new Uint8Array(SIGNATURE), header(width, height), chunk('acTL', bytes([frames.length, 4], [0, 4]))];
  let sequence = 0;
  compressed.forEach((data, i) => {
    const delay = Math.max(0, Math.min(65535, Math.round(delays[i] ?? 500)));
    const control = bytes([sequence++, 4], [width, 4], [height, 4], [0, 4], [0, 4], [delay, 2], [1000, 2], [0, 1], [0, 1]);
    parts.push(chunk('fcTL', control));
    if (i === 0) {
      parts.push(chunk('IDAT', data));
    } else {
      const body = new Uint8Array(4 + data.length);
      body.set(bytes([sequence++, 4]), 0);
      body.set(data, 4);
      parts.push(chunk('fdAT', body));
    }
  });
  parts.push(chunk('IEND', new Uint8Array()));
  return new Blob(parts, { type: 'image/png' });
}
