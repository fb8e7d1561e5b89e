import { parseJobData, type FinetuneJobData, type TrainJobData } from '../../src/queue/job-data.ts';

/** A train job's data as the queue carries it: the request's defaults filled in. */
export function trainJob(request: Omit<Partial<TrainJobData>, 'type'> & { seed: number }): TrainJobData {
  return parseJobData({ type: 'train', ...request }) as TrainJobData;
}

/** A fine-tune job's data as the queue carries it (`baseModel` resolved to a number). */
export function finetuneJob(request: Omit<Partial<FinetuneJobData>, 'type'> & { baseModel: number; dataset: string; seed: number }): FinetuneJobData {
  return parseJobData({ type: 'finetune', ...request }) as FinetuneJobData;
}
