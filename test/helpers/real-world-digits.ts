import pngjs from 'pngjs';
import { mulberry32 } from '../../src/ml/random.ts';

/**
 * MNIST test digits re-rendered the way people send them, to check that preprocessing turns them
 * back into what the model was trained on:
 * - a browser canvas export: 280×280 RGBA, transparent background, dark anti-aliased strokes
 *   (alpha carries the ink), the digit drawn large and off-centre;
 * - a photo of paper: opaque RGB, dark ink on a light page with a lighting gradient, a warm tint
 *   and sensor noise, in a portrait or landscape frame, the digit off-centre.
 */

export type Rng = () => number;

/** RGBA (canvas, alpha used) or RGB (photo) PNG, written fast: one filter, light compression. */
function encode(rgba: Uint8Array, width: number, height: number, alpha: boolean): Buffer {
  const png = new pngjs.PNG({ width, height });
  png.data = Buffer.from(rgba.buffer, rgba.byteOffset, rgba.byteLength);
  return pngjs.PNG.sync.write(png, { colorType: alpha ? 6 : 2, filterType: 1, deflateLevel: 1 });
}

const SIDE = 28;

/**
 * The digit as a pen would draw it at size×size: bilinear enlargement (pixel centres aligned), then
 * a steep ramp around half intensity, so strokes have a solid core and edges about a pixel wide as
 * on a canvas or paper, not the 10-pixel soft fringe that enlarging a 28×28 image leaves. Values 0..1.
 */
function enlarge(digit: Uint8Array, size: number): Float32Array {
  const out = new Float32Array(size * size);
  const s = SIDE / size;
  const at = (x: number, y: number) => digit[Math.min(SIDE - 1, Math.max(0, y)) * SIDE + Math.min(SIDE - 1, Math.max(0, x))] / 255;
  for (let y = 0; y < size; y++) {
    const fy = (y + 0.5) * s - 0.5;
    const y0 = Math.floor(fy), wy = fy - y0;
    for (let x = 0; x < size; x++) {
      const fx = (x + 0.5) * s - 0.5;
      const x0 = Math.floor(fx), wx = fx - x0;
      const top = at(x0, y0) * (1 - wx) + at(x0 + 1, y0) * wx;
      const bottom = at(x0, y0 + 1) * (1 - wx) + at(x0 + 1, y0 + 1) * wx;
      out[y * size + x] = Math.min(1, Math.max(0, (top * (1 - wy) + bottom * wy - 0.3) / 0.4));
    }
  }
  return out;
}

const between = (rng: Rng, lo: number, hi: number) => lo + (hi - lo) * rng();

/** Standard normal sample (Box–Muller). */
function gaussian(rng: Rng): number {
  return Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
}

/** Where a size×size square goes inside a width×height frame: anywhere, so usually off-centre. */
function place(rng: Rng, size: number, width: number, height: number): [number, number] {
  return [Math.floor(rng() * (width - size + 1)), Math.floor(rng() * (height - size + 1))];
}

export function canvasExport(digit: Uint8Array, rng: Rng): Buffer {
  const W = 280;
  const size = Math.round(between(rng, 140, 250)); // the whole 28×28 field, so the digit is ~100–180 px tall
  const ink = enlarge(digit, size);
  const [left, top] = place(rng, size, W, W);
  const colour = [Math.round(between(rng, 0, 40)), Math.round(between(rng, 0, 40)), Math.round(between(rng, 0, 90))];
  const rgba = new Uint8Array(W * W * 4); // transparent
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const a = ink[y * size + x];
      if (a > 0) rgba.set([colour[0], colour[1], colour[2], Math.round(a * 255)], ((top + y) * W + left + x) * 4);
    }
  }
  return encode(rgba, W, W, true);
}

export function paperPhoto(digit: Uint8Array, rng: Rng): Buffer {
  const [W, H] = rng() < 0.5 ? [160, 200] : [200, 160];
  const size = Math.round(between(rng, 100, 155));
  const ink = enlarge(digit, size);
  const [left, top] = place(rng, size, W, H);
  const paper = between(rng, 175, 230);
  const gx = between(rng, -30, 30) / W; // light falling off across the page
  const gy = between(rng, -30, 30) / H;
  const darkness = between(rng, 0.7, 0.9); // how much light the ink absorbs
  const noise = between(rng, 2, 6);
  const tint = [between(rng, 0, 8), 0, -between(rng, 0, 12)]; // warm indoor light
  const rgba = new Uint8Array(W * H * 4);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const inside = x >= left && x < left + size && y >= top && y < top + size;
      const a = inside ? ink[(y - top) * size + (x - left)] : 0;
      const light = (paper + gx * (x - W / 2) + gy * (y - H / 2)) * (1 - darkness * a);
      const n = noise * gaussian(rng);
      for (let c = 0; c < 3; c++) rgba[(y * W + x) * 4 + c] = Math.min(255, Math.max(0, Math.round(light + tint[c] + n)));
      rgba[(y * W + x) * 4 + 3] = 255;
    }
  }
  return encode(rgba, W, H, false);
}

export interface RenderedDigit {
  label: number;
  original: Uint8Array;
  canvas: Buffer;
  photo: Buffer;
}

/** Digits `offset`…`offset+count-1` of a set, each as a canvas export and a paper photo (seeded). */
export function renderDigits(images: Uint8Array, labels: Uint8Array, count: number, offset = 0, seed = 1): RenderedDigit[] {
  const rng = mulberry32(seed);
  return Array.from({ length: count }, (_, i) => {
    const k = offset + i;
    const original = images.subarray(k * 784, (k + 1) * 784);
    return { label: labels[k], original, canvas: canvasExport(original, rng), photo: paperPhoto(original, rng) };
  });
}
