import type { BackendName } from '../../config.ts';
import type { CostBudget } from '../../ml/import-model.ts';
import type { TrainPosition } from '../../ml/train.ts';
import type { JobData, ModelJobData } from '../../queue/job-data.ts';
import type { Evaluation } from '../../schemas/evaluation.ts';
import type { BatchProgress, EpochStats } from '../../schemas/jobs.ts';
import type { OnnxExport } from '../../schemas/models.ts';
import type { StorePaths } from '../finetune-job.ts';
import type { TrainingOutcome } from '../train-job.ts';

/** Not a queued job: the ONNX copy of a version written before versions had one (the workers' start-up backfill). */
export interface ExportOnnxParams {
  type: 'export-onnx';
  version: number;
}

/** The protocol between a job processor and the sandboxed child process running its job (over Node's IPC channel). */
export type ToSandbox =
  | {
      type: 'start';
      params: JobData | ModelJobData | ExportOnnxParams;
      backend: BackendName;
      paths: StorePaths;
      /** Checkpoint every epoch into `dir`, under the job's id, and resume from the one there (training). */
      checkpoint?: { dir: string; jobId: string };
      /** Where an import job's upload is staged, and what one image may cost the model (import). */
      upload?: { dir: string; jobId: string; budget: CostBudget };
      /** How many MNIST test images score the new version (MNIST_TEST_LIMIT). */
      testLimit?: number;
      /** A fine-tune on corrections: them (read from Redis by the worker; base64 pixels and labels) and the gate's allowance. */
      feedback?: { images: string; labels: string; count: number; maxMnistDrop: number };
    }
  /** Stop after the current batch. */
  | { type: 'cancel' }
  /** Save a checkpoint after the current batch and stop, to be resumed later. */
  | { type: 'pause' };

export type FromSandbox =
  | { type: 'batch'; progress: BatchProgress }
  | { type: 'epoch'; stats: EpochStats }
  /** Training goes on from a checkpoint (sent before any batch). */
  | { type: 'resumed'; position: TrainPosition }
  /** A checkpoint was found but cannot be used; training starts afresh. */
  | { type: 'warning'; message: string }
  /** A version's files are ready (train, fine-tune, import). */
  | { type: 'done'; outcome: TrainingOutcome }
  | { type: 'evaluated'; evaluation: Evaluation }
  | { type: 'exported'; onnx?: Uint8Array; record: OnnxExport }
  | { type: 'cancelled' }
  /** Stopped after saving a checkpoint, as asked by 'pause'. */
  | { type: 'paused'; position: TrainPosition }
  | { type: 'error'; message: string; stack?: string };

/** What a sandboxed job gives back: the files of a new version, or an evaluation. */
export type SandboxResult =
  | { kind: 'version'; outcome: TrainingOutcome }
  | { kind: 'evaluation'; evaluation: Evaluation }
  | { kind: 'onnx'; onnx?: Uint8Array; record: OnnxExport };
