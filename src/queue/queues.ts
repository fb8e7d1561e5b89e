import { Queue, Worker, type ConnectionOptions, type JobsOptions, type Processor, type WorkerOptions } from 'bullmq';
import type { JobType } from '../schemas/jobs.ts';
import type { JobData, JobMeta, TrainJobResult } from './job-data.ts';

/** The one BullMQ queue: train and fine-tune jobs, named by their type. */
export const TRAINING_QUEUE = 'training';

/** What a training job carries: its parameters, plus the id of the HTTP request that queued it. */
export type TrainingJobPayload = JobData & JobMeta;
export type TrainingQueue = Queue<TrainingJobPayload, TrainJobResult, JobType>;
export type TrainingProcessor = Processor<TrainingJobPayload, TrainJobResult, JobType>;

export function trainingQueue(connection: ConnectionOptions, prefix: string, defaultJobOptions?: JobsOptions): TrainingQueue {
  return new Queue<TrainingJobPayload, TrainJobResult, JobType>(TRAINING_QUEUE, { connection, prefix, defaultJobOptions });
}

export function trainingWorker(processor: TrainingProcessor, opts: WorkerOptions): Worker<TrainingJobPayload, TrainJobResult, JobType> {
  return new Worker<TrainingJobPayload, TrainJobResult, JobType>(TRAINING_QUEUE, processor, opts);
}
