import { Type, type Static } from 'typebox';
import { EvaluationSchema } from './evaluation.ts';
import { StringEnum } from './string-enum.ts';

/**
 * Jobs as they cross the API and the queue: the request bodies of POST /v1/jobs (validation, types,
 * OpenAPI and defaults in one place), the vocabulary they use, and the job a client reads back.
 */

export const JOB_TYPES = ['train', 'finetune', 'import', 'evaluate'] as const;
export type JobType = (typeof JOB_TYPES)[number];

export const ARCHITECTURES = ['cnn', 'lenet5', 'stn', 'resnet'] as const;
export type Architecture = (typeof ARCHITECTURES)[number];

export const LEARNING_RATE_SCHEDULES = ['one-cycle', 'step', 'constant'] as const;
export type LearningRateSchedule = (typeof LEARNING_RATE_SCHEDULES)[number];

// The time-to-accuracy recipe's fixed numbers: documented defaults of the train job, read by the
// trainer (see README, "Training recipe", for how they were chosen and what they reach).

/** One-cycle shape: PyTorch OneCycleLR's defaults (pct_start, div_factor, final_div_factor). */
export const ONE_CYCLE = { warmup: 0.3, startDivisor: 25, endDivisor: 1e4 } as const;

export const BATCH_SIZE_MIN = 32;
export const BATCH_SIZE_MAX = 256;
/** Optimizer steps a default-sized job takes at least, unless its batches are already BATCH_SIZE_MIN. */
export const TARGET_STEPS = 400;

/**
 * The default batch size of a train job: the largest power of two from BATCH_SIZE_MIN to
 * BATCH_SIZE_MAX that still gives TARGET_STEPS steps over the whole job. Big batches are faster per
 * image (and the one-cycle schedule tolerates them), but a small job needs its steps: 3,000 images ×
 * 1 epoch at batch 128 is 24 steps and ~88 %, at batch 32 it is 94 steps and over 90 %.
 */
export function defaultBatchSize(examples: number, epochs: number): number {
  const fits = Math.max(1, Math.floor((examples * epochs) / TARGET_STEPS));
  const power = 2 ** Math.floor(Math.log2(fits));
  return Math.min(BATCH_SIZE_MAX, Math.max(BATCH_SIZE_MIN, power));
}

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

const maxDurationField = () =>
  Type.Optional(
    Type.Integer({
      minimum: 1,
      description: 'the longest the job may run, in seconds; the worker stops it past that and fails it with the reason. At most JOB_MAX_SECONDS, which is also the default',
    }),
  );

const betaField = (value: number, which: string) =>
  Type.Optional(Type.Number({ minimum: 0, exclusiveMaximum: 1, default: value, description: `Adam's ${which}` }));

const learningRateField = (value: number, description: string) =>
  Type.Optional(Type.Number({ minimum: 1e-6, maximum: 1, default: value, description }));

const SCHEDULE_DOC =
  `"one-cycle": per step, a cosine rise from learningRate/${ONE_CYCLE.startDivisor} to learningRate over the first ${ONE_CYCLE.warmup * 100} % of the steps, ` +
  `then a cosine fall to learningRate/${ONE_CYCLE.startDivisor * ONE_CYCLE.endDivisor} (Smith & Topin's super-convergence; PyTorch OneCycleLR's shape); ` +
  '"step": the last quarter of the epochs (rounded down, so none below 4 epochs) at a tenth of learningRate; "constant": learningRate throughout';

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
    maxDurationSeconds: maxDurationField(),
  },
  { additionalProperties: false, title: 'TrainJobRequest' },
);
export type TrainParams = Static<typeof TrainParamsSchema>;

/** Fewest corrections a fine-tune on `"dataset": "feedback"` takes: fewer hold out too few to judge it by. */
export const MIN_CORRECTIONS = 20;

export const FinetuneParamsSchema = Type.Object(
  {
    type: Type.Literal('finetune'),
    baseModel: Type.Union([Type.Integer({ minimum: 1 }), Type.Literal('latest')], { description: 'model version to start from; "latest" is resolved when the job is queued' }),
    dataset: Type.String({
      minLength: 1,
      description: `id of an uploaded dataset (POST /v1/datasets), "mnist", or "feedback": the corrections sent to POST /v1/feedback (at least ${MIN_CORRECTIONS}); a version tuned on corrections is served only if it passes the promotion gate (PROMOTION_MAX_MNIST_DROP)`,
    }),
    since: Type.Optional(Type.Integer({ minimum: 1, description: 'with "dataset": "feedback": only the corrections labelled after this version was written' })),
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
    maxDurationSeconds: maxDurationField(),
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

/** An import job (POST /v1/models): the uploaded files, staged for a worker to load, check and score. */
export const ImportParamsSchema = Type.Object(
  {
    type: Type.Literal('import'),
    files: Type.Array(Type.String(), { description: '`model.json` and the weight files it names, as uploaded' }),
  },
  { additionalProperties: false, title: 'ImportJobParams' },
);
export type ImportParams = Static<typeof ImportParamsSchema>;

/** An evaluate job (POST /v1/models/{version}/evaluate). */
export const EvaluateParamsSchema = Type.Object(
  {
    type: Type.Literal('evaluate'),
    version: Type.Integer({ minimum: 1 }),
    dataset: Type.String({ minLength: 1, description: '"mnist" (the 10k MNIST test set) or the id of an uploaded dataset' }),
  },
  { additionalProperties: false, title: 'EvaluateJobParams' },
);
export type EvaluateParams = Static<typeof EvaluateParamsSchema>;

export const JOB_STATES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type JobState = (typeof JOB_STATES)[number];
/** The states a job does not leave. */
export const FINISHED_JOB_STATES: ReadonlySet<JobState> = new Set(['succeeded', 'failed', 'cancelled']);

export const EpochStatsSchema = Type.Object({
  epoch: Type.Integer({ minimum: 1 }),
  loss: Type.Number(),
  accuracy: Type.Number(),
  valLoss: Type.Optional(Type.Number()),
  valAccuracy: Type.Optional(Type.Number()),
});
export type EpochStats = Static<typeof EpochStatsSchema>;

/** A training's progress after a batch; loss and accuracy are running means over the epoch so far. */
export const BatchProgressSchema = Type.Object({
  epoch: Type.Integer(),
  epochs: Type.Integer(),
  batch: Type.Integer(),
  batches: Type.Integer(),
  loss: Type.Number(),
  accuracy: Type.Number(),
});
export type BatchProgress = Static<typeof BatchProgressSchema>;

/** A job as clients see it. */
export const JobSchema = Type.Object(
  {
    id: Type.String(),
    type: StringEnum(JOB_TYPES),
    state: StringEnum(JOB_STATES),
    params: Type.Union([TrainParamsSchema, FinetuneParamsSchema, ImportParamsSchema, EvaluateParamsSchema], { description: 'the request with every default filled in' }),
    progress: Type.Union([BatchProgressSchema, Type.Null()], { description: 'latest batch; loss/accuracy are running means over the epoch' }),
    history: Type.Array(EpochStatsSchema, { description: 'one entry per finished epoch' }),
    resumedFromEpoch: Type.Optional(
      Type.Integer({ minimum: 0, description: 'the latest attempt went on from a checkpoint (its worker crashed or shut down): the epochs already done then' }),
    ),
    modelVersion: Type.Optional(Type.Integer()),
    metrics: Type.Optional(Type.Object({ testAccuracy: Type.Number(), testLoss: Type.Number() })),
    evaluation: Type.Optional(EvaluationSchema),
    error: Type.Optional(Type.String()),
    cancelRequested: Type.Optional(Type.Boolean()),
    createdAt: Type.String({ format: 'date-time' }),
    startedAt: Type.Optional(Type.String({ format: 'date-time' })),
    finishedAt: Type.Optional(Type.String({ format: 'date-time' })),
  },
  { $id: 'Job', title: 'Job' },
);
export type JobView = Static<typeof JobSchema>;

export const JobParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) });
export const ListJobsQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
  offset: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
});
export const JobListSchema = Type.Object({
  items: Type.Array(Type.Ref('Job')),
  total: Type.Integer(),
  limit: Type.Integer(),
  offset: Type.Integer(),
});
