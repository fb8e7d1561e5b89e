import type { ModelFiles } from '../ml/model-files.ts';
import type { InferenceEngineName } from '../schemas/inference-engine.ts';

/** A loaded model inside an engine; opaque to callers. */
export interface ModelHandle {
  readonly id: number;
  readonly version: number;
  /** What runs it: ONNX Runtime (the version's model.onnx) or TensorFlow.js (its layers files). */
  readonly engine: InferenceEngineName;
}

/**
 * Where inference runs: on this thread (LocalEngine) or on worker threads (InferencePool). The
 * registry decides which version answers; the engine only loads, runs and unloads models.
 */
export interface InferenceEngine {
  /** Loads a version and runs one inference on it (the warm-up), or throws why it cannot serve. */
  load(version: number, files: ModelFiles): Promise<ModelHandle>;
  /** `count` images of 784 bytes (light ink on black) → count × 10 probabilities. */
  predict(handle: ModelHandle, pixels: Uint8Array, count: number): Promise<ModelCall>;
  unload(handle: ModelHandle): void;
  /** How many predict calls can usefully run at once (one per thread). */
  readonly parallelism: number;
  close(): Promise<void>;
}

/** What one model call gave, and how long the model computed (not counting any wait for a thread). */
export interface ModelCall {
  probabilities: Float32Array;
  seconds: number;
}

export class ModelLoadError extends Error {
  override readonly name = 'ModelLoadError';
}
