import { Ajv, type Options } from 'ajv';
import type { FastifySchemaCompiler } from 'fastify';

const COMMON: Options = {
  // Unknown fields are an error, not silently dropped: a typo like `epoch` must not train with defaults.
  removeAdditional: false,
  useDefaults: true,
  discriminator: true,
  // Errors carry their schema, so a message can list what the schema allows.
  verbose: true,
  // TypeBox writes `format` for documentation (date-time, binary); the request schemas rely on none.
  validateFormats: false,
};

/**
 * Request validation with one difference by part: path parameters and query strings arrive as
 * text, so "3" becomes 3 there; a JSON body says what it means, so `"epochs": "2"` is refused
 * rather than quietly read as 2.
 */
export function validatorCompiler(): FastifySchemaCompiler<unknown> {
  const coercing = new Ajv({ ...COMMON, coerceTypes: 'array' });
  const strict = new Ajv({ ...COMMON, coerceTypes: false });
  return ({ schema, httpPart }) => (httpPart === 'body' ? strict : coercing).compile(schema as object);
}

interface SchemaError {
  keyword: string;
  instancePath: string;
  message?: string;
  params: Record<string, unknown>;
  parentSchema?: { oneOf?: { properties?: Record<string, { const?: unknown; enum?: unknown[] }> }[] };
}

/** Validation messages that name the field and, where the schema lists them, the values allowed. */
export function schemaErrorFormatter(errors: SchemaError[], dataVar: string): Error {
  const e = errors[0];
  const where = `${dataVar}${e.instancePath}`;
  const list = (values: unknown[]) => values.map((v) => JSON.stringify(v)).join(', ');
  let message: string;
  if (e.keyword === 'additionalProperties') message = `${where} has an unknown field '${String(e.params.additionalProperty)}'`;
  else if (e.keyword === 'enum') message = `${where} must be one of ${list(e.params.allowedValues as unknown[])}`;
  else if (e.keyword === 'discriminator') {
    const tag = String(e.params.tag);
    const allowed = (e.parentSchema?.oneOf ?? []).flatMap((branch) => {
      const p = branch.properties?.[tag];
      return p?.const !== undefined ? [p.const] : (p?.enum ?? []);
    });
    message = e.params.error === 'tag' ? `${where} needs a string field '${tag}'` : `${where}/${tag} must be one of ${list(allowed)}`;
    if (e.params.error === 'tag' && allowed.length) message += `: one of ${list(allowed)}`;
  } else message = `${where} ${e.message ?? 'is invalid'}`;
  return new Error(message);
}
