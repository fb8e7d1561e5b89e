import { Type } from 'typebox';

export const LivenessSchema = Type.Object({ status: Type.Literal('ok') });

export const ReadinessSchema = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('unavailable')]),
  redis: Type.Boolean({ description: 'Redis answered a PING' }),
  modelLoaded: Type.Boolean({ description: 'a model version is loaded for /v1/predict' }),
  servedVersion: Type.Union([Type.Integer(), Type.Null()]),
});
