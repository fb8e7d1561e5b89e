import type { Job } from 'bullmq';
import type { JobState, JobType, JobView } from '../schemas/jobs.ts';
import { withoutJobMeta, type EvaluateJobResult, type JobProgressRecord, type TrainJobResult } from './job-data.ts';

/** BullMQ's reason for a job ended by cancellation; the worker fails the job with it. */
export const CANCELLED_REASON = 'cancelled';

const iso = (ms: number | undefined) => (ms ? new Date(ms).toISOString() : undefined);

export function toJobState(bullState: string, cancelRequested: boolean, failedReason: string | undefined): JobState {
  switch (bullState) {
    case 'active':
      return 'running';
    case 'completed':
      return 'succeeded';
    case 'failed':
      return cancelRequested || failedReason === CANCELLED_REASON ? 'cancelled' : 'failed';
    default: // waiting, prioritized, delayed, waiting-children
      return cancelRequested ? 'cancelled' : 'queued';
  }
}

export function toJobView(job: Job, bullState: string, cancelRequested: boolean): JobView {
  const state = toJobState(bullState, cancelRequested, job.failedReason);
  const progress = (job.progress && typeof job.progress === 'object' ? job.progress : { progress: null, history: [] }) as JobProgressRecord;
  const result = job.returnvalue as Partial<TrainJobResult & EvaluateJobResult> | null | undefined;
  const view: JobView = {
    id: job.id!,
    type: job.name as JobType,
    state,
    params: withoutJobMeta(job.data),
    progress: progress.progress ?? null,
    history: progress.history ?? [],
    createdAt: iso(job.timestamp)!,
  };
  if (progress.resumedFromEpoch !== undefined) view.resumedFromEpoch = progress.resumedFromEpoch;
  if (result?.modelVersion !== undefined) {
    view.modelVersion = result.modelVersion;
    view.metrics = result.metrics;
  }
  if (result?.evaluation) view.evaluation = result.evaluation;
  if (state === 'failed' && job.failedReason) view.error = job.failedReason;
  if (cancelRequested && state === 'running') view.cancelRequested = true;
  const startedAt = iso(job.processedOn);
  if (startedAt) view.startedAt = startedAt;
  // A queued job cancelled before any worker saw it finished when it was cancelled.
  const finishedAt = iso(job.finishedOn);
  if (finishedAt && state !== 'queued' && state !== 'running') view.finishedAt = finishedAt;
  return view;
}
