import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { loadModel } from '../ml/load-model.ts';
import { imagesToTensor } from '../ml/batch.ts';
import { filesToArtifacts, type ModelFiles } from '../ml/model-files.ts';
import { DIGIT_PIXELS, DIGIT_SHAPE, NUM_CLASSES } from '../schemas/digit.ts';
import { ModelLoadError, type InferenceEngine, type ModelCall, type ModelHandle } from './engine.ts';

/** Builds, checks and warms up a model from its files; shared by the local engine and the workers. */
export async function loadServableModel(version: number, files: ModelFiles): Promise<LayersModel> {
  let model: LayersModel;
  try {
    model = await loadModel(filesToArtifacts(files));
  } catch (err) {
    throw new ModelLoadError(`version ${version} does not load: ${(err as Error).message}`);
  }
  const shape = model.inputs[0].shape;
  const outputs = model.outputs[0].shape;
  if (shape.slice(1).join() !== DIGIT_SHAPE.join() || outputs.length !== 2 || outputs[1] !== NUM_CLASSES) {
    model.dispose();
    throw new ModelLoadError(`version ${version} has input ${JSON.stringify(shape)} and output ${JSON.stringify(outputs)}, not a 28×28×1 → 10 classifier`);
  }
  try {
    // Warm-up: the first call compiles kernels and allocates; pay for it before taking traffic,
    // and find out now (not on a user's request) if the weights cannot run.
    const probe = outputData(model, () => tf.zeros([1, ...DIGIT_SHAPE]), 1);
    if (probe.length !== NUM_CLASSES || !probe.every(Number.isFinite)) throw new Error(`the warm-up inference gave ${Array.from(probe).join(', ')}`);
  } catch (err) {
    model.dispose();
    throw new ModelLoadError(`version ${version} fails its warm-up inference: ${(err as Error).message}`);
  }
  return model;
}

/** runModel, timed: where predict latency goes (model or queue) shows in /metrics. */
export function timedRunModel(model: LayersModel, pixels: Uint8Array, count: number): ModelCall {
  const started = performance.now();
  const probabilities = runModel(model, pixels, count);
  return { probabilities, seconds: (performance.now() - started) / 1000 };
}

/** Runs a loaded model on a batch; synchronous because every backend we use computes eagerly. */
export function runModel(model: LayersModel, pixels: Uint8Array, count: number): Float32Array {
  if (pixels.length !== count * DIGIT_PIXELS) throw new RangeError(`${count} images need ${count * DIGIT_PIXELS} bytes, got ${pixels.length}`);
  return outputData(model, () => imagesToTensor(pixels, count), count);
}

/** The model's output for the input `makeInput` builds, as numbers, leaving no tensor behind. */
function outputData(model: LayersModel, makeInput: () => tf.Tensor, count: number): Float32Array {
  // The tidy returns the tensor, not its data: tidy walks whatever it returns for tensors to keep,
  // and a typed array of count × 10 numbers cost a Set insertion per number and kept tfjs-core's
  // walker deoptimizing and recompiling on the inference thread. One call for the whole batch
  // (predict would otherwise slice it into 32s and concatenate).
  const output = tf.tidy(() => model.predict(makeInput(), { batchSize: Math.max(1, count) }) as tf.Tensor);
  try {
    return output.dataSync() as Float32Array;
  } finally {
    output.dispose();
  }
}

/** Inference on the calling thread (the API's event loop); the simplest engine and the baseline. */
export class LocalEngine implements InferenceEngine {
  readonly parallelism = 1;
  private readonly models = new Map<number, LayersModel>();
  private nextId = 1;

  async load(version: number, files: ModelFiles): Promise<ModelHandle> {
    const model = await loadServableModel(version, files);
    const handle = { id: this.nextId++, version };
    this.models.set(handle.id, model);
    return handle;
  }

  async predict(handle: ModelHandle, pixels: Uint8Array, count: number): Promise<ModelCall> {
    const model = this.models.get(handle.id);
    if (!model) throw new Error(`model ${handle.id} (version ${handle.version}) is not loaded`);
    return timedRunModel(model, pixels, count);
  }

  unload(handle: ModelHandle): void {
    this.models.get(handle.id)?.dispose();
    this.models.delete(handle.id);
  }

  async close(): Promise<void> {
    for (const model of this.models.values()) model.dispose();
    this.models.clear();
  }
}
