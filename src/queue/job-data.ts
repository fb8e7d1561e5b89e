import { Value } from 'typebox/value';
import {
  AugmentSchema,
  defaultBatchSize,
  EvaluateParamsSchema,
  FinetuneParamsSchema,
  ImportParamsSchema,
  TrainParamsSchema,
  type BatchProgress,
  type EpochStats,
  type EvaluateParams,
  type FinetuneParams,
  type ImportParams,
  type JobRequest,
  type TrainParams,
} from '../schemas/jobs.ts';
import type { Static } from 'typebox';
import type { Evaluation } from '../schemas/evaluation.ts';

export type AugmentParams = Required<Static<typeof AugmentSchema>>;
type Filled<T> = Required<Omit<T, 'augment' | 'maxDurationSeconds' | 'since'>> & { augment?: AugmentParams; maxDurationSeconds?: number };

/** What the queue carries: the request with every default filled in, the seed fixed, `latest` resolved. */
export type TrainJobData = Filled<TrainParams>;
export type FinetuneJobData = Filled<FinetuneParams> & { baseModel: number; since?: number };
/** A training job: what POST /v1/jobs queues on the training queue. */
export type JobData = TrainJobData | FinetuneJobData;
/** A model job: what POST /v1/models and POST /v1/models/{v}/evaluate queue on their own queue. */
export type ModelJobData = ImportParams | EvaluateParams;

/**
 * What the API stores in a job's data beside the params, for the logs only: the id of the HTTP
 * request that queued it, so the worker's lines about the job carry it too. Never part of `params`.
 */
export interface JobMeta {
  requestId?: string;
}

/** A job's data without its JobMeta: the params alone. */
export function withoutJobMeta<T>(data: T): T {
  if (!data || typeof data !== 'object' || !('requestId' in data)) return data;
  const { requestId: _requestId, ...params } = data as T & JobMeta;
  return params as T;
}

/** The id of the request that queued the job, if the API recorded one. */
export function jobRequestId(data: unknown): string | undefined {
  const id = (data as JobMeta | null | undefined)?.requestId;
  return typeof id === 'string' ? id : undefined;
}

export class InvalidJobDataError extends Error {}

/** A request with its defaults filled in, before the seed is chosen and `latest` resolved. */
export type FilledRequest = (Omit<TrainJobData, 'seed'> | (Omit<FinetuneJobData, 'seed' | 'baseModel'> & { baseModel: number | 'latest' })) & { seed?: number };

/** Fills in the defaults of the request's branch (the same the API documents), the seed excepted. */
export function withDefaults(request: JobRequest): FilledRequest {
  const schema = request.type === 'finetune' ? FinetuneParamsSchema : TrainParamsSchema;
  const filled = Value.Default(schema, structuredClone(request)) as JobRequest;
  if (filled.augment) filled.augment = Value.Default(AugmentSchema, filled.augment) as typeof filled.augment;
  if (filled.type === 'train') filled.batchSize ??= defaultBatchSize(filled.limit!, filled.epochs!);
  return filled as FilledRequest;
}

/** Worker side: validate before doing anything, so a malformed message fails once instead of looping. */
export function parseJobData(data: unknown): JobData {
  const type = (data as { type?: unknown } | null)?.type;
  if (type !== 'train' && type !== 'finetune') throw new InvalidJobDataError(`job data has an unknown type ${JSON.stringify(type)}`);
  const schema = type === 'finetune' ? FinetuneParamsSchema : TrainParamsSchema;
  const params = withDefaults(withoutJobMeta(data) as JobRequest);
  const errors = [...Value.Errors(schema, params)];
  if (errors.length > 0) throw new InvalidJobDataError(`invalid job data at ${errors[0].instancePath || '/'}: ${errors[0].message}`);
  if (params.seed === undefined) throw new InvalidJobDataError('job data has no seed');
  if (params.type === 'finetune' && typeof params.baseModel !== 'number') throw new InvalidJobDataError('job data has an unresolved baseModel');
  return params as JobData;
}

/** Worker side: a model job's data, validated like a training job's. */
export function parseModelJobData(data: unknown): ModelJobData {
  const params = withoutJobMeta(data) as ModelJobData | null;
  const schema = params?.type === 'import' ? ImportParamsSchema : params?.type === 'evaluate' ? EvaluateParamsSchema : undefined;
  if (!schema) throw new InvalidJobDataError(`job data has an unknown type ${JSON.stringify(params?.type)}`);
  const errors = [...Value.Errors(schema, params)];
  if (errors.length > 0) throw new InvalidJobDataError(`invalid job data at ${errors[0].instancePath || '/'}: ${errors[0].message}`);
  return params!;
}

/** What a worker stores as BullMQ job progress. */
export interface JobProgressRecord {
  progress: BatchProgress | null;
  history: EpochStats[];
  /** Set when the latest attempt went on from a checkpoint: the epochs already done then. */
  resumedFromEpoch?: number;
}

/** What a train, fine-tune or import job returns on success: the version it wrote. */
export interface TrainJobResult {
  modelVersion: number;
  metrics: { testAccuracy: number; testLoss: number };
}

/** What an evaluate job returns on success. */
export interface EvaluateJobResult {
  evaluation: Evaluation;
}

export type ModelJobResult = TrainJobResult | EvaluateJobResult;
