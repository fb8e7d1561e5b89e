import * as tf from '@tensorflow/tfjs-core';
import { serialization } from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

/** Pixel-centre coordinates (x_t, y_t, 1) of an output grid, normalised with align_corners = false: [3, H·W]. */
function outputGrid(height: number, width: number): tf.Tensor2D {
  const p = height * width;
  const grid = new Float32Array(3 * p);
  for (let i = 0; i < height; i++) {
    for (let j = 0; j < width; j++) {
      const k = i * width + j;
      grid[k] = (2 * j + 1) / width - 1;
      grid[p + k] = (2 * i + 1) / height - 1;
      grid[2 * p + k] = 1;
    }
  }
  return tf.tensor2d(grid, [3, p]);
}

/** 1 where an integer coordinate lies in [0, size − 1], else 0 (step(x) is 1 for x > 0). */
const inRange = (c: tf.Tensor, size: number) => tf.mul(tf.step(tf.add(c, 0.5)), tf.step(tf.sub(size - 0.5, c)));

// Per-neighbour tensors are [4, n, P, …], the four neighbours of a sample point in the order
// (y0, x0), (y0, x1), (y1, x0), (y1, x1). Neighbours first because wasm broadcasts over leading
// axes ~20× faster than over trailing ones.

/** a·t + b for each neighbour: [n, P] → [4, n, P]. */
const perCorner = (t: tf.Tensor, a: number[], b: number[]) =>
  tf.add(tf.mul(tf.expandDims(t, 0), tf.tensor3d(a, [4, 1, 1])), tf.tensor3d(b, [4, 1, 1]));

/** Σ_k coefficient_k · t[k]: [4, …] → […]. */
const sumCorners = (t: tf.Tensor, coefficients?: number[]) =>
  tf.sum(coefficients ? tf.mul(t, tf.tensor(coefficients, [4, ...t.shape.slice(1).map(() => 1)])) : t, 0);

/**
 * Bilinear sampling of images [n, H, W, C] at pixel coordinates px, py [n, P] → [n, P, C], zeros
 * outside. GatherNd and ScatterNd appear only as forward kernels inside this custom gradient:
 * their autodiff gradients need UnsortedSegmentSum, which the wasm backend lacks, and the dense
 * alternative (hat-weight matrix products, O(P·(H + W)) per image) was ~15× slower at MNIST sizes.
 * The coordinate gradient is the floor-based one of PyTorch's grid_sample backward, which at
 * integer coordinates (every point of the identity transform) is the forward difference; autodiff
 * of a max(0, 1 − |d|) hat gives a wrong one there.
 */
const bilinear = tf.customGrad((...args) => {
  const [images, px, py] = args.slice(0, 3) as [tf.Tensor4D, tf.Tensor2D, tf.Tensor2D];
  const save = args[3] as tf.GradSaveFunc;
  const [n, height, width, channels] = images.shape;
  const corners = 4 * px.size;
  const x0 = tf.floor(px);
  const y0 = tf.floor(py);
  const cx = perCorner(x0, [1, 1, 1, 1], [0, 1, 0, 1]);
  const cy = perCorner(y0, [1, 1, 1, 1], [0, 0, 1, 1]);
  const inside = tf.mul(inRange(cx, width), inRange(cy, height));
  // Outside neighbours read a clamped pixel and are then zeroed: the 'zeros' padding. The flat
  // index is summed in float32 (exact below 2^24): wasm's int32 Add is ~50× slower.
  const within = tf.add(tf.mul(tf.clipByValue(cy, 0, height - 1), width), tf.clipByValue(cx, 0, width - 1));
  const imageStart = tf.add(tf.zerosLike(px), tf.tensor2d(Array.from({ length: n }, (_, b) => b * height * width), [n, 1]));
  const index = tf.cast(tf.add(within, tf.expandDims(imageStart, 0)), 'int32');
  // gatherND rather than gather: the same lookup, ~15× faster on wasm.
  const pixels = tf.reshape(images, [n * height * width, channels]);
  const values = tf.mul(tf.gatherND(pixels, tf.expandDims(index, 3)), tf.expandDims(inside, 3)); // [4, n, P, C]
  const wx = perCorner(tf.sub(px, x0), [-1, 1, -1, 1], [1, 0, 1, 0]); // 1 − fx, fx, 1 − fx, fx
  const wy = perCorner(tf.sub(py, y0), [-1, -1, 1, 1], [1, 1, 0, 0]);
  const weights = tf.expandDims(tf.mul(tf.mul(wx, wy), inside), 3); // [4, n, P, 1]
  save([values, weights, index, wx, wy]);
  return {
    value: sumCorners(tf.mul(values, weights)),
    gradFunc: (dy: tf.Tensor, [savedValues, savedWeights, savedIndex, savedWx, savedWy]: tf.Tensor[]) => {
      const dyPerCorner = tf.expandDims(dy, 0); // [1, n, P, C]
      const updates = tf.reshape(tf.mul(dyPerCorner, savedWeights), [corners, channels]);
      const dPixels = tf.scatterND(tf.reshape(savedIndex, [corners, 1]), updates, [n * height * width, channels]); // sums repeated indices
      const dValues = tf.sum(tf.mul(savedValues, dyPerCorner), 3); // [4, n, P]
      // ∂w/∂px is ±wy (+ for the x1 neighbours), ∂w/∂py is ±wx (+ for the y1 neighbours).
      const dPx = sumCorners(tf.mul(dValues, savedWy), [-1, 1, -1, 1]);
      const dPy = sumCorners(tf.mul(dValues, savedWx), [-1, -1, 1, 1]);
      return [tf.reshape(dPixels, images.shape), dPx, dPy];
    },
  };
});

/**
 * Samples `images` [n, H, W, C] at the affine grid given by `theta` [n, 6] (row-major 2×3, mapping
 * output to source normalised coordinates, x along the width): exactly PyTorch's
 * grid_sample(x, affine_grid(theta, size, align_corners=False), 'bilinear', 'zeros', align_corners=False).
 * Differentiable with respect to both inputs on every backend, wasm included.
 */
export function affineSample(images: tf.Tensor4D, theta: tf.Tensor2D, outSize?: [number, number]): tf.Tensor4D {
  const [n, height, width, channels] = images.shape;
  const [outHeight, outWidth] = outSize ?? [height, width];
  if (n * height * width > 2 ** 24) throw new Error(`affineSample handles at most 2^24 pixels a call, got ${n}×${height}×${width}`);
  if (theta.rank !== 2 || theta.shape[0] !== n || theta.shape[1] !== 6) {
    throw new Error(`theta must be [${n}, 6] for ${n} images, got [${theta.shape.join(', ')}]`);
  }
  const points = outHeight * outWidth;
  return tf.tidy(() => {
    const source = tf.reshape(tf.matMul(tf.reshape(theta, [2 * n, 3]), outputGrid(outHeight, outWidth)), [n, 2, points]);
    const [xs, ys] = tf.split(source, 2, 1);
    // ((s + 1)·size − 1) / 2: normalised to pixel coordinates, align_corners = false.
    const px = tf.add(tf.mul(tf.reshape(xs, [n, points]), width / 2), (width - 1) / 2);
    const py = tf.add(tf.mul(tf.reshape(ys, [n, points]), height / 2), (height - 1) / 2);
    return tf.reshape(bilinear(images, px, py), [n, outHeight, outWidth, channels]);
  });
}

type LayerArgs = NonNullable<ConstructorParameters<typeof tfl.layers.Layer>[0]>;

export interface SpatialTransformerArgs extends LayerArgs {
  /** [height, width] of the output; the input images' size when absent. */
  outputSize?: [number, number] | null;
}

/**
 * Samples its first input, images [n, H, W, C], on the affine grid of its second, theta [n, 6]
 * (see affineSample). Has no weights: theta comes from a localisation network in the model.
 */
export class SpatialTransformer extends tfl.layers.Layer {
  static className = 'SpatialTransformer';
  readonly outputSize: [number, number] | undefined;

  constructor(args: SpatialTransformerArgs = {}) {
    super(args);
    this.outputSize = args.outputSize ?? undefined;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const [images, theta] = inputShape as tfl.Shape[];
    if (!Array.isArray(images) || images.length !== 4 || theta?.length !== 2 || (theta[1] !== null && theta[1] !== 6)) {
      throw new Error(`SpatialTransformer takes [images [n, H, W, C], theta [n, 6]], got ${JSON.stringify(inputShape)}`);
    }
    const [height, width] = this.outputSize ?? [images[1], images[2]];
    return [images[0], height, width, images[3]];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const [images, theta] = inputs as tf.Tensor[];
    return affineSample(images as tf.Tensor4D, theta as tf.Tensor2D, this.outputSize);
  }

  override getConfig(): serialization.ConfigDict {
    return { ...super.getConfig(), outputSize: this.outputSize ?? null };
  }
}

// tfl.loadLayersModel and models.modelFromJSON find layer classes by name in this registry (one per thread).
serialization.registerClass(SpatialTransformer);
