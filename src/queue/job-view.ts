import type { Job } from 'bullmq';
import { Type, type Static } from 'typebox';
import { StringEnum } from '../schemas/string-enum.ts';
import { EpochStatsSchema } from '../store/metadata.ts';
import { BatchProgressSchema, FinetuneParamsSchema, TrainParamsSchema, withoutJobMeta, type JobProgressRecord, type TrainJobResult } from './job-schemas.ts';

export const JOB_STATES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type JobState = (typeof JOB_STATES)[number];

/** A job as clients see it; the API's response schema and the type are this one definition. */
export const JobViewSchema = Type.Object({
  id: Type.String(),
  type: Type.String(),
  state: StringEnum(JOB_STATES),
  params: Type.Union([TrainParamsSchema, FinetuneParamsSchema], { description: 'the request with every default filled in' }),
  progress: Type.Union([BatchProgressSchema, Type.Null()], { description: 'latest batch; loss/accuracy are running means over the epoch' }),
  history: Type.Array(EpochStatsSchema, { description: 'one entry per finished epoch' }),
  resumedFromEpoch: Type.Optional(
    Type.Integer({ minimum: 0, description: 'the latest attempt went on from a checkpoint (its worker crashed or shut down): the epochs already done then' }),
  ),
  modelVersion: Type.Optional(Type.Integer()),
  metrics: Type.Optional(Type.Object({ testAccuracy: Type.Number(), testLoss: Type.Number() })),
  error: Type.Optional(Type.String()),
  cancelRequested: Type.Optional(Type.Boolean()),
  createdAt: Type.String({ format: 'date-time' }),
  startedAt: Type.Optional(Type.String({ format: 'date-time' })),
  finishedAt: Type.Optional(Type.String({ format: 'date-time' })),
});
export type JobView = Static<typeof JobViewSchema>;

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
  const result = job.returnvalue as TrainJobResult | null | undefined;
  const view: JobView = {
    id: job.id!,
    type: job.name,
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
  if (state === 'failed' && job.failedReason) view.error = job.failedReason;
  if (cancelRequested && state === 'running') view.cancelRequested = true;
  const startedAt = iso(job.processedOn);
  if (startedAt) view.startedAt = startedAt;
  // A queued job cancelled before any worker saw it finished when it was cancelled.
  const finishedAt = iso(job.finishedOn);
  if (finishedAt && state !== 'queued' && state !== 'running') view.finishedAt = finishedAt;
  return view;
}
