import { loadMnist } from '../../src/data/mnist.ts';
import { initBackend } from '../../src/ml/backend.ts';
import { parseJobData, type FinetuneJobData, type TrainJobData } from '../../src/queue/job-data.ts';
import type { ModelStore } from '../../src/store/model-store.ts';
import { runTrainJob } from '../../src/worker/train-job.ts';
import { encodeGrayPng } from './png.ts';

/** 2,000 images × 1 epoch of the default recipe: ~93 % in a few seconds. */
export const SMALL_TRAINING = trainJob({ limit: 2000, epochs: 1, seed: 7 });

/** A train job's data as the queue carries it: the request's defaults filled in. */
export function trainJob(request: Omit<Partial<TrainJobData>, 'type'> & { seed: number }): TrainJobData {
  return parseJobData({ type: 'train', ...request }) as TrainJobData;
}

/** Trains a small but real model in-process and writes it as the next version. */
export async function writeTrainedVersion(store: ModelStore, params: Partial<TrainJobData> = {}): Promise<number> {
  await initBackend('wasm');
  const full = { ...SMALL_TRAINING, ...params };
  const outcome = await runTrainJob(full);
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

/** A fine-tune job's data as the queue carries it (`baseModel` resolved to a number). */
export function finetuneJob(request: Omit<Partial<FinetuneJobData>, 'type'> & { baseModel: number; dataset: string; seed: number }): FinetuneJobData {
  return parseJobData({ type: 'finetune', ...request }) as FinetuneJobData;
}
