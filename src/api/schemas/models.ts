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
  servedVersion: Type.Union([Type.Integer(), Type.Null()], { description: 'version /v1/predict serves by default (the latest)' }),
  items: Type.Array(ModelSummarySchema),
});

export const ModelFileParams = Type.Object({
  version: Type.Integer({ minimum: 1 }),
  file: Type.String({ description: '`model.json` or a weights file named in its manifest' }),
});
