import { createModel } from '../../src/ml/architectures.ts';
import { initBackend } from '../../src/ml/backend.ts';
import { serializeModel } from '../../src/ml/serialize.ts';
import type { ModelFiles } from '../../src/ml/model-files.ts';
import type { ModelStore } from '../../src/store/model-store.ts';
import { exportOnnx } from '../../src/ml/onnx/export-onnx.ts';

/**
 * The files of an untrained CNN with seeded random weights: instant to make, a real TensorFlow.js
 * model, and different seeds give different outputs — all that tests of serving (switching,
 * pinning, batching) need. Tests of accuracy train a model instead (helpers/model.ts). With its
 * model.onnx, as a worker writes a version, so serving runs it on ONNX Runtime; `onnx: false` for
 * a version from before ONNX (served by TF.js).
 */
export async function untrainedModelFiles(seed: number, { onnx = true } = {}): Promise<ModelFiles> {
  await initBackend('wasm');
  const model = createModel('cnn', { learningRate: 0.001, seed });
  try {
    return { ...(await serializeModel(model)), ...(onnx && { onnx: exportOnnx(model) }) };
  } finally {
    model.dispose();
  }
}

export function writeModelFiles(store: ModelStore, files: ModelFiles, seed = 0, testAccuracy = 0.1): Promise<number> {
  return store.writeVersion(files, {
    jobId: null,
    createdAt: new Date().toISOString(),
    architecture: 'cnn',
    params: { seed, untrained: true },
    dataset: { name: 'none', trainCount: 0, testCount: 0, sha256: '0'.repeat(64) },
    history: [],
    metrics: { testAccuracy, testLoss: 2.3, confusionMatrix: [] },
    backend: 'wasm',
    durationMs: 0,
  });
}

export async function writeUntrainedVersion(store: ModelStore, seed: number): Promise<number> {
  return writeModelFiles(store, await untrainedModelFiles(seed), seed);
}
