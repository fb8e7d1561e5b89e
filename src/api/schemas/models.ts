import { Type } from 'typebox';
import { ModelMetadataSchema } from '../../store/metadata.ts';

export const ModelMetadataRef = Type.Object(ModelMetadataSchema.properties, { $id: 'ModelMetadata', title: 'ModelMetadata' });

export const ModelSummarySchema = Type.Object({
  version: Type.Integer(),
  createdAt: Type.String({ format: 'date-time' }),
  architecture: Type.String(),
  jobId: Type.Union([Type.String(), Type.Null()]),
  testAccuracy: Type.Number(),
  served: Type.Boolean({ description: 'true for the version /v1/predict answers with by default' }),
});

export const ModelListSchema = Type.Object({
  servedVersion: Type.Union([Type.Integer(), Type.Null()], { description: 'version /v1/predict serves by default: the pinned one, else the newest that loads' }),
  pinnedVersion: Type.Union([Type.Integer(), Type.Null()], { description: 'version pinned with PUT /v1/models/serving, if any' }),
  items: Type.Array(ModelSummarySchema),
});

export const ServingStatusSchema = Type.Object({
  servedVersion: Type.Union([Type.Integer(), Type.Null()], { description: 'version /v1/predict answers with when no ?version= is given' }),
  pinnedVersion: Type.Union([Type.Integer(), Type.Null()], { description: 'the pin, shared by every API replica (null: serve the newest version that loads)' }),
  latestVersion: Type.Union([Type.Integer(), Type.Null()], { description: 'newest version in the store' }),
  loadedVersions: Type.Array(Type.Integer(), { description: 'versions this replica holds in memory (the served one plus an LRU of recent ones)' }),
});

export const PinBody = Type.Object({ version: Type.Integer({ minimum: 1, description: 'version to serve until unpinned' }) }, { additionalProperties: false });

export const ModelFileParams = Type.Object({
  version: Type.Integer({ minimum: 1 }),
  file: Type.String({ description: '`model.json` or a weights file named in its manifest' }),
});
