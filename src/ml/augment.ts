import * as tf from '@tensorflow/tfjs-core';

export interface AugmentOptions {
  /** Largest rotation, in degrees, either way. */
  rotation: number;
  /** Largest shift, in pixels, along each axis. */
  shift: number;
  /** Zoom factor range [min, max]; 1 = unchanged. */
  scale: readonly number[];
}

export function isIdentity(opts: AugmentOptions): boolean {
  return opts.rotation === 0 && opts.shift === 0 && opts.scale[0] === 1 && opts.scale[1] === 1;
}

/**
 * One random affine transform per image: rotate by θ and zoom by s about the image centre, then
 * shift by (dx, dy). Returned as the 8 projective parameters `tf.image.transform` takes, which map
 * an OUTPUT pixel (x, y) to the INPUT pixel it samples — hence the inverse transform.
 */
export function randomTransforms(count: number, opts: AugmentOptions, random: () => number, size = 28): Float32Array {
  const out = new Float32Array(count * 8);
  const c = (size - 1) / 2;
  for (let i = 0; i < count; i++) {
    const theta = ((random() * 2 - 1) * opts.rotation * Math.PI) / 180;
    const s = opts.scale[0] + random() * (opts.scale[1] - opts.scale[0]);
    const dx = (random() * 2 - 1) * opts.shift;
    const dy = (random() * 2 - 1) * opts.shift;
    // forward: out = R·s·(in − c) + c + d  ⇒  in = R⁻¹·(out − c − d)/s + c
    const cos = Math.cos(theta) / s;
    const sin = Math.sin(theta) / s;
    const a0 = cos;
    const a1 = sin;
    const b0 = -sin;
    const b1 = cos;
    const ox = c + dx;
    const oy = c + dy;
    out.set([a0, a1, c - a0 * ox - a1 * oy, b0, b1, c - b0 * ox - b1 * oy, 0, 0], i * 8);
  }
  return out;
}

/** Applies a random transform to each image of a [n, 28, 28, 1] batch (bilinear, black outside). */
export function augmentBatch(xs: tf.Tensor4D, opts: AugmentOptions, random: () => number): tf.Tensor4D {
  const n = xs.shape[0];
  return tf.tidy(() => tf.image.transform(xs, tf.tensor2d(randomTransforms(n, opts, random, xs.shape[1]), [n, 8]), 'bilinear', 'constant', 0));
}
