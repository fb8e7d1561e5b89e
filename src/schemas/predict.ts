import { Type, type Static } from 'typebox';
import { DIGIT_PIXELS } from './digit.ts';

export const PredictQuery = Type.Object({
  version: Type.Optional(Type.Integer({ minimum: 1, description: 'model version to use (loaded on demand); the served one when absent' })),
});

/** One 28×28 image as 784 gray levels, row by row. */
export const PixelsSchema = Type.Array(Type.Number({ minimum: 0, maximum: 255 }), {
  minItems: DIGIT_PIXELS,
  maxItems: DIGIT_PIXELS,
  description: '784 gray levels 0–255, row by row (28×28); light ink on dark as MNIST, or dark on light (inverted)',
});

/**
 * The `application/json` body of /v1/predict: PNGs as base64 (a canvas's `toDataURL()` works as
 * is), or raw pixels. Exactly one of the two; the count limit is checked by the route (413).
 */
export const PredictJsonBody = Type.Object(
  {
    images: Type.Optional(
      Type.Array(Type.String({ minLength: 1, description: 'a PNG, base64-encoded; a `data:image/png;base64,` prefix is allowed' }), { minItems: 1 }),
    ),
    pixels: Type.Optional(Type.Array(PixelsSchema, { minItems: 1 })),
  },
  { additionalProperties: false, description: 'either `images` (base64 PNGs) or `pixels` (arrays of 784 numbers), not both' },
);
export type PredictJsonBody = Static<typeof PredictJsonBody>;

export const PredictionSchema = Type.Object({
  digit: Type.Integer({ minimum: 0, maximum: 9 }),
  confidence: Type.Number({ description: 'probability of `digit`' }),
  probabilities: Type.Array(Type.Number(), { minItems: 10, maxItems: 10, description: 'softmax output for digits 0-9' }),
  predictionId: Type.Optional(
    Type.String({ description: 'names this image for a correction, `POST /v1/feedback {"predictionId", "label"}`, for FEEDBACK_WINDOW_SECONDS (absent when that is 0 or Redis is away)' }),
  ),
});

export const PredictResponse = Type.Object({
  modelVersion: Type.Integer({ description: 'the version that classified every image of this request' }),
  predictions: Type.Array(PredictionSchema, { description: 'one per image, in the order sent' }),
});
