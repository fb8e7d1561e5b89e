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
    limit: Type.Integer({ minimum: 10, maximum: 60000, default: 60000, description: 'how many of the 60k MNIST training images to use' }),
    validationSplit: Type.Number({ minimum: 0, maximum: 0.5, default: 0, description: 'fraction of the training images held out for per-epoch validation metrics' }),
    seed: Type.Optional(Type.Integer({ minimum: 0, maximum: 2147483647, description: 'makes shuffling, the split and initial weights reproducible; chosen at random when absent' })),
  },
  { additionalProperties: false },
);
export type TrainParams = Static<typeof TrainParamsSchema>;

/** What the queue carries: the request with every default filled in and the seed fixed. */
export type TrainJobData = TrainParams & { seed: number };

export class InvalidJobDataError extends Error {}

/** Worker side: validate before doing anything, so a malformed message fails once instead of looping. */
export function parseTrainJobData(data: unknown): TrainJobData {
  const withDefaults = Value.Default(TrainParamsSchema, structuredClone(data));
  const errors = [...Value.Errors(TrainParamsSchema, withDefaults)];
  if (errors.length > 0) throw new InvalidJobDataError(`invalid job data at ${errors[0].instancePath || '/'}: ${errors[0].message}`);
  const params = withDefaults as TrainParams;
  if (params.seed === undefined) throw new InvalidJobDataError('job data has no seed');
  return params as TrainJobData;
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
}

/** What a train job returns on success. */
export interface TrainJobResult {
  modelVersion: number;
  metrics: { testAccuracy: number; testLoss: number };
}
