import { Type } from 'typebox';

/** Fastify's error shape; every 4xx/5xx answer of the API has it. */
export const ErrorSchema = Type.Object(
  {
    statusCode: Type.Integer(),
    error: Type.String({ description: 'HTTP reason phrase' }),
    message: Type.String({ description: 'what went wrong, naming the field for validation errors' }),
  },
  { $id: 'Error', title: 'Error' },
);

export const errorResponses = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, Type.Ref('Error')]));

export const VersionParams = Type.Object({ version: Type.Integer({ minimum: 1, description: 'model version number' }) });
