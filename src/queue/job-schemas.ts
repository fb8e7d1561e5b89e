import { Type, type Static } from 'typebox';
import { Value } from 'typebox/value';
import { ARCHITECTURES } from '../ml/architectures.ts';
import { BATCH_SIZE_MAX, BATCH_SIZE_MIN, defaultBatchSize, ONE_CYCLE, TARGET_STEPS } from '../ml/recipe.ts';
import { StringEnum } from '../schemas/string-enum.ts';
import { EpochStatsSchema } from '../store/metadata.ts';

export const AugmentSchema = Type.Object(
  {
    rotation: Type.Optional(Type.Number({ minimum: 0, maximum: 180, default: 0, description: 'largest rotation in degrees, either way' })),
    shift: Type.Optional(Type.Number({ minimum: 0, maximum: 10, default: 0, description: 'largest shift in pixels along each axis' })),
    scale: Type.Optional(
      Type.Array(Type.Number({ minimum: 0.25, maximum: 4 }), { minItems: 2, maxItems: 2, default: [1, 1], description: 'zoom factor range [min, max]' }),
    ),
  },
  { additionalProperties: false, description: 'random affine transforms of each training batch (tensor ops, reproducible by seed)' },
);

const seedField = () =>
  Type.Optional(Type.Integer({ minimum: 0, maximum: 2147483647, description: 'makes shuffling, the split, augmentation and initial weights reproducible; chosen at random when absent' }));

const betaField = (value: number, which: string) =>
  Type.Optional(Type.Number({ minimum: 0, exclusiveMaximum: 1, default: value, description: `Adam's ${which}` }));

const learningRateField = (value: number, description: string) =>
  Type.Optional(Type.Number({ minimum: 1e-6, maximum: 1, default: value, description }));

const SCHEDULE_DOC =
  `"one-cycle": per step, a cosine rise from learningRate/${ONE_CYCLE.startDivisor} to learningRate over the first ${ONE_CYCLE.warmup * 100} % of the steps, ` +
  `then a cosine fall to learningRate/${ONE_CYCLE.startDivisor * ONE_CYCLE.endDivisor} (Smith & Topin's super-convergence; PyTorch OneCycleLR's shape); ` +
  '"step": the last quarter of the epochs (rounded down, so none below 4 epochs) at a tenth of learningRate; "constant": learningRate throughout';

export const LEARNING_RATE_SCHEDULES = ['one-cycle', 'step', 'constant'] as const;

/**
 * The defaults are the time-to-accuracy recipe (README, "Training recipe"): 2 epochs of one-cycle
 * Adam reach ≥ 99.0 % MNIST test accuracy with the `cnn` on every seed measured.
 */
export const TrainParamsSchema = Type.Object(
  {
    type: Type.Literal('train'),
    architecture: Type.Optional(
      StringEnum(ARCHITECTURES, {
        default: 'cnn',
        description:
          '`cnn`: 2×(5×5 conv + ReLU + 2×2 max-pool, 16/32 filters) + dense 10; `lenet5`: LeNet-5; `stn`: a spatial transformer (a localisation network predicting an affine correction, a bilinear sampler) in front of the `cnn`; `resnet`: a small residual network with batch normalisation',
      }),
    ),
    epochs: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 2 })),
    batchSize: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 4096,
        description: `when absent: the largest power of two from ${BATCH_SIZE_MIN} to ${BATCH_SIZE_MAX} that gives at least ${TARGET_STEPS} steps over the job (limit × epochs / batchSize), so small jobs still take enough steps: 256 for the full set over 2 epochs, 32 for 3,000 images × 1 epoch`,
      }),
    ),
    learningRate: learningRateField(0.01, 'Adam learning rate; under "one-cycle" the peak rate'),
    learningRateSchedule: Type.Optional(StringEnum(LEARNING_RATE_SCHEDULES, { default: 'one-cycle', description: SCHEDULE_DOC })),
    beta1: betaField(0.7, 'beta1 (decay of the gradient mean; lower follows a fast-changing rate more closely)'),
    beta2: betaField(0.9, 'beta2 (decay of the squared-gradient mean)'),
    limit: Type.Optional(Type.Integer({ minimum: 10, maximum: 60000, default: 60000, description: 'how many of the 60k MNIST training images to use' })),
    validationSplit: Type.Optional(
      Type.Number({ minimum: 0, maximum: 0.5, default: 0, description: 'fraction of the training images held out for per-epoch validation metrics' }),
    ),
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
    freeze: Type.Optional(
      Type.Union([StringEnum(['features', 'none']), Type.Integer({ minimum: 0 })], {
        default: 'features',
        description:
          '"features": every layer but the dense head keeps its weights (for `stn` the localisation network too; frozen batch-norm layers keep their statistics); "none"; or how many of the first layers to freeze',
      }),
    ),
    epochs: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 5 })),
    batchSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 4096, default: 32 })),
    learningRate: learningRateField(0.0005, 'Adam learning rate; under "one-cycle" the peak rate'),
    learningRateSchedule: Type.Optional(StringEnum(LEARNING_RATE_SCHEDULES, { default: 'constant', description: SCHEDULE_DOC })),
    beta1: betaField(0.9, 'beta1'),
    beta2: betaField(0.999, 'beta2'),
    validationSplit: Type.Optional(
      Type.Number({ minimum: 0, maximum: 0.5, default: 0.2, description: "fraction of the dataset held out: its accuracy is reported per epoch and in the new version's metrics" }),
    ),
    rehearsal: Type.Optional(
      Type.Number({ minimum: 0, maximum: 0.9, default: 0.5, description: 'fraction of each epoch drawn from the MNIST training set, so the model does not forget MNIST' }),
    ),
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

export type AugmentParams = Required<Static<typeof AugmentSchema>>;
type Filled<T> = Required<Omit<T, 'augment'>> & { augment?: AugmentParams };

/** What the queue carries: the request with every default filled in, the seed fixed, `latest` resolved. */
export type TrainJobData = Filled<TrainParams>;
export type FinetuneJobData = Filled<FinetuneParams> & { baseModel: number };
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
