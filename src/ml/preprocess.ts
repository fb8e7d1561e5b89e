import { decodePng, type GrayImage, type ImageLimits } from './png.ts';

export const MNIST_SIDE = 28;

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

/** Scales the image to fit 28×28 keeping its aspect ratio, centred on a black canvas. */
export const fitToMnist: Step = (img) => {
  if (img.width === MNIST_SIDE && img.height === MNIST_SIDE) return img;
  const scale = MNIST_SIDE / Math.max(img.width, img.height);
  const w = Math.max(1, Math.round(img.width * scale));
  const h = Math.max(1, Math.round(img.height * scale));
  const resized = resizeArea(img, w, h);
  const data = new Uint8Array(MNIST_SIDE * MNIST_SIDE);
  const left = Math.floor((MNIST_SIDE - w) / 2);
  const top = Math.floor((MNIST_SIDE - h) / 2);
  for (let y = 0; y < h; y++) data.set(resized.data.subarray(y * w, (y + 1) * w), (top + y) * MNIST_SIDE + left);
  return { width: MNIST_SIDE, height: MNIST_SIDE, data };
};

/**
 * The pipeline from any decoded image to MNIST's input. A 28×28 image on a dark background passes
 * through unchanged. (Cropping to the ink's bounding box, 20×20 and centre-of-mass centring, as
 * MNIST itself was made, slot in after darkBackground.)
 */
export const MNIST_PIPELINE: Step[] = [darkBackground, fitToMnist];

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
