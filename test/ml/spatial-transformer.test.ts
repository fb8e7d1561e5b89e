import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '../../src/ml/backend.ts';
import { affineSample, SpatialTransformer } from '../../src/ml/layers/spatial-transformer.ts';
import { mulberry32 } from '../../src/ml/random.ts';

before(() => initBackend('wasm'));

const IDENTITY = [1, 0, 0, 0, 1, 0];

function randomArray(size: number, random: () => number): Float32Array {
  return Float32Array.from({ length: size }, () => random() * 2 - 1);
}

/** Rotation, anisotropic scale and shift, in normalised coordinates. */
function randomTheta(random: () => number): number[] {
  const angle = (random() - 0.5) * 1.5;
  const [sx, sy] = [0.7 + 0.6 * random(), 0.7 + 0.6 * random()];
  const [tx, ty] = [(random() - 0.5) * 0.6, (random() - 0.5) * 0.6];
  return [sx * Math.cos(angle), -sy * Math.sin(angle), tx, sx * Math.sin(angle), sy * Math.cos(angle), ty];
}

/**
 * grid_sample(bilinear, zeros, align_corners=False) ∘ affine_grid(align_corners=False) written
 * out pixel by pixel in float64, independently of the implementation under test.
 */
function referenceSample(images: Float32Array, [n, h, w, c]: number[], thetas: number[][], [outH, outW]: number[]): Float64Array {
  const out = new Float64Array(n * outH * outW * c);
  const pixel = (b: number, y: number, x: number, ch: number) => (y < 0 || y >= h || x < 0 || x >= w ? 0 : images[((b * h + y) * w + x) * c + ch]);
  for (let b = 0; b < n; b++) {
    const [ta, tb, tc, td, te, tf_] = thetas[b];
    for (let i = 0; i < outH; i++) {
      for (let j = 0; j < outW; j++) {
        const xt = (2 * j + 1) / outW - 1;
        const yt = (2 * i + 1) / outH - 1;
        const px = ((ta * xt + tb * yt + tc + 1) * w - 1) / 2;
        const py = ((td * xt + te * yt + tf_ + 1) * h - 1) / 2;
        const x0 = Math.floor(px);
        const y0 = Math.floor(py);
        const fx = px - x0;
        const fy = py - y0;
        for (let ch = 0; ch < c; ch++) {
          out[((b * outH + i) * outW + j) * c + ch] =
            (1 - fy) * ((1 - fx) * pixel(b, y0, x0, ch) + fx * pixel(b, y0, x0 + 1, ch)) +
            fy * ((1 - fx) * pixel(b, y0 + 1, x0, ch) + fx * pixel(b, y0 + 1, x0 + 1, ch));
        }
      }
    }
  }
  return out;
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tolerance, `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

function sample(images: Float32Array, shape: [number, number, number, number], thetas: number[][], outSize?: [number, number]): Float32Array {
  return tf.tidy(() => affineSample(tf.tensor4d(images, shape), tf.tensor2d(thetas), outSize).dataSync() as Float32Array);
}

test('the identity theta returns the image unchanged, for a non-square image with several channels', () => {
  const shape: [number, number, number, number] = [2, 5, 7, 3];
  const images = randomArray(2 * 5 * 7 * 3, mulberry32(1));
  assertClose(sample(images, shape, [IDENTITY, IDENTITY]), images, 1e-6, 'output');
});

test('random rotations, scales and shifts sample exactly like PyTorch grid_sample with align_corners=False', () => {
  const random = mulberry32(2);
  const shape: [number, number, number, number] = [3, 6, 8, 2];
  const images = randomArray(3 * 6 * 8 * 2, random);
  const thetas = [randomTheta(random), randomTheta(random), randomTheta(random)];
  assertClose(sample(images, shape, thetas), referenceSample(images, shape, thetas, [6, 8]), 1e-5, 'same size');
  assertClose(sample(images, shape, thetas, [5, 11]), referenceSample(images, shape, thetas, [5, 11]), 1e-5, 'resized to 5×11');
});

test('a shift by 2/W samples one pixel to the right: the image moves one pixel left and the edge fills with zeros', () => {
  const [h, w] = [4, 6];
  const images = randomArray(h * w, mulberry32(3));
  const out = sample(images, [1, h, w, 1], [[1, 0, 2 / w, 0, 1, 0]]);
  const expected = images.map((_, k) => (k % w === w - 1 ? 0 : images[k + 1]));
  assertClose(out, expected, 1e-6, 'shifted');
});

test('theta [-1, 0, 0, 0, 1, 0] mirrors the image left to right', () => {
  const [h, w] = [5, 7];
  const images = randomArray(h * w, mulberry32(4));
  const out = sample(images, [1, h, w, 1], [[-1, 0, 0, 0, 1, 0]]);
  const expected = images.map((_, k) => images[k - (k % w) + (w - 1 - (k % w))]);
  assertClose(out, expected, 1e-6, 'mirrored');
});

test('gradients w.r.t. images and theta match central finite differences of the sampler', () => {
  const shape: [number, number, number, number] = [2, 6, 8, 2];
  const random = mulberry32(5);
  const images = randomArray(2 * 6 * 8 * 2, random);
  const outputWeights = tf.tensor4d(randomArray(2 * 6 * 8 * 2, random), shape);
  // Scale ≠ 1 plus a slight rotation, with shifts of half a pixel: every sample point lies at least
  // 0.25 px from the pixel grid, so a ±0.01 step in theta (≤ 0.04 px) crosses no kink of the
  // piecewise-bilinear interpolation and float32 central differences are accurate.
  const thetas = [
    [1.05, 0.02, 1 / 8, -0.03, 0.95, 1 / 6],
    [-1.05, -0.02, 1 / 8, 0.03, 0.95, 1 / 6],
  ];
  const loss = (x: tf.Tensor, theta: tf.Tensor) => tf.sum(tf.mul(affineSample(x as tf.Tensor4D, theta as tf.Tensor2D), outputWeights));
  const lossAt = (x: Float32Array, theta: number[][]) => tf.tidy(() => loss(tf.tensor4d(x, shape), tf.tensor2d(theta)).dataSync()[0]);
  const [dImages, dTheta] = tf.tidy(() =>
    tf.grads(loss)([tf.tensor4d(images, shape), tf.tensor2d(thetas)]).map((g) => g.dataSync() as Float32Array),
  );

  const relativeTolerance = 2e-2;
  const check = (analytic: number, numeric: number, what: string) =>
    assert.ok(Math.abs(analytic - numeric) <= relativeTolerance * Math.max(1, Math.abs(numeric)), `${what}: autodiff ${analytic}, finite difference ${numeric}`);

  // The output is linear in the images, so any step works; a large one keeps float32 rounding small.
  const imageStep = 0.5;
  for (let k = 0; k < images.length; k++) {
    const plus = images.slice();
    const minus = images.slice();
    plus[k] += imageStep;
    minus[k] -= imageStep;
    check(dImages[k], (lossAt(plus, thetas) - lossAt(minus, thetas)) / (2 * imageStep), `d/dimages[${k}]`);
  }
  const thetaStep = 1e-2;
  for (let b = 0; b < thetas.length; b++) {
    for (let k = 0; k < 6; k++) {
      const plus = thetas.map((t) => t.slice());
      const minus = thetas.map((t) => t.slice());
      plus[b][k] += thetaStep;
      minus[b][k] -= thetaStep;
      check(dTheta[b * 6 + k], (lossAt(images, plus) - lossAt(images, minus)) / (2 * thetaStep), `d/dtheta[${b}][${k}]`);
    }
  }
  assert.ok(dTheta.some((g) => Math.abs(g) > 0.1), 'the theta gradient is not trivially zero');
  outputWeights.dispose();
});

test('at the identity, where every sample point is a pixel centre, the theta gradient is the forward difference of grid_sample', () => {
  // 4×8: powers of two, so the normalised pixel centres and hence the sample points are exact.
  const [h, w] = [4, 8];
  const random = mulberry32(6);
  const image = randomArray(h * w, random);
  const outputWeights = randomArray(h * w, random);
  const dTheta = tf.tidy(() => {
    const weights = tf.tensor4d(outputWeights, [1, h, w, 1]);
    const loss = (theta: tf.Tensor) => tf.sum(tf.mul(affineSample(tf.tensor4d(image, [1, h, w, 1]), theta as tf.Tensor2D), weights));
    return tf.grad(loss)(tf.tensor2d([IDENTITY])).dataSync();
  });
  const at = (y: number, x: number) => (y < h && x < w ? image[y * w + x] : 0);
  const expected = new Float64Array(6);
  for (let i = 0; i < h; i++) {
    for (let j = 0; j < w; j++) {
      const basis = [(2 * j + 1) / w - 1, (2 * i + 1) / h - 1, 1]; // ∂(x_s, y_s)/∂(theta row)
      const dx = ((at(i, j + 1) - at(i, j)) * w) / 2; // ∂out/∂x_s: the pixel step is 2/W in normalised units
      const dy = ((at(i + 1, j) - at(i, j)) * h) / 2;
      for (let k = 0; k < 3; k++) {
        expected[k] += outputWeights[i * w + j] * dx * basis[k];
        expected[3 + k] += outputWeights[i * w + j] * dy * basis[k];
      }
    }
  }
  assertClose(dTheta, expected, 1e-4, 'd/dtheta');
});

function buildStn(): tfl.LayersModel {
  const input = tfl.input({ shape: [28, 28, 1], name: 'image' });
  const loc = tfl.layers.dense({ units: 6, kernelInitializer: 'zeros', name: 'loc' });
  const theta = loc.apply(tfl.layers.flatten({ name: 'loc_flatten' }).apply(input)) as tfl.SymbolicTensor;
  const transformed = new SpatialTransformer({ name: 'stn' }).apply([input, theta]) as tfl.SymbolicTensor;
  const flat = tfl.layers.flatten({ name: 'flatten' }).apply(transformed);
  const probs = tfl.layers
    .dense({ units: 10, activation: 'softmax', kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }), name: 'probs' })
    .apply(flat) as tfl.SymbolicTensor;
  // The usual STN start: a zero kernel and an identity bias, so training begins from "no transform".
  tf.tidy(() => loc.setWeights([tf.zeros([28 * 28, 6]), tf.tensor1d(IDENTITY)]));
  return tfl.model({ inputs: input, outputs: probs, name: 'stn_classifier' });
}

/**
 * One soft blob per image at a random place: smooth like a digit's strokes, so a small change of
 * theta changes the sampled image a little. (On white noise any sub-pixel warp scrambles the input,
 * and four steps of training made the loss go up about one run in fifteen.)
 */
function blobImages(n: number, seed: number): tf.Tensor4D {
  const random = mulberry32(seed);
  const pixels = new Float32Array(n * 28 * 28);
  for (let i = 0; i < n; i++) {
    const [cy, cx] = [6 + 16 * random(), 6 + 16 * random()];
    for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) pixels[i * 784 + y * 28 + x] = Math.exp(-((y - cy) ** 2 + (x - cx) ** 2) / 18);
  }
  return tf.tensor4d(pixels, [n, 28, 28, 1]);
}

const mnistLike = (n: number, seed: number) => tf.tensor4d(Float32Array.from(randomArray(n * 28 * 28, mulberry32(seed)), (v) => (v + 1) / 2), [n, 28, 28, 1]);

test('a model with the layer starts as the identity transform and survives a save/load round trip', async () => {
  const model = buildStn();
  const xs = mnistLike(4, 7);
  const stnOutput = tfl.model({ inputs: model.inputs, outputs: model.getLayer('stn').output });
  assertClose((stnOutput.predict(xs) as tf.Tensor).dataSync(), xs.dataSync(), 1e-5, 'transformer output at init');

  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler(async (a) => {
    artifacts = a;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  assert.match(JSON.stringify(artifacts!.modelTopology), /"class_name":"SpatialTransformer"/);
  const loaded = await tfl.loadLayersModel(tf.io.fromMemory(artifacts!));
  assert.ok(loaded.getLayer('stn') instanceof SpatialTransformer);
  assert.deepEqual((loaded.predict(xs) as tf.Tensor).dataSync(), (model.predict(xs) as tf.Tensor).dataSync());
  tf.dispose([xs]);
  model.dispose();
  loaded.dispose();
});

test('outputSize is kept in the saved config and sets the output shape', async () => {
  const images = tfl.input({ shape: [8, 6, 2] });
  const theta = tfl.input({ shape: [6] });
  const out = new SpatialTransformer({ outputSize: [5, 9], name: 'stn' }).apply([images, theta]) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: [images, theta], outputs: out });
  assert.deepEqual(model.getLayer('stn').getConfig().outputSize, [5, 9]);
  const loaded = await tfl.models.modelFromJSON({ modelTopology: model.toJSON(null, false) as tf.io.ModelJSON['modelTopology'] });
  assert.deepEqual(loaded.outputs[0].shape, [null, 5, 9, 2]);
  const random = mulberry32(8);
  const x = tf.tensor4d(randomArray(3 * 8 * 6 * 2, random), [3, 8, 6, 2]);
  const t = tf.tensor2d([randomTheta(random), randomTheta(random), randomTheta(random)]);
  assertClose((loaded.predict([x, t]) as tf.Tensor).dataSync(), affineSample(x, t, [5, 9]).dataSync(), 1e-6, 'loaded model output');
  tf.dispose([x, t]);
});

test('a model with the layer trains on wasm and its localisation kernel receives a gradient', async () => {
  const model = buildStn();
  model.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
  const xs = blobImages(16, 9);
  const ys = tf.oneHot(tf.tensor1d(Array.from({ length: 16 }, (_, i) => i % 10), 'int32'), 10);
  const kernel = model.getLayer('loc').trainableWeights[0].read() as tf.Variable;

  const { value, grads } = tf.variableGrads(() => tf.neg(tf.mean(tf.sum(tf.mul(ys, tf.log(model.apply(xs, { training: true }) as tf.Tensor)), 1))) as tf.Scalar, [kernel]);
  assert.ok(tf.sum(tf.abs(grads[kernel.name])).dataSync()[0] > 0, 'the localisation kernel gets a non-zero gradient');
  tf.dispose([value, grads[kernel.name]]);

  const losses: number[] = [];
  for (let step = 0; step < 4; step++) losses.push((await model.trainOnBatch(xs, ys)) as number);
  assert.ok(losses.every(Number.isFinite), `losses ${losses}`);
  assert.ok(losses[3] < losses[0], `losses ${losses} decrease on a batch trained four times`);
  assert.ok(tf.max(tf.abs(kernel)).dataSync()[0] > 0, 'the localisation kernel moved off zero');
  tf.dispose([xs, ys]);
  model.dispose();
});
