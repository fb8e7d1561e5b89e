import { Type, type Static } from 'typebox';
import { StringEnum } from './string-enum.ts';

/** An uploaded dataset as the API lists it and `dataset.json` keeps it. */
export const DatasetInfoSchema = Type.Object(
  {
    id: Type.String(),
    name: Type.String(),
    format: StringEnum(['imagefolder', 'idx'], { description: 'what was uploaded' }),
    createdAt: Type.String({ format: 'date-time' }),
    count: Type.Integer({ description: 'number of images' }),
    classCounts: Type.Array(Type.Integer(), { minItems: 10, maxItems: 10, description: 'images per digit 0-9' }),
    sha256: Type.String({ description: 'of the stored (preprocessed) images then labels' }),
  },
  { $id: 'Dataset', title: 'Dataset' },
);
export type DatasetInfo = Static<typeof DatasetInfoSchema>;

export const DatasetParams = Type.Object({ id: Type.String({ maxLength: 64 }) });
export const DatasetListSchema = Type.Object({ items: Type.Array(Type.Ref('Dataset')) });
