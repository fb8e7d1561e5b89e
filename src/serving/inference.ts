import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { InferenceEnginePreference } from '../config.ts';
import { loadModel } from '../ml/load-model.ts';
import { imagesToTensor } from '../ml/batch.ts';
import { filesToArtifacts, type ModelFiles } from '../ml/model-files.ts';
import { OnnxModel } from '../ml/onnx/onnx-session.ts';
import { DIGIT_PIXELS, DIGIT_SHAPE, NUM_CLASSES } from '../schemas/digit.ts';
import type { InferenceEngineName } from '../schemas/inference-engine.ts';
import { ModelLoadError, type InferenceEngine, type ModelCall, type ModelHandle } from './engine.ts';

/** A version ready to answer: whichever engine runs it, the same call. */
export interface ServableModel {
  readonly engine: InferenceEngineName;
  /** Why a version that has a model.onnx runs on TF.js (the runtime did not load, or the session failed). */
  readonly fallback?: string;
  /** `count` images of 784 bytes → count × 10 probabilities. */
  run(pixels: Uint8Array, count: number): Promise<Float32Array>;
  /** Settles once the engine has let the model go (an ONNX Runtime session is released asynchronously). */
  dispose(): Promise<void>;
}

/**
 * Builds, checks and warms up a version from its files; shared by the local engine and the
 * inference threads. Under `auto` a version with a model.onnx runs on ONNX Runtime with one
 * intra-op thread (the inference threads are the parallelism); TF.js is the path for the rest, and
 * the fallback when the native library cannot load here.
 */
export async function loadServableModel(version: number, files: ModelFiles, preference: InferenceEnginePreference = 'auto'): Promise<ServableModel> {
  let fallback: string | undefined;
  if (preference === 'auto' && files.onnx) {
    try {
      return await warmedUp(version, await onnxServable(files.onnx));
    } catch (err) {
      if (err instanceof ModelLoadError) throw err;
      fallback = `model.onnx does not run here: ${(err as Error).message}`;
    }
  }
  const model = await tfjsServable(version, files, fallback);
  return warmedUp(version, model);
}

async function onnxServable(bytes: Uint8Array): Promise<ServableModel> {
  const session = await OnnxModel.load(bytes, { threads: 1 });
  return {
    engine: 'onnxruntime',
    run: (pixels, count) => session.run(pixels, count), // which refuses a short batch itself
    dispose: () => session.dispose(),
  };
}

async function tfjsServable(version: number, files: ModelFiles, fallback: string | undefined): Promise<ServableModel> {
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
  return {
    engine: 'tfjs',
    ...(fallback && { fallback }),
    run: async (pixels, count) => runModel(model, pixels, count),
    dispose: async () => {
      model.dispose();
    },
  };
}

/**
 * Warm-up: the first call compiles kernels and allocates; pay for it before taking traffic, and
 * find out now (not on a user's request) if the weights cannot run.
 */
async function warmedUp(version: number, model: ServableModel): Promise<ServableModel> {
  try {
    const probe = await model.run(new Uint8Array(DIGIT_PIXELS), 1);
    if (probe.length !== NUM_CLASSES || !probe.every(Number.isFinite)) throw new Error(`the warm-up inference gave ${Array.from(probe).join(', ')}`);
  } catch (err) {
    void model.dispose();
    throw new ModelLoadError(`version ${version} fails its warm-up inference on ${model.engine}: ${(err as Error).message}`);
  }
  return model;
}

/** model.run, timed: where predict latency goes (model or queue) shows in /metrics. */
export async function timedRun(model: ServableModel, pixels: Uint8Array, count: number): Promise<ModelCall> {
  const started = performance.now();
  const probabilities = await model.run(pixels, count);
  return { probabilities, seconds: (performance.now() - started) / 1000 };
}

/** Runs a loaded TF.js model on a batch; synchronous because every backend we use computes eagerly. */
export function runModel(model: LayersModel, pixels: Uint8Array, count: number): Float32Array {
  if (pixels.length !== count * DIGIT_PIXELS) throw new RangeError(`${count} images need ${count * DIGIT_PIXELS} bytes, got ${pixels.length}`);
  // The tidy returns the tensor, not its data: tidy walks whatever it returns for tensors to keep,
  // and a typed array of count × 10 numbers cost a Set insertion per number and kept tfjs-core's
  // walker deoptimizing and recompiling on the inference thread. One call for the whole batch
  // (predict would otherwise slice it into 32s and concatenate).
  const output = tf.tidy(() => model.predict(imagesToTensor(pixels, count), { batchSize: Math.max(1, count) }) as tf.Tensor);
  try {
    return output.dataSync() as Float32Array;
  } finally {
    output.dispose();
  }
}

/** Inference on the calling thread (the API's event loop); the simplest engine and the baseline. */
export class LocalEngine implements InferenceEngine {
  readonly parallelism = 1;
  private readonly models = new Map<number, ServableModel>();
  private nextId = 1;

  constructor(private readonly preference: InferenceEnginePreference = 'auto') {}

  async load(version: number, files: ModelFiles): Promise<ModelHandle> {
    const model = await loadServableModel(version, files, this.preference);
    const handle = { id: this.nextId++, version, engine: model.engine };
    this.models.set(handle.id, model);
    return handle;
  }

  async predict(handle: ModelHandle, pixels: Uint8Array, count: number): Promise<ModelCall> {
    const model = this.models.get(handle.id);
    if (!model) throw new Error(`model ${handle.id} (version ${handle.version}) is not loaded`);
    return timedRun(model, pixels, count);
  }

  unload(handle: ModelHandle): void {
    void this.models.get(handle.id)?.dispose();
    this.models.delete(handle.id);
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.models.values()].map((m) => m.dispose()));
    this.models.clear();
  }
}
