import type { LayersModel } from '@tensorflow/tfjs-layers';
import { augmentBatch, isIdentity, type AugmentOptions } from './augment.ts';
import { gatherBatch } from './batch.ts';
import type { LabelledImages } from '../data/labelled-images.ts';
import { DataParallelTrainer, defaultReplicas, replicationObstacle } from './data-parallel.ts';
import { evaluate } from './evaluate.ts';
import { mulberry32, range, shuffleInPlace } from './random.ts';
import { makeSchedule, type ScheduleSpec } from './schedules.ts';
import type { BatchProgress, EpochStats } from '../schemas/jobs.ts';

export interface TrainOptions {
  epochs: number;
  batchSize: number;
  /** Fraction of the examples held out (after one seeded shuffle) to report validation metrics. */
  validationSplit: number;
  seed: number;
  /** Random affine transforms of every training batch, drawn from the seed. */
  augment?: AugmentOptions;
  /** Held-out examples from elsewhere to report per-epoch validation metrics on (instead of validationSplit). */
  validation?: { data: LabelledImages; indices: Uint32Array };
  /** The optimizer's learning rate at each step; the compiled one throughout when absent. */
  schedule?: ScheduleSpec;
  /**
   * Threads that share every batch (data-parallel, see data-parallel.ts); 1 trains on this thread
   * only. By default: one per core (two at most) for jobs of at least AUTO_PARALLEL_BATCHES batches
   * on the wasm backend, whose kernels use a single thread; otherwise 1.
   */
  replicas?: number;
  /** Where an interrupted training stands (from a checkpoint): training goes on from there. */
  resumeFrom?: TrainPosition;
}

/** Below this many batches a replica thread's start-up (~1 s) costs more than it saves. */
export const AUTO_PARALLEL_BATCHES = 200;

function replicaCount(model: LayersModel, opts: TrainOptions, batches: number): number {
  if (opts.replicas !== undefined) return Math.max(1, Math.floor(opts.replicas));
  if (batches * opts.epochs < AUTO_PARALLEL_BATCHES || replicationObstacle(model)) return 1;
  return defaultReplicas();
}

/** Adam and SGD read their learning rate at every step, so setting it before each step is a schedule. */
function setLearningRate(model: LayersModel, lr: number): void {
  (model.optimizer as unknown as { learningRate: number }).learningRate = lr;
}

/**
 * Where a training stands, besides the model's weights and optimizer state: with those, enough to
 * go on exactly as if it had never stopped (the shuffles are replayed from the seed).
 */
export interface TrainPosition {
  /** Epochs finished. */
  epochsDone: number;
  /** Batches finished of the epoch after those (0 at an epoch boundary). */
  batchesDone: number;
  /** Running sums of that unfinished epoch, for its loss and accuracy. */
  partial: { lossSum: number; accSum: number; seen: number };
  history: EpochStats[];
  /** Numbers drawn so far from the augmentation's random stream. */
  augmentDraws: number;
}

export interface TrainCallbacks {
  onBatchEnd?: (progress: BatchProgress) => void;
  onEpochEnd?: (stats: EpochStats) => void;
  /** Polled after every batch; returning true stops training by throwing TrainingCancelledError. */
  shouldStop?: () => boolean;
  /**
   * Called (and awaited) at the end of every epoch, before onEpochEnd, and when `shouldPause` asks
   * to stop: the moment to save the model's weights and optimizer state with this position.
   */
  onCheckpoint?: (position: TrainPosition) => Promise<void> | void;
  /** Polled after every batch; true → onCheckpoint at this batch, then TrainingPausedError. */
  shouldPause?: () => boolean;
}

export class TrainingCancelledError extends Error {
  constructor() {
    super('training cancelled');
  }
}

/** Training stopped at a batch boundary after a checkpoint, to be resumed (e.g. its worker is shutting down). */
export class TrainingPausedError extends Error {
  constructor(readonly position: TrainPosition) {
    super(`training paused after epoch ${position.epochsDone}, batch ${position.batchesDone}`);
  }
}

/** Counts the numbers drawn, so a resumed training can skip as many. */
function countingRandom(random: () => number, skip: number): { next: () => number; drawn: () => number } {
  for (let i = 0; i < skip; i++) random();
  let drawn = skip;
  return {
    next: () => {
      drawn++;
      return random();
    },
    drawn: () => drawn,
  };
}

function checkResumable(position: TrainPosition, epochs: number, batches: number): void {
  const { epochsDone, batchesDone, history } = position;
  const ok =
    Number.isInteger(epochsDone) && epochsDone >= 0 && epochsDone <= epochs &&
    Number.isInteger(batchesDone) && batchesDone >= 0 && batchesDone < batches &&
    (batchesDone === 0 || epochsDone < epochs) && history.length === epochsDone;
  if (!ok) throw new Error(`cannot resume training at epoch ${epochsDone} batch ${batchesDone} (${history.length} epochs of history) of ${epochs} epochs × ${batches} batches`);
}

export function splitIndices(count: number, validationSplit: number, seed: number): { train: Uint32Array; validation: Uint32Array } {
  const all = shuffleInPlace(range(count), mulberry32(seed));
  const valCount = Math.floor(count * validationSplit);
  return { train: all.subarray(valCount), validation: all.subarray(0, valCount) };
}

/**
 * Mini-batch training of a compiled model. Knows nothing of queues or HTTP: progress leaves through
 * callbacks, cancellation comes in through `shouldStop`. Checkpoints go out through `onCheckpoint`
 * (each epoch, and on `shouldPause`); `resumeFrom` carries on from one.
 */
export async function train(model: LayersModel, data: LabelledImages, opts: TrainOptions, callbacks: TrainCallbacks = {}): Promise<EpochStats[]> {
  const { train: trainIdx, validation } = splitIndices(data.count, opts.validationSplit, opts.seed);
  const random = mulberry32(opts.seed ^ 0x9e3779b9);
  const batches = Math.ceil(trainIdx.length / opts.batchSize);
  const resume = opts.resumeFrom;
  if (resume) checkResumable(resume, opts.epochs, batches);
  // Its own stream: augmenting does not change the shuffle.
  const augmentRandom = countingRandom(mulberry32(opts.seed ^ 0x85ebca6b), resume?.augmentDraws ?? 0);
  const augment = opts.augment && !isIdentity(opts.augment) ? opts.augment : undefined;
  const held = opts.validation ?? { data, indices: validation };
  const history: EpochStats[] = resume ? resume.history.map((h) => ({ ...h })) : [];
  const order = new Uint32Array(trainIdx);
  const position = (epochsDone: number, batchesDone: number, lossSum: number, accSum: number, seen: number): TrainPosition => ({
    epochsDone,
    batchesDone,
    partial: { lossSum, accSum, seen },
    history: history.map((h) => ({ ...h })),
    augmentDraws: augmentRandom.drawn(),
  });
  const rateAt = opts.schedule && makeSchedule(opts.schedule, opts.epochs, batches);
  const replicas = replicaCount(model, opts, batches);
  const parallel = replicas > 1 ? await DataParallelTrainer.start(model, replicas) : undefined;
  try {
    for (let epoch = 1; epoch <= opts.epochs; epoch++) {
      // Every epoch's shuffle is drawn, those already trained too, so a resumed run sees the same order.
      shuffleInPlace(order, random);
      if (resume && epoch <= resume.epochsDone) continue;
      const resuming = resume && epoch === resume.epochsDone + 1 ? resume : undefined;
      let lossSum = resuming?.partial.lossSum ?? 0;
      let accSum = resuming?.partial.accSum ?? 0;
      let seen = resuming?.partial.seen ?? 0;
      for (let b = resuming?.batchesDone ?? 0; b < batches; b++) {
        const idx = order.subarray(b * opts.batchSize, Math.min((b + 1) * opts.batchSize, order.length));
        if (rateAt) setLearningRate(model, rateAt((epoch - 1) * batches + b));
        const batch = gatherBatch(data, idx);
        const { ys } = batch;
        let xs = batch.xs;
        if (augment) {
          xs = augmentBatch(batch.xs, augment, augmentRandom.next);
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
        if (b + 1 < batches && callbacks.shouldPause?.()) {
          const here = position(epoch - 1, b + 1, lossSum, accSum, seen);
          await callbacks.onCheckpoint?.(here);
          throw new TrainingPausedError(here);
        }
      }
      const stats: EpochStats = { epoch, loss: lossSum / seen, accuracy: accSum / seen };
      if (held.indices.length > 0) {
        const val = evaluate(model, held.data, held.indices);
        stats.valLoss = val.loss;
        stats.valAccuracy = val.accuracy;
      }
      history.push(stats);
      await callbacks.onCheckpoint?.(position(epoch, 0, 0, 0, 0));
      callbacks.onEpochEnd?.(stats);
      // A pause asked for during the last batch: the epoch's checkpoint is the place to stop.
      if (epoch < opts.epochs && callbacks.shouldPause?.()) throw new TrainingPausedError(position(epoch, 0, 0, 0, 0));
    }
  } finally {
    await parallel?.close();
  }
  return history;
}
