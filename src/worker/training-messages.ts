import type { BatchProgress, EpochStats } from '../ml/train.ts';
import type { JobData } from '../queue/job-schemas.ts';
import type { StorePaths } from './run-finetune.ts';
import type { TrainingOutcome } from './run-training.ts';

/** The protocol between a job processor and its training process (over Node's IPC channel). */
export type ToTrainer =
  | { type: 'start'; params: JobData; backend: 'tensorflow' | 'wasm' | 'cpu'; paths: StorePaths }
  /** Stop after the current batch. */
  | { type: 'cancel' };

export type FromTrainer =
  | { type: 'batch'; progress: BatchProgress }
  | { type: 'epoch'; stats: EpochStats }
  | { type: 'done'; outcome: TrainingOutcome }
  | { type: 'cancelled' }
  | { type: 'error'; message: string; stack?: string };
