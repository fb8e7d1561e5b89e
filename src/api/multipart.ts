import type { FastifyRequest } from 'fastify';
import { ServiceError } from '../errors.ts';

export interface UploadedFile {
  fieldname: string;
  filename: string;
  data: Buffer;
}

export interface UploadedField {
  fieldname: string;
  value: unknown;
}

/** A multipart body that cannot be parsed (no boundary, cut short, broken part headers): the client's mistake. */
export class MalformedMultipartError extends ServiceError {
  constructor(message: string) {
    super('invalid', message);
  }
}

type PartsOptions = Parameters<FastifyRequest['parts']>[0];

/**
 * Reads a whole multipart body, files into memory, within `options.limits` (beyond them
 * @fastify/multipart answers 413). Busboy reports a malformed body with plain errors, which would
 * become 500s; here they are 400s that say what is wrong.
 */
export async function readMultipart(req: FastifyRequest, options?: PartsOptions): Promise<{ files: UploadedFile[]; fields: UploadedField[] }> {
  const files: UploadedFile[] = [];
  const fields: UploadedField[] = [];
  try {
    for await (const part of req.parts(options)) {
      if (part.type === 'file') files.push({ fieldname: part.fieldname, filename: part.filename, data: await part.toBuffer() });
      else fields.push({ fieldname: part.fieldname, value: part.value });
    }
  } catch (err) {
    const e = err as Error & { statusCode?: number };
    // @fastify/multipart's own (limits: 413), and what failed the reading of the request: its size (413) or its time (408).
    if (e.statusCode !== undefined || err instanceof ServiceError) throw err;
    throw new MalformedMultipartError(`the multipart body is malformed: ${e.message}`);
  }
  return { files, fields };
}
