import { Type, type Static } from 'typebox';

/** What `metadata.json` of a model version holds; shared by the store, the API schemas and the worker. */
export const EpochStatsSchema = Type.Object({
  epoch: Type.Integer({ minimum: 1 }),
  loss: Type.Number(),
  accuracy: Type.Number(),
  valLoss: Type.Optional(Type.Number()),
  valAccuracy: Type.Optional(Type.Number()),
});

export const ModelMetricsSchema = Type.Object({
  testAccuracy: Type.Number({ description: 'accuracy on the 10k MNIST test set' }),
  testLoss: Type.Number({ description: 'mean categorical cross-entropy on the MNIST test set' }),
  confusionMatrix: Type.Array(Type.Array(Type.Integer()), { description: 'confusionMatrix[actual][predicted], 10×10 counts' }),
  heldOut: Type.Optional(
    Type.Object(
      {
        dataset: Type.String(),
        count: Type.Integer(),
        accuracy: Type.Number(),
        loss: Type.Number(),
        confusionMatrix: Type.Array(Type.Array(Type.Integer())),
      },
      { description: "fine-tuning: metrics on the held-out part of the new dataset (next to MNIST's, so forgetting shows)" },
    ),
  ),
});

export const ModelMetadataSchema = Type.Object({
  version: Type.Integer({ minimum: 1 }),
  jobId: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String({ format: 'date-time' }),
  architecture: Type.String(),
  params: Type.Record(Type.String(), Type.Unknown()),
  lineage: Type.Optional(
    Type.Object({ baseVersion: Type.Integer(), dataset: Type.String() }, { description: 'for a fine-tuned version: the version it started from and the dataset it was tuned on' }),
  ),
  dataset: Type.Object({
    name: Type.String(),
    trainCount: Type.Integer(),
    testCount: Type.Integer(),
    sha256: Type.String(),
  }),
  history: Type.Array(EpochStatsSchema),
  metrics: ModelMetricsSchema,
  backend: Type.String({ description: 'TensorFlow.js backend that trained it' }),
  durationMs: Type.Integer({ description: 'training + evaluation wall time' }),
});

export type EpochStatsRecord = Static<typeof EpochStatsSchema>;
export type ModelMetrics = Static<typeof ModelMetricsSchema>;
export type ModelMetadata = Static<typeof ModelMetadataSchema>;
