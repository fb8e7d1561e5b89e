import { Queue, Worker, type ConnectionOptions, type JobsOptions, type Processor, type WorkerOptions } from 'bullmq';
import type { JobType } from '../schemas/jobs.ts';
import type { JobData, JobMeta, ModelJobData, ModelJobResult, TrainJobResult } from './job-data.ts';

/** Train and fine-tune jobs, named by their type: long, one at a time per worker. */
export const TRAINING_QUEUE = 'training';
/** Import and evaluate jobs: short, on a queue of their own so they never wait behind a training run. */
export const MODEL_JOBS_QUEUE = 'models';

/** What a training job carries: its parameters, plus the id of the HTTP request that queued it. */
export type TrainingJobPayload = JobData & JobMeta;
export type TrainingQueue = Queue<TrainingJobPayload, TrainJobResult, JobType>;
export type TrainingProcessor = Processor<TrainingJobPayload, TrainJobResult, JobType>;

export type ModelJobPayload = ModelJobData & JobMeta;
export type ModelJobsQueue = Queue<ModelJobPayload, ModelJobResult, JobType>;
export type ModelJobProcessor = Processor<ModelJobPayload, ModelJobResult, JobType>;

export function trainingQueue(connection: ConnectionOptions, prefix: string, defaultJobOptions?: JobsOptions): TrainingQueue {
  return new Queue<TrainingJobPayload, TrainJobResult, JobType>(TRAINING_QUEUE, { connection, prefix, defaultJobOptions });
}

export function trainingWorker(processor: TrainingProcessor, opts: WorkerOptions): Worker<TrainingJobPayload, TrainJobResult, JobType> {
  return new Worker<TrainingJobPayload, TrainJobResult, JobType>(TRAINING_QUEUE, processor, opts);
}

export function modelJobsQueue(connection: ConnectionOptions, prefix: string, defaultJobOptions?: JobsOptions): ModelJobsQueue {
  return new Queue<ModelJobPayload, ModelJobResult, JobType>(MODEL_JOBS_QUEUE, { connection, prefix, defaultJobOptions });
}

export function modelJobsWorker(processor: ModelJobProcessor, opts: WorkerOptions): Worker<ModelJobPayload, ModelJobResult, JobType> {
  return new Worker<ModelJobPayload, ModelJobResult, JobType>(MODEL_JOBS_QUEUE, processor, opts);
}
