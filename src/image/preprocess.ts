import { DIGIT_PIXELS, DIGIT_SIZE } from '../schemas/digit.ts';
import { decodePng, naming, type GrayImage, type ImageLimits, type NamedPng } from './png.ts';

/** One pure step of the image pipeline. */
export type Step = (img: GrayImage) => GrayImage;

/** Mean of the outermost ring of pixels: the background, for any image with a margin. */
export function borderMean(img: GrayImage): number {
  const { width: w, height: h, data } = img;
  let sum = 0;
  let count = 0;
  for (let x = 0; x < w; x++) {
    sum += data[x] + (h > 1 ? data[(h - 1) * w + x] : 0);
    count += h > 1 ? 2 : 1;
  }
  for (let y = 1; y < h - 1; y++) {
    sum += data[y * w] + (w > 1 ? data[y * w + w - 1] : 0);
    count += w > 1 ? 2 : 1;
  }
  return sum / count;
}

/** MNIST digits are light ink on a dark background; a light background (paper, canvas) is inverted. */
export const darkBackground: Step = (img) => {
  if (borderMean(img) <= 127) return img;
  const data = new Uint8Array(img.data.length);
  for (let i = 0; i < data.length; i++) data[i] = 255 - img.data[i];
  return { ...img, data };
};

/**
 * Area-averaging (box filter) resize along one axis: each output sample is the mean of the input
 * interval it covers, with fractional weights at the ends — exact for down-scaling, and a smooth
 * nearest-neighbour for up-scaling.
 */
function resampleAxis(src: Float32Array, lines: number, inLen: number, outLen: number, stride: number, lineStride: number, outStride: number, outLineStride: number, dst: Float32Array): void {
  const scale = inLen / outLen;
  for (let line = 0; line < lines; line++) {
    for (let o = 0; o < outLen; o++) {
      const start = o * scale;
      const end = start + scale;
      let sum = 0;
      for (let i = Math.floor(start); i < Math.min(inLen, Math.ceil(end)); i++) {
        const weight = Math.min(end, i + 1) - Math.max(start, i);
        sum += weight * src[line * lineStride + i * stride];
      }
      dst[line * outLineStride + o * outStride] = sum / scale;
    }
  }
}

export function resizeArea(img: GrayImage, width: number, height: number): GrayImage {
  const src = Float32Array.from(img.data);
  const horizontal = new Float32Array(width * img.height);
  resampleAxis(src, img.height, img.width, width, 1, img.width, 1, width, horizontal);
  const out = new Float32Array(width * height);
  resampleAxis(horizontal, width, img.height, height, width, 1, width, 1, out);
  const data = new Uint8Array(width * height);
  for (let i = 0; i < data.length; i++) data[i] = Math.min(255, Math.max(0, Math.round(out[i])));
  return { width, height, data };
}

/** MNIST's digits were scaled to fit a 20×20 box, then placed in the 28×28 field by centre of mass. */
export const MNIST_BOX = 20;
/**
 * Where MNIST's centre of mass sits, in pixel indices: over all 70,000 digits it lies within
 * [13.5, 14.5] on both axes (mean 14.0), i.e. it was rounded to the nearest whole-pixel shift.
 */
export const MNIST_CENTRE = 14;

interface InkStats {
  /** Bounding box of the pixels above the threshold; x1/y1 exclusive; empty when x1 <= x0. */
  x0: number;
  x1: number;
  y0: number;
  y1: number;
  /** Sum of all pixel values and their centre of mass (pixel indices). */
  mass: number;
  cx: number;
  cy: number;
}

function inkStats(img: GrayImage, threshold = 0): InkStats {
  const { width: w, height: h, data } = img;
  let x0 = w, x1 = 0, y0 = h, y1 = 0, mass = 0, sx = 0, sy = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const v = data[y * w + x];
      if (v === 0) continue;
      mass += v;
      sx += v * x;
      sy += v * y;
      if (v > threshold) {
        if (x < x0) x0 = x;
        if (x >= x1) x1 = x + 1;
        if (y < y0) y0 = y;
        if (y >= y1) y1 = y + 1;
      }
    }
  }
  return { x0, x1, y0, y1, mass, cx: mass > 0 ? sx / mass : (w - 1) / 2, cy: mass > 0 ? sy / mass : (h - 1) / 2 };
}

/** How far an input may stray from MNIST's own conventions and still count as already normalised. */
export const MNIST_LIKE_TOLERANCE = { box: 2, centre: 1 };

/**
 * True for a 28×28 light-on-dark image that already follows MNIST's conventions, so it is fed to
 * the model exactly as sent: resampling an already-normalised digit would only blur it. Measured on
 * all 70,000 MNIST digits: the box of nonzero pixels is 19 or 20 pixels on its longer side and at
 * most 20 on the other, and the centre of mass lies within half a pixel of (14, 14). We accept a
 * longer side of 18–22 and a centre within 1 pixel, so digits normalised by a slightly different
 * tool (or by this pipeline: its output passes this test) are left alone, while a digit that is
 * small, fills the field, sits off-centre or lies on a noisy background is normalised.
 */
export function isMnistLike(img: GrayImage): boolean {
  if (img.width !== DIGIT_SIZE || img.height !== DIGIT_SIZE) return false;
  const s = inkStats(img);
  if (s.mass === 0) return true; // blank: nothing to normalise
  const tol = MNIST_LIKE_TOLERANCE.box;
  const longer = Math.max(s.x1 - s.x0, s.y1 - s.y0);
  return (
    longer >= MNIST_BOX - tol &&
    longer <= MNIST_BOX + tol &&
    Math.abs(s.cx - MNIST_CENTRE) <= MNIST_LIKE_TOLERANCE.centre &&
    Math.abs(s.cy - MNIST_CENTRE) <= MNIST_LIKE_TOLERANCE.centre
  );
}

/** Runs `steps` only on images that are not MNIST-like already (see isMnistLike). */
export function unlessMnistLike(...steps: Step[]): Step {
  return (img) => (isMnistLike(img) ? img : steps.reduce((acc, step) => step(acc), img));
}

/**
 * Robust spread of residuals: 1.4826 × their median absolute value (the σ of Gaussian noise), from
 * a histogram in 1/8 steps, linear where sorting would dominate a large photo's preprocessing.
 */
function noiseSigma(xs: Float64Array, ys: Float64Array, vs: Float64Array, plane: Plane, use?: Uint8Array): number {
  const STEPS = 8;
  const bins = new Uint32Array(256 * STEPS + 1);
  let n = 0;
  for (let i = 0; i < vs.length; i++) {
    if (use && !use[i]) continue;
    const r = Math.abs(vs[i] - (plane[0] + plane[1] * xs[i] + plane[2] * ys[i]));
    bins[Math.min(bins.length - 1, Math.round(r * STEPS))]++;
    n++;
  }
  let seen = 0;
  for (let k = 0; k < bins.length; k++) {
    seen += bins[k];
    if (seen * 2 > n) return (1.4826 * k) / STEPS;
  }
  return 0;
}

type Plane = [number, number, number];

/** Least-squares plane v ≈ a + b·x + c·y through the samples (those with use[i] set, if given). */
function fitPlane(xs: Float64Array, ys: Float64Array, vs: Float64Array, use?: Uint8Array): Plane {
  let n = 0, mx = 0, my = 0, mv = 0;
  for (let i = 0; i < vs.length; i++) {
    if (use && !use[i]) continue;
    n++;
    mx += xs[i];
    my += ys[i];
    mv += vs[i];
  }
  mx /= n;
  my /= n;
  mv /= n;
  let sxx = 0, sxy = 0, syy = 0, sxv = 0, syv = 0;
  for (let i = 0; i < vs.length; i++) {
    if (use && !use[i]) continue;
    const dx = xs[i] - mx, dy = ys[i] - my, dv = vs[i] - mv;
    sxx += dx * dx;
    sxy += dx * dy;
    syy += dy * dy;
    sxv += dx * dv;
    syv += dy * dv;
  }
  const det = sxx * syy - sxy * sxy;
  const b = det > 1e-9 ? (sxv * syy - syv * sxy) / det : 0;
  const c = det > 1e-9 ? (syv * sxx - sxv * sxy) / det : 0;
  return [mv - b * mx - c * my, b, c];
}

/**
 * Photos of paper have an uneven background (light falls off across the page) and sensor noise;
 * after inversion both would read as faint ink. This fits a plane to the image's margin (twice,
 * the second time without margin pixels that look like ink), subtracts it, drops what lies within
 * three standard deviations of the margin's noise, and stretches the remaining ink so its darkest
 * stroke is 255, as MNIST's strokes are. A clean canvas or scan has a flat, noise-free margin, so
 * for it this is only the stretch.
 */
export const flattenBackground: Step = (img) => {
  const { width: w, height: h, data } = img;
  if (w < 3 || h < 3) return img;
  const ring = Math.max(1, Math.round(Math.min(w, h) * 0.03));
  const inner = Math.max(0, w - 2 * ring) * Math.max(0, h - 2 * ring);
  const count = w * h - inner;
  const xs = new Float64Array(count), ys = new Float64Array(count), vs = new Float64Array(count);
  let k = 0;
  for (let y = 0; y < h; y++) {
    const inMargin = y < ring || y >= h - ring;
    for (let x = 0; x < w; x++) {
      if (inMargin || x < ring || x >= w - ring) {
        xs[k] = x;
        ys[k] = y;
        vs[k++] = data[y * w + x];
      }
    }
  }
  let plane = fitPlane(xs, ys, vs);
  let sigma = noiseSigma(xs, ys, vs, plane);
  // Refit without margin pixels that look like ink (a digit touching the edge), once.
  const background = new Uint8Array(count);
  let kept = 0;
  for (let i = 0; i < count; i++) {
    if (vs[i] - (plane[0] + plane[1] * xs[i] + plane[2] * ys[i]) <= 3 * sigma + 1) {
      background[i] = 1;
      kept++;
    }
  }
  if (kept >= 3 && kept < count) {
    plane = fitPlane(xs, ys, vs, background);
    sigma = noiseSigma(xs, ys, vs, plane, background);
  }
  const [a, b, c] = plane;
  const floor = 3 * sigma;
  const flat = new Float32Array(w * h);
  let peak = 0;
  for (let y = 0; y < h; y++) {
    const base = a + c * y + floor;
    for (let x = 0; x < w; x++) {
      const v = data[y * w + x] - base - b * x;
      if (v > 0) {
        flat[y * w + x] = v;
        if (v > peak) peak = v;
      }
    }
  }
  const out = new Uint8Array(w * h);
  if (peak === 0) return { width: w, height: h, data: out };
  const gain = 255 / peak;
  for (let i = 0; i < out.length; i++) out[i] = Math.min(255, Math.round(flat[i] * gain));
  return { width: w, height: h, data: out };
};

/** Below this fraction of the brightest pixel a pixel does not count towards the ink's bounding box. */
const INK_THRESHOLD = 0.1;

/**
 * Crops to the bounding box of the ink. A pixel counts only if one of its 8 neighbours is ink too,
 * so a lone speck of noise far from the digit cannot stretch the box (and shrink the digit).
 */
export const cropToInk: Step = (img) => {
  const { width: w, height: h, data } = img;
  let peak = 0;
  for (let i = 0; i < data.length; i++) if (data[i] > peak) peak = data[i];
  if (peak === 0) return img;
  const t = peak * INK_THRESHOLD;
  // Ink mask with a one-pixel empty frame, so neighbour lookups need no bounds checks.
  const mw = w + 2;
  const mask = new Uint8Array(mw * (h + 2));
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if (data[y * w + x] > t) mask[(y + 1) * mw + x + 1] = 1;
  let x0 = w, x1 = 0, y0 = h, y1 = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const m = (y + 1) * mw + x + 1;
      if (!mask[m]) continue;
      const neighbours = mask[m - mw - 1] + mask[m - mw] + mask[m - mw + 1] + mask[m - 1] + mask[m + 1] + mask[m + mw - 1] + mask[m + mw] + mask[m + mw + 1];
      if (neighbours === 0) continue;
      if (x < x0) x0 = x;
      if (x >= x1) x1 = x + 1;
      if (y < y0) y0 = y;
      if (y >= y1) y1 = y + 1;
    }
  }
  if (x1 <= x0) ({ x0, x1, y0, y1 } = inkStats(img, t)); // only isolated dots: a dot is the digit
  const cw = x1 - x0, ch = y1 - y0;
  const out = new Uint8Array(cw * ch);
  for (let y = 0; y < ch; y++) out.set(data.subarray((y0 + y) * w + x0, (y0 + y) * w + x1), y * cw);
  return { width: cw, height: ch, data: out };
};

/** Bilinear resampling with pixel centres aligned, for enlarging (area averaging would be blocky). */
export function resizeBilinear(img: GrayImage, width: number, height: number): GrayImage {
  const { width: w, height: h, data: src } = img;
  const out = new Uint8Array(width * height);
  const sx = w / width, sy = h / height;
  for (let y = 0; y < height; y++) {
    const fy = Math.min(h - 1, Math.max(0, (y + 0.5) * sy - 0.5));
    const y0 = Math.floor(fy), y1 = Math.min(h - 1, y0 + 1), wy = fy - y0;
    for (let x = 0; x < width; x++) {
      const fx = Math.min(w - 1, Math.max(0, (x + 0.5) * sx - 0.5));
      const x0 = Math.floor(fx), x1 = Math.min(w - 1, x0 + 1), wx = fx - x0;
      const top = src[y0 * w + x0] * (1 - wx) + src[y0 * w + x1] * wx;
      const bottom = src[y1 * w + x0] * (1 - wx) + src[y1 * w + x1] * wx;
      out[y * width + x] = Math.round(top * (1 - wy) + bottom * wy);
    }
  }
  return { width, height, data: out };
}

/** Scales the image so its longer side is `side` pixels, keeping the aspect ratio. */
export function fitBox(side: number): Step {
  return (img) => {
    const scale = side / Math.max(img.width, img.height);
    if (scale === 1) return img;
    const w = Math.max(1, Math.round(img.width * scale));
    const h = Math.max(1, Math.round(img.height * scale));
    return scale < 1 ? resizeArea(img, w, h) : resizeBilinear(img, w, h);
  };
}

/**
 * Places the image (at most 28×28) on a black 28×28 field so its centre of mass lands on MNIST's
 * (whole-pixel shifts, as MNIST did), without pushing any of it off the field.
 */
export const centreByMass: Step = (img) => {
  const { width: w, height: h } = img;
  if (w > DIGIT_SIZE || h > DIGIT_SIZE) throw new RangeError(`centreByMass takes at most ${DIGIT_SIZE}×${DIGIT_SIZE}, got ${w}×${h}`);
  const { cx, cy } = inkStats(img);
  const left = Math.min(DIGIT_SIZE - w, Math.max(0, Math.round(MNIST_CENTRE - cx)));
  const top = Math.min(DIGIT_SIZE - h, Math.max(0, Math.round(MNIST_CENTRE - cy)));
  const data = new Uint8Array(DIGIT_SIZE * DIGIT_SIZE);
  for (let y = 0; y < h; y++) data.set(img.data.subarray(y * w, (y + 1) * w), (top + y) * DIGIT_SIZE + left);
  return { width: DIGIT_SIZE, height: DIGIT_SIZE, data };
};

/**
 * The pipeline from any decoded image to MNIST's input, the way MNIST itself was made: light ink on
 * a dark background, cropped to the ink, scaled to fit 20×20 keeping the aspect ratio, centred by
 * centre of mass in 28×28. An image that is MNIST-like already passes through unchanged.
 */
export const MNIST_PIPELINE: Step[] = [darkBackground, unlessMnistLike(flattenBackground, cropToInk, fitBox(MNIST_BOX), centreByMass)];

export function toMnistInput(img: GrayImage, steps: Step[] = MNIST_PIPELINE): Uint8Array {
  // A caller's mismatched buffer would otherwise come out as a plausible-looking but wrong digit.
  if (img.width < 1 || img.height < 1 || img.data.length !== img.width * img.height) {
    throw new RangeError(`an image of ${img.width}×${img.height} needs ${img.width * img.height} pixels, got ${img.data.length}`);
  }
  return steps.reduce((acc, step) => step(acc), img).data;
}

/** Bytes of an uploaded PNG → the 784 pixels (0 = background, 255 = ink) the models take. */
export function imageToMnistPixels(buf: Uint8Array, limits: Partial<ImageLimits> = {}): Uint8Array {
  return toMnistInput(decodePng(buf, limits));
}

/** Several PNGs → their MNIST inputs one after another (count × 784 pixels); an error names the image. */
export function pngsToMnistPixels(pngs: NamedPng[]): Uint8Array {
  const out = new Uint8Array(pngs.length * DIGIT_PIXELS);
  pngs.forEach(({ name, png }, i) => out.set(naming(name, () => imageToMnistPixels(png)), i * DIGIT_PIXELS));
  return out;
}
