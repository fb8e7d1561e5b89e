import type { BackendName } from '../../config.ts';
import type { TrainPosition } from '../../ml/train.ts';
import type { BatchProgress, EpochStats } from '../../schemas/jobs.ts';
import type { JobData } from '../../queue/job-data.ts';
import type { StorePaths } from '../finetune-job.ts';
import type { TrainingOutcome } from '../train-job.ts';

/** The protocol between a job processor and its training process (over Node's IPC channel). */
export type ToTrainer =
  | {
      type: 'start';
      params: JobData;
      backend: BackendName;
      paths: StorePaths;
      /** Checkpoint every epoch into `dir`, under the job's id, and resume from the one there. */
      checkpoint?: { dir: string; jobId: string };
    }
  /** Stop after the current batch. */
  | { type: 'cancel' }
  /** Save a checkpoint after the current batch and stop, to be resumed later. */
  | { type: 'pause' };

export type FromTrainer =
  | { type: 'batch'; progress: BatchProgress }
  | { type: 'epoch'; stats: EpochStats }
  /** Training goes on from a checkpoint (sent before any batch). */
  | { type: 'resumed'; position: TrainPosition }
  /** A checkpoint was found but cannot be used; training starts afresh. */
  | { type: 'warning'; message: string }
  | { type: 'done'; outcome: TrainingOutcome }
  | { type: 'cancelled' }
  /** Stopped after saving a checkpoint, as asked by 'pause'. */
  | { type: 'paused'; position: TrainPosition }
  | { type: 'error'; message: string; stack?: string };
