import { Type } from 'typebox';

export const PredictQuery = Type.Object({
  version: Type.Optional(Type.Integer({ minimum: 1, description: 'model version to use; the served (latest) one when absent' })),
});

export const PredictionSchema = Type.Object({
  digit: Type.Integer({ minimum: 0, maximum: 9 }),
  confidence: Type.Number({ description: 'probability of `digit`' }),
  probabilities: Type.Array(Type.Number(), { minItems: 10, maxItems: 10, description: 'softmax output for digits 0-9' }),
});

export const PredictResponse = Type.Object({
  modelVersion: Type.Integer(),
  predictions: Type.Array(PredictionSchema, { description: 'one per image, in the order sent' }),
});
