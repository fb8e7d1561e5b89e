import { Type, type Static } from 'typebox';
import { Value } from 'typebox/value';
import { ARCHITECTURES } from '../ml/architectures.ts';
import { StringEnum } from '../schemas/string-enum.ts';
import { EpochStatsSchema } from '../store/metadata.ts';

/**
 * The defaults reach ≥ 99.0 % on the MNIST test set with the `cnn` architecture (see README,
 * "Performance"): every training image, no hold-out, Adam 1e-3, batch 128.
 */
export const DEFAULT_EPOCHS = 12;

export const AugmentSchema = Type.Object(
  {
    rotation: Type.Number({ minimum: 0, maximum: 180, default: 0, description: 'largest rotation in degrees, either way' }),
    shift: Type.Number({ minimum: 0, maximum: 10, default: 0, description: 'largest shift in pixels along each axis' }),
    scale: Type.Array(Type.Number({ minimum: 0.25, maximum: 4 }), { minItems: 2, maxItems: 2, default: [1, 1], description: 'zoom factor range [min, max]' }),
  },
  { additionalProperties: false, description: 'random affine transforms of each training batch (tensor ops, reproducible by seed)' },
);

const seedField = () =>
  Type.Optional(Type.Integer({ minimum: 0, maximum: 2147483647, description: 'makes shuffling, the split, augmentation and initial weights reproducible; chosen at random when absent' }));

export const TrainParamsSchema = Type.Object(
  {
    type: Type.Literal('train'),
    architecture: StringEnum(ARCHITECTURES, {
      default: 'cnn',
      description: '`cnn`: 2×(5×5 conv + ReLU + 2×2 max-pool, 16/32 filters) + dense 10; `lenet5`: LeNet-5',
    }),
    epochs: Type.Integer({ minimum: 1, maximum: 200, default: DEFAULT_EPOCHS }),
    batchSize: Type.Integer({ minimum: 1, maximum: 4096, default: 128 }),
    learningRate: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 0.001, description: 'Adam learning rate' }),
    learningRateSchedule: StringEnum(['step', 'constant'], {
      default: 'step',
      description: '"step": the last quarter of the epochs (rounded down, so none below 4 epochs) run at a tenth of learningRate, which settles the weights; "constant": learningRate throughout',
    }),
    limit: Type.Integer({ minimum: 10, maximum: 60000, default: 60000, description: 'how many of the 60k MNIST training images to use' }),
    validationSplit: Type.Number({ minimum: 0, maximum: 0.5, default: 0, description: 'fraction of the training images held out for per-epoch validation metrics' }),
    seed: seedField(),
    augment: Type.Optional(AugmentSchema),
  },
  { additionalProperties: false, title: 'TrainJobRequest' },
);
export type TrainParams = Static<typeof TrainParamsSchema>;

export const FinetuneParamsSchema = Type.Object(
  {
    type: Type.Literal('finetune'),
    baseModel: Type.Union([Type.Integer({ minimum: 1 }), Type.Literal('latest')], { description: 'model version to start from; "latest" is resolved when the job is queued' }),
    dataset: Type.String({ minLength: 1, description: 'id of an uploaded dataset (POST /v1/datasets), or "mnist"' }),
    freeze: Type.Union([StringEnum(['features', 'none']), Type.Integer({ minimum: 0 })], {
      default: 'features',
      description: '"features": every layer before the first dense layer keeps its weights; "none"; or how many of the first layers to freeze',
    }),
    epochs: Type.Integer({ minimum: 1, maximum: 200, default: 5 }),
    batchSize: Type.Integer({ minimum: 1, maximum: 4096, default: 32 }),
    learningRate: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 0.0005, description: 'Adam learning rate' }),
    validationSplit: Type.Number({ minimum: 0, maximum: 0.5, default: 0.2, description: "fraction of the dataset held out: its accuracy is reported per epoch and in the new version's metrics" }),
    rehearsal: Type.Number({ minimum: 0, maximum: 0.9, default: 0.5, description: 'fraction of each epoch drawn from the MNIST training set, so the model does not forget MNIST' }),
    seed: seedField(),
    augment: Type.Optional(AugmentSchema),
  },
  { additionalProperties: false, title: 'FinetuneJobRequest' },
);
export type FinetuneParams = Static<typeof FinetuneParamsSchema>;

/**
 * The body of POST /v1/jobs. `oneOf` + `discriminator` (rather than TypeBox's anyOf) so validation
 * picks the branch by `type` and reports that branch's errors, naming the field.
 */
export const JobRequestSchema = Type.Unsafe<TrainParams | FinetuneParams>({
  type: 'object',
  required: ['type'],
  discriminator: { propertyName: 'type' },
  oneOf: [TrainParamsSchema, FinetuneParamsSchema],
});
export type JobRequest = TrainParams | FinetuneParams;

/** What the queue carries: the request with every default filled in, the seed fixed, `latest` resolved. */
export type TrainJobData = TrainParams & { seed: number };
export type FinetuneJobData = FinetuneParams & { seed: number; baseModel: number; freeze: FinetuneParams['freeze'] };
export type JobData = TrainJobData | FinetuneJobData;

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

/** Fills in the defaults of the request's branch (the same the API documents). */
export function withDefaults(request: JobRequest): JobRequest {
  const schema = request.type === 'finetune' ? FinetuneParamsSchema : TrainParamsSchema;
  const filled = Value.Default(schema, structuredClone(request)) as JobRequest;
  if (filled.augment) filled.augment = Value.Default(AugmentSchema, filled.augment) as typeof filled.augment;
  return filled;
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

export const BatchProgressSchema = Type.Object({
  epoch: Type.Integer(),
  epochs: Type.Integer(),
  batch: Type.Integer(),
  batches: Type.Integer(),
  loss: Type.Number(),
  accuracy: Type.Number(),
});
export type BatchProgressRecord = Static<typeof BatchProgressSchema>;

/** What a worker stores as BullMQ job progress. */
export interface JobProgressRecord {
  progress: BatchProgressRecord | null;
  history: Static<typeof EpochStatsSchema>[];
  /** Set when the latest attempt went on from a checkpoint: the epochs already done then. */
  resumedFromEpoch?: number;
}

/** What a train job returns on success. */
export interface TrainJobResult {
  modelVersion: number;
  metrics: { testAccuracy: number; testLoss: number };
}
