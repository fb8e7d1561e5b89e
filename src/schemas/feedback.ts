import { Type, type Static } from 'typebox';
import { NUM_CLASSES } from './digit.ts';
import { StringEnum } from './string-enum.ts';

const Label = Type.Integer({ minimum: 0, maximum: NUM_CLASSES - 1, description: 'the digit the image really shows' });
const Base64Png = Type.String({ minLength: 1, description: 'a PNG, base64-encoded; a `data:image/png;base64,` prefix is allowed' });

/** A correction as it is kept: one per distinct preprocessed image. */
export const FeedbackItemSchema = Type.Object(
  {
    id: Type.String({ description: 'derived from the preprocessed pixels: the same image sent again has the same id' }),
    label: Label,
    source: StringEnum(['image', 'prediction'], { description: 'sent as an image, or named by the predictionId of a recent prediction' }),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time', description: 'when the label was last set' }),
    changes: Type.Array(
      Type.Object({ at: Type.String({ format: 'date-time' }), from: Type.Integer(), to: Type.Integer() }),
      { description: 'earlier labels replaced by a later correction of the same image, oldest first' },
    ),
  },
  { $id: 'Correction', title: 'Correction' },
);
export type FeedbackItem = Static<typeof FeedbackItemSchema>;

/**
 * The JSON body of POST /v1/feedback: one image, several, or a recent prediction by its id.
 * Exactly one shape; the route checks the counts match.
 */
export const FeedbackJsonBody = Type.Object(
  {
    image: Type.Optional(Base64Png),
    images: Type.Optional(Type.Array(Base64Png, { minItems: 1 })),
    predictionId: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'a `predictionId` from a /v1/predict answer of the last FEEDBACK_WINDOW_SECONDS' })),
    label: Type.Optional(Label),
    labels: Type.Optional(Type.Array(Label, { minItems: 1 })),
  },
  {
    additionalProperties: false,
    description: '`{"image", "label"}`, `{"images": […], "labels": […]}` (same length) or `{"predictionId", "label"}`',
  },
);
export type FeedbackJsonBody = Static<typeof FeedbackJsonBody>;

export const FeedbackAddResponse = Type.Object({
  items: Type.Array(
    Type.Object({
      id: Type.String(),
      label: Label,
      status: StringEnum(['created', 'relabelled', 'unchanged'], { description: 'new; an image already kept, now with another label; or already kept with this label' }),
      previousLabel: Type.Optional(Type.Integer({ description: 'for `relabelled`: the label it had' })),
    }),
    { description: 'one per image, in the order sent' },
  ),
  total: Type.Integer({ description: 'corrections kept in all' }),
});

export const FeedbackListQuery = Type.Object({
  offset: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
});

export const FeedbackListSchema = Type.Object({
  total: Type.Integer({ description: 'corrections kept in all' }),
  offset: Type.Integer(),
  items: Type.Array(Type.Ref('Correction'), { description: 'most recently labelled first' }),
});

export const FeedbackParams = Type.Object({ id: Type.String({ maxLength: 64 }) });
