import type { BatchProgress, EpochStats } from '../ml/train.ts';
import type { TrainJobData } from '../queue/job-schemas.ts';
import type { TrainingOutcome } from './run-training.ts';

/** The protocol between a job processor and its training thread. */
export interface TrainingThreadInput {
  params: TrainJobData;
  backend: 'tensorflow' | 'wasm' | 'cpu';
  /** Int32Array[0] set to 1 asks the thread to stop after the current batch; shared memory, so it is
   * seen even while the thread never yields to its event loop. */
  cancelFlag: SharedArrayBuffer;
}

export type TrainingThreadMessage =
  | { type: 'batch'; progress: BatchProgress }
  | { type: 'epoch'; stats: EpochStats }
  | { type: 'done'; outcome: TrainingOutcome }
  | { type: 'cancelled' }
  | { type: 'error'; message: string; stack?: string };
