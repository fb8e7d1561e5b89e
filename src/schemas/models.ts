import { Type, type Static } from 'typebox';
import { EpochStatsSchema } from './jobs.ts';
import { StringEnum } from './string-enum.ts';
import { INFERENCE_ENGINES } from './inference-engine.ts';

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
        baseAccuracy: Type.Optional(Type.Number({ description: 'the base version\'s accuracy on the same held-out images' })),
        loss: Type.Number(),
        confusionMatrix: Type.Array(Type.Array(Type.Integer())),
      },
      { description: "fine-tuning: metrics on the held-out part of the new dataset (next to MNIST's, so forgetting shows)" },
    ),
  ),
});

/** The decision a fine-tune on corrections records about itself; serving follows it under every policy but `manual`. */
export const PromotionGateSchema = Type.Object(
  {
    passed: Type.Boolean(),
    reason: Type.String(),
    heldOutAccuracy: Type.Number({ description: 'on the held-out corrections' }),
    baseHeldOutAccuracy: Type.Number({ description: "the base version's, on the same corrections" }),
    testAccuracy: Type.Number({ description: 'MNIST test accuracy' }),
    baseTestAccuracy: Type.Number({ description: "the base version's MNIST test accuracy" }),
    maxMnistDrop: Type.Number({ description: 'PROMOTION_MAX_MNIST_DROP as the worker read it' }),
  },
  { description: 'for a version tuned on corrections: served only if it beats its base on the held-out corrections and lost at most maxMnistDrop of MNIST test accuracy' },
);
export type PromotionGate = Static<typeof PromotionGateSchema>;

/** Why a version has, or has no, `model.onnx`: `unavailable` (no ONNX Runtime where it was written) is tried again by the next worker's backfill. */
export const ONNX_EXPORT_STATUSES = ['exported', 'unsupported', 'parity-failed', 'unavailable'] as const;

export const OnnxParitySchema = Type.Object(
  {
    images: Type.Integer({ description: 'MNIST test images run through both engines' }),
    maxProbabilityDifference: Type.Number({ description: 'largest difference of one probability between the engines (at most 1e-5 to export)' }),
    argmaxDisagreements: Type.Integer({ description: 'images given another digit by ONNX Runtime although their top two TF.js probabilities are more than 1e-4 apart (0 to export)' }),
    ambiguousImages: Type.Integer({ description: 'images whose top two probabilities are within 1e-4, exempt from the digit check' }),
    tfjsSeconds: Type.Number({ description: 'TensorFlow.js time on those images' }),
    onnxSeconds: Type.Number({ description: 'ONNX Runtime time on those images' }),
  },
  { description: 'the check that model.onnx computes what the TF.js files compute' },
);
export type OnnxParity = Static<typeof OnnxParitySchema>;

export const OnnxExportSchema = Type.Object(
  {
    status: StringEnum(ONNX_EXPORT_STATUSES),
    file: Type.Union([Type.String(), Type.Null()], { description: '`model.onnx` when written; null when the version is served by TensorFlow.js' }),
    reason: Type.Optional(Type.String({ description: 'why there is no model.onnx' })),
    opset: Type.Optional(Type.Integer()),
    onnxRuntime: Type.Optional(Type.String({ description: 'onnxruntime-node version the parity was checked with' })),
    parity: Type.Optional(OnnxParitySchema),
    exportedAt: Type.String({ format: 'date-time' }),
  },
  { description: 'the ONNX copy serving runs (the TF.js files stay the canonical artefact)' },
);
export type OnnxExport = Static<typeof OnnxExportSchema>;

/** What `metadata.json` of a model version holds; shared by the store, the API, the worker and the web page. */
export const ModelMetadataSchema = Type.Object(
  {
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
    promotion: Type.Optional(PromotionGateSchema),
    onnx: Type.Optional(OnnxExportSchema),
    backend: Type.String({ description: 'TensorFlow.js backend that trained it' }),
    durationMs: Type.Integer({ description: 'training + evaluation wall time' }),
  },
  { $id: 'ModelMetadata', title: 'ModelMetadata' },
);

export type ModelMetrics = Static<typeof ModelMetricsSchema>;
export type ModelMetadata = Static<typeof ModelMetadataSchema>;

/** How a new version comes to be served when none is pinned (SERVING_POLICY). */
export const SERVING_POLICIES = ['best', 'newest', 'manual'] as const;
export type ServingPolicy = (typeof SERVING_POLICIES)[number];

export const CanarySchema = Type.Object(
  {
    version: Type.Integer({ minimum: 1, description: 'the version on trial' }),
    fraction: Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1, description: 'share of predict requests it answers, e.g. 0.1' }),
  },
  { additionalProperties: false, description: 'a version that answers a share of predict requests beside the served one' },
);
export type Canary = Static<typeof CanarySchema>;

export const ModelSummarySchema = Type.Object({
  version: Type.Integer(),
  createdAt: Type.String({ format: 'date-time' }),
  architecture: Type.String(),
  jobId: Type.Union([Type.String(), Type.Null()]),
  testAccuracy: Type.Number(),
  served: Type.Boolean({ description: 'true for the version /v1/predict answers with by default' }),
  servingReason: Type.String({ description: 'why this version is, or is not, the one served' }),
});

export const ModelListSchema = Type.Object({
  servedVersion: Type.Union([Type.Integer(), Type.Null()], { description: 'version /v1/predict serves by default: the pinned one, else the one SERVING_POLICY chooses' }),
  servingPolicy: StringEnum(SERVING_POLICIES, { description: 'SERVING_POLICY: "best" serves a new version only if its test accuracy is at least the served one\'s (less PROMOTION_TOLERANCE), "newest" the newest, "manual" the first until one is pinned' }),
  pinnedVersion: Type.Union([Type.Integer(), Type.Null()], { description: 'version pinned with PUT /v1/models/serving, if any' }),
  canary: Type.Union([CanarySchema, Type.Null()], { description: 'the canary started with PUT /v1/models/serving, if any' }),
  items: Type.Array(ModelSummarySchema),
});

export const ServingStatusSchema = Type.Object({
  servedVersion: Type.Union([Type.Integer(), Type.Null()], { description: 'version /v1/predict answers with when no ?version= is given' }),
  pinnedVersion: Type.Union([Type.Integer(), Type.Null()], { description: 'the pin, shared by every API replica (null: serve the newest version that loads)' }),
  latestVersion: Type.Union([Type.Integer(), Type.Null()], { description: 'newest version in the store' }),
  loadedVersions: Type.Array(Type.Integer(), { description: 'versions this replica holds in memory (the served one plus an LRU of recent ones)' }),
  loaded: Type.Array(
    Type.Object({ version: Type.Integer(), engine: StringEnum(INFERENCE_ENGINES) }),
    { description: 'the same versions, each with the engine that runs it on this replica: "onnxruntime" (its model.onnx) or "tfjs"' },
  ),
  canary: Type.Union([CanarySchema, Type.Null()], { description: 'the canary every replica routes a share of predict requests to, if any' }),
});

export const PinBody = Type.Object(
  {
    version: Type.Integer({ minimum: 1, description: 'version to serve until unpinned' }),
    canary: Type.Optional(CanarySchema),
  },
  { additionalProperties: false },
);

export const ModelFileParams = Type.Object({
  version: Type.Integer({ minimum: 1 }),
  file: Type.String({ description: '`model.json`, a weights file named in its manifest, or `model.onnx`' }),
});
