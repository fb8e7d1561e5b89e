import { Type, type Static } from 'typebox';
import { INFERENCE_ENGINES } from './inference-engine.ts';
import { StringEnum } from './string-enum.ts';

export const EvaluateBody = Type.Object(
  { dataset: Type.Optional(Type.String({ minLength: 1, default: 'mnist', description: '"mnist" (the 10k MNIST test set) or the id of an uploaded dataset' })) },
  { additionalProperties: false },
);

export const EvaluationSchema = Type.Object({
  version: Type.Integer(),
  dataset: Type.String(),
  count: Type.Integer(),
  accuracy: Type.Number(),
  loss: Type.Number({ description: 'mean categorical cross-entropy' }),
  perClassAccuracy: Type.Array(Type.Union([Type.Number(), Type.Null()]), { description: 'digit 0-9; null where the dataset has no example of it' }),
  confusionMatrix: Type.Array(Type.Array(Type.Integer()), { description: 'confusionMatrix[actual][predicted]' }),
  engine: Type.Optional(StringEnum(INFERENCE_ENGINES, { description: 'what ran the model: ONNX Runtime on the version\'s model.onnx when it has one, else TensorFlow.js' })),
  seconds: Type.Optional(Type.Number({ description: 'time the model took over the whole dataset' })),
});
export type Evaluation = Static<typeof EvaluationSchema>;
