import { loadMnist } from '../../src/data/mnist.ts';
import { initBackend } from '../../src/ml/backend.ts';
import type { TrainJobData } from '../../src/queue/job-schemas.ts';
import type { ModelStore } from '../../src/store/model-store.ts';
import { runTraining } from '../../src/worker/run-training.ts';
import { encodeGrayPng } from './png.ts';

export const SMALL_TRAINING: TrainJobData = {
  type: 'train',
  architecture: 'cnn',
  epochs: 1,
  batchSize: 32,
  learningRate: 0.002,
  learningRateSchedule: 'constant',
  limit: 2000,
  validationSplit: 0,
  seed: 7,
};

/** Trains a small but real model in-process and writes it as the next version. */
export async function writeTrainedVersion(store: ModelStore, params: Partial<TrainJobData> = {}): Promise<number> {
  await initBackend('wasm');
  const full = { ...SMALL_TRAINING, ...params };
  const outcome = await runTraining(full);
  return store.writeVersion(outcome.files, {
    jobId: null,
    createdAt: new Date().toISOString(),
    architecture: full.architecture,
    params: full,
    dataset: outcome.dataset,
    history: outcome.history,
    metrics: outcome.metrics,
    backend: outcome.backend,
    durationMs: outcome.durationMs,
  });
}

/** MNIST test digits as PNGs with their labels (the first `count` of the test set, from `offset`). */
export async function mnistTestPngs(count: number, offset = 0): Promise<{ png: Buffer; label: number }[]> {
  const testSet = await loadMnist('test');
  return Array.from({ length: count }, (_, i) => {
    const k = offset + i;
    return { png: encodeGrayPng(testSet.images.subarray(k * 784, (k + 1) * 784)), label: testSet.labels[k] };
  });
}
