import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { augmentBatch, isIdentity, type AugmentOptions } from './augment.ts';
import { gatherBatch, type Examples } from './batch.ts';
import { DataParallelTrainer, defaultReplicas, replicationObstacle } from './data-parallel.ts';
import { evaluate } from './evaluate.ts';
import { mulberry32, range, shuffleInPlace } from './random.ts';

export interface TrainOptions {
  epochs: number;
  batchSize: number;
  /** Fraction of the examples held out (after one seeded shuffle) to report validation metrics. */
  validationSplit: number;
  seed: number;
  /** Random affine transforms of every training batch, drawn from the seed. */
  augment?: AugmentOptions;
  /** Held-out examples from elsewhere to report per-epoch validation metrics on (instead of validationSplit). */
  validation?: { data: Examples; indices: Uint32Array };
  /** The optimizer's learning rate for each (1-based) epoch; the compiled one when absent. */
  learningRateAt?: (epoch: number) => number;
  /**
   * Threads that share every batch (data-parallel, see data-parallel.ts); 1 trains on this thread
   * only. By default: one per core (two at most) for jobs of at least AUTO_PARALLEL_BATCHES batches
   * on the wasm backend, whose kernels use a single thread; otherwise 1.
   */
  replicas?: number;
}

/** Below this many batches a replica thread's start-up (~1 s) costs more than it saves. */
export const AUTO_PARALLEL_BATCHES = 200;

function replicaCount(model: LayersModel, opts: TrainOptions, batches: number): number {
  if (opts.replicas !== undefined) return Math.max(1, Math.floor(opts.replicas));
  if (batches * opts.epochs < AUTO_PARALLEL_BATCHES || replicationObstacle(model)) return 1;
  return defaultReplicas();
}

/** Adam and SGD read their learning rate at every step, so changing it between epochs is a schedule. */
function setLearningRate(model: LayersModel, lr: number): void {
  (model.optimizer as unknown as { learningRate: number }).learningRate = lr;
}

export interface BatchProgress {
  epoch: number; // 1-based
  epochs: number;
  batch: number; // 1-based, within the epoch
  batches: number;
  /** Running means over the epoch so far. */
  loss: number;
  accuracy: number;
}

export interface EpochStats {
  epoch: number;
  loss: number;
  accuracy: number;
  valLoss?: number;
  valAccuracy?: number;
}

export interface TrainCallbacks {
  onBatchEnd?: (progress: BatchProgress) => void;
  onEpochEnd?: (stats: EpochStats) => void;
  /** Polled after every batch; returning true stops training by throwing TrainingCancelledError. */
  shouldStop?: () => boolean;
}

export class TrainingCancelledError extends Error {
  constructor() {
    super('training cancelled');
  }
}

export function splitIndices(count: number, validationSplit: number, seed: number): { train: Uint32Array; validation: Uint32Array } {
  const all = shuffleInPlace(range(count), mulberry32(seed));
  const valCount = Math.floor(count * validationSplit);
  return { train: all.subarray(valCount), validation: all.subarray(0, valCount) };
}

/**
 * Mini-batch training of a compiled model. Knows nothing of queues or HTTP: progress leaves through
 * callbacks, cancellation comes in through `shouldStop`.
 */
export async function train(model: LayersModel, data: Examples, opts: TrainOptions, callbacks: TrainCallbacks = {}): Promise<EpochStats[]> {
  const { train: trainIdx, validation } = splitIndices(data.count, opts.validationSplit, opts.seed);
  const random = mulberry32(opts.seed ^ 0x9e3779b9);
  const augmentRandom = mulberry32(opts.seed ^ 0x85ebca6b); // its own stream: augmenting does not change the shuffle
  const augment = opts.augment && !isIdentity(opts.augment) ? opts.augment : undefined;
  const held = opts.validation ?? { data, indices: validation };
  const batches = Math.ceil(trainIdx.length / opts.batchSize);
  const history: EpochStats[] = [];
  const order = new Uint32Array(trainIdx);
  const replicas = replicaCount(model, opts, batches);
  const parallel = replicas > 1 ? await DataParallelTrainer.start(model, replicas) : undefined;
  try {
    for (let epoch = 1; epoch <= opts.epochs; epoch++) {
      if (opts.learningRateAt) setLearningRate(model, opts.learningRateAt(epoch));
      shuffleInPlace(order, random);
      let lossSum = 0;
      let accSum = 0;
      let seen = 0;
      for (let b = 0; b < batches; b++) {
        const idx = order.subarray(b * opts.batchSize, Math.min((b + 1) * opts.batchSize, order.length));
        const batch = gatherBatch(data, idx);
        const { ys } = batch;
        let xs = batch.xs;
        if (augment) {
          xs = augmentBatch(batch.xs, augment, augmentRandom);
          batch.xs.dispose();
        }
        let result: number | number[];
        try {
          result = parallel ? await parallel.trainOnBatch(xs, ys) : await model.trainOnBatch(xs, ys);
        } finally {
          xs.dispose();
          ys.dispose();
        }
        const [loss, accuracy] = result as number[];
        lossSum += loss * idx.length;
        accSum += accuracy * idx.length;
        seen += idx.length;
        callbacks.onBatchEnd?.({ epoch, epochs: opts.epochs, batch: b + 1, batches, loss: lossSum / seen, accuracy: accSum / seen });
        // One turn of the event loop per batch (~µs): lets progress messages go out and a cancel come in.
        await new Promise((resolve) => setImmediate(resolve));
        if (callbacks.shouldStop?.()) throw new TrainingCancelledError();
      }
      const stats: EpochStats = { epoch, loss: lossSum / seen, accuracy: accSum / seen };
      if (held.indices.length > 0) {
        const val = evaluate(model, held.data, held.indices);
        stats.valLoss = val.loss;
        stats.valAccuracy = val.accuracy;
      }
      history.push(stats);
      callbacks.onEpochEnd?.(stats);
    }
  } finally {
    await parallel?.close();
  }
  return history;
}
