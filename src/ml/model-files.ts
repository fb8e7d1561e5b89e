import type { io } from '@tensorflow/tfjs-core';

/**
 * The TensorFlow.js layers format on disk: `model.json` (topology + weights manifest) and one
 * binary weights file, named as `tfjs.io.browserFiles`/`tensorflowjs_converter` name theirs so the
 * same directory loads in a browser with `tf.loadLayersModel(url + '/model.json')`.
 */
export const MODEL_JSON = 'model.json';
export const WEIGHTS_FILE = 'group1-shard1of1.bin';
/** Beside them, the proven ONNX copy serving runs (see onnx/export-for-serving.ts). */
export const ONNX_FILE = 'model.onnx';

export interface ModelFiles {
  modelJson: io.ModelJSON;
  weights: Uint8Array;
  /** model.onnx, when the version has a proven ONNX copy (what serving runs on ONNX Runtime). */
  onnx?: Uint8Array;
}

export function concatWeightData(data: io.WeightData): Uint8Array {
  const parts = Array.isArray(data) ? data : [data];
  const total = parts.reduce((n, p) => n + p.byteLength, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const p of parts) {
    out.set(new Uint8Array(p), offset);
    offset += p.byteLength;
  }
  return out;
}

/** Artifacts as a save handler receives them → the files we write. */
export function artifactsToFiles(artifacts: io.ModelArtifacts): ModelFiles {
  if (!artifacts.modelTopology || !artifacts.weightSpecs || !artifacts.weightData) {
    throw new Error('model artifacts lack topology or weights');
  }
  const modelJson: io.ModelJSON = {
    modelTopology: artifacts.modelTopology,
    format: artifacts.format ?? 'layers-model',
    generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy ?? null,
    weightsManifest: [{ paths: [WEIGHTS_FILE], weights: artifacts.weightSpecs }],
  };
  if (artifacts.trainingConfig) modelJson.trainingConfig = artifacts.trainingConfig;
  return { modelJson, weights: concatWeightData(artifacts.weightData) };
}

/** The files read back → artifacts for `tf.io.fromMemory`. */
export function filesToArtifacts(files: ModelFiles): io.ModelArtifacts {
  const { modelJson, weights } = files;
  const weightSpecs = modelJson.weightsManifest.flatMap((group) => group.weights);
  return {
    modelTopology: modelJson.modelTopology,
    format: modelJson.format,
    generatedBy: modelJson.generatedBy,
    convertedBy: modelJson.convertedBy,
    trainingConfig: modelJson.trainingConfig,
    weightSpecs,
    weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength) as ArrayBuffer,
  };
}

/**
 * How many layers a saved model has, counted as `model.layers` counts them once it is loaded (a
 * Sequential model's input is not a layer there; a functional model's is): what a numeric `freeze`
 * is checked against before a fine-tune job is queued.
 */
export function layerCount(modelJson: io.ModelJSON): number {
  const topology = modelJson.modelTopology as { class_name?: string; config?: { layers?: { class_name?: string }[] } | { class_name?: string }[] } | undefined;
  const config = topology?.config;
  const layers = Array.isArray(config) ? config : (config?.layers ?? []);
  return topology?.class_name === 'Sequential' ? layers.filter((l) => l.class_name !== 'InputLayer').length : layers.length;
}
