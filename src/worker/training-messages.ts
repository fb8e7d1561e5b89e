import type { BatchProgress, EpochStats } from '../ml/train.ts';
import type { TrainJobData } from '../queue/job-schemas.ts';
import type { TrainingOutcome } from './run-training.ts';

/** The protocol between a job processor and its training process (over Node's IPC channel). */
export type ToTrainer =
  | { type: 'start'; params: TrainJobData; backend: 'tensorflow' | 'wasm' | 'cpu' }
  /** Stop after the current batch. */
  | { type: 'cancel' };

export type FromTrainer =
  | { type: 'batch'; progress: BatchProgress }
  | { type: 'epoch'; stats: EpochStats }
  | { type: 'done'; outcome: TrainingOutcome }
  | { type: 'cancelled' }
  | { type: 'error'; message: string; stack?: string };
