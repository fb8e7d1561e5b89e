import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';
import { ServiceError } from '../errors.ts';

/**
 * How deep a route's JSON body may nest, decided from its body schema when the route is
 * registered, and checked on the raw bytes before anything parses them. JSON.parse, the
 * prototype-poisoning scan and schema validation all cost time with the depth of what they read: a
 * few megabytes of `[[[…]]]` took seconds. A scan for depth is one pass over the bytes, and stops
 * at the first byte past the limit.
 */

/** The deepest any route accepts when its schema does not bound the depth (a free-form field). */
export const JSON_DEPTH_CEILING = 32;
/** A route without a JSON body schema ignores the body: a flat `{}` or `[]` is harmless, anything deeper is refused. */
export const JSON_DEPTH_WITHOUT_SCHEMA = 1;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The deepest JSON body this route takes (objects and arrays each count one level); set by the onRoute hook. */
    maxJsonDepth?: number;
  }
}

type Schema = boolean | { [keyword: string]: unknown };
type Resolve = (ref: string) => boolean | object | undefined;

const SCALAR_TYPES = new Set(['string', 'number', 'integer', 'boolean', 'null']);

/** The nesting depth of a JSON value: a scalar is 0, `[]` and `{}` are 1, `[[1]]` is 2. */
function valueDepth(value: unknown): number {
  if (value === null || typeof value !== 'object') return 0;
  const children = Array.isArray(value) ? value : Object.values(value);
  return 1 + Math.max(0, ...children.map(valueDepth));
}

/**
 * The deepest value `schema` accepts, Infinity when nothing bounds it. Objects and arrays add one
 * level each; `oneOf`/`anyOf` take their deepest branch; every other constraint on the same schema
 * (its own type, `allOf`) must hold as well, so the smallest of them bounds it. `$ref`s are resolved
 * with `resolve`; one that cannot be, or that recurses, bounds nothing.
 */
export function schemaDepth(schema: boolean | object | undefined, resolve: Resolve = () => undefined, seen: ReadonlySet<string> = new Set()): number {
  if (schema === undefined || schema === true) return Infinity;
  if (schema === false) return 0;
  const s = schema as { [keyword: string]: unknown };
  const bounds: number[] = [];

  if (typeof s.$ref === 'string') {
    if (seen.has(s.$ref)) return Infinity;
    bounds.push(schemaDepth(resolve(s.$ref), resolve, new Set([...seen, s.$ref])));
  }
  if ('const' in s) bounds.push(valueDepth(s.const));
  if (Array.isArray(s.enum)) bounds.push(Math.max(0, ...s.enum.map(valueDepth)));
  for (const key of ['oneOf', 'anyOf'] as const) {
    const branches = s[key];
    if (Array.isArray(branches)) bounds.push(Math.max(0, ...branches.map((b: Schema) => schemaDepth(b, resolve, seen))));
  }
  if (Array.isArray(s.allOf)) bounds.push(...s.allOf.map((b: Schema) => schemaDepth(b, resolve, seen)));
  bounds.push(ownDepth(s, resolve, seen));
  return Math.min(...bounds);
}

/** The bound a schema's own `type` and structure keywords set (Infinity when it says no type at all). */
function ownDepth(s: { [keyword: string]: unknown }, resolve: Resolve, seen: ReadonlySet<string>): number {
  const declared = s.type === undefined ? undefined : ([s.type].flat() as string[]);
  const types = declared ?? [
    ...(['properties', 'additionalProperties', 'patternProperties'].some((k) => k in s) ? ['object'] : []),
    ...(['items', 'prefixItems'].some((k) => k in s) ? ['array'] : []),
  ];
  if (types.length === 0) return Infinity; // {} or only annotations: any JSON value
  const depth = (sub: unknown) => schemaDepth(sub as Schema | undefined, resolve, seen);
  return Math.max(
    ...types.map((type) => {
      if (SCALAR_TYPES.has(type)) return 0;
      if (type === 'object') {
        const children = [
          ...Object.values((s.properties as Record<string, Schema> | undefined) ?? {}).map(depth),
          ...Object.values((s.patternProperties as Record<string, Schema> | undefined) ?? {}).map(depth),
          // Absent additionalProperties lets any other member in, of any depth.
          depth(s.additionalProperties ?? true),
        ];
        return 1 + Math.max(0, ...children);
      }
      if (type === 'array') {
        if (s.maxItems === 0) return 1;
        const prefix = Array.isArray(s.prefixItems) ? s.prefixItems.map(depth) : [];
        // Draft 2020-12 tuples bound the rest with `items`; older drafts put the tuple in `items` itself.
        const rest = Array.isArray(s.items) ? [...s.items.map(depth), depth(s.additionalItems ?? true)] : [depth(s.items ?? true)];
        return 1 + Math.max(0, ...prefix, ...rest);
      }
      return Infinity; // a type this function does not know: no bound
    }),
  );
}

/** The body schema a route validates JSON with: `body`, or its `application/json` entry when `body` is a content map. */
function jsonBodySchema(body: unknown): Schema | undefined {
  if (body === undefined || body === null || typeof body !== 'object') return undefined;
  const content = (body as { content?: Record<string, { schema?: Schema }> }).content;
  if (content && typeof content === 'object' && !('type' in body)) {
    const json = Object.entries(content).filter(([type]) => /json/i.test(type));
    if (json.length === 0) return undefined;
    return { anyOf: json.map(([, entry]) => entry.schema ?? true) };
  }
  return body as Schema;
}

/** The depth limit of a route: what its body schema holds, at most JSON_DEPTH_CEILING; JSON_DEPTH_WITHOUT_SCHEMA without one. */
export function routeJsonDepth(body: unknown, resolve: Resolve): number {
  const schema = jsonBodySchema(body);
  if (schema === undefined) return JSON_DEPTH_WITHOUT_SCHEMA;
  return Math.min(JSON_DEPTH_CEILING, schemaDepth(schema, resolve));
}

/**
 * Whether the JSON text in `bytes` nests deeper than `limit`: brackets and braces counted outside
 * strings, stopping at the first one past the limit. Bytes, not characters: every byte of a UTF-8
 * multi-byte character is ≥ 0x80, so none is mistaken for `[`, `{`, `"` or `\`. Malformed JSON is
 * not judged here; the parser refuses it.
 */
export function nestsDeeperThan(bytes: Uint8Array, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (inString) {
      if (b === 0x5c /* \ */) i++; // the escaped byte cannot end the string
      else if (b === 0x22 /* " */) inString = false;
    } else if (b === 0x22) inString = true;
    else if (b === 0x5b /* [ */ || b === 0x7b /* { */) {
      if (++depth > limit) return true;
    } else if (b === 0x5d /* ] */ || b === 0x7d /* } */) depth--;
  }
  return false;
}

export class JsonTooDeepError extends ServiceError {
  constructor(limit: number) {
    const levels = `${limit} level${limit === 1 ? '' : 's'}`;
    super('invalid', `the JSON body nests deeper than ${levels} (objects and arrays each count one), the most this route's body can hold; send the structure its schema describes`);
  }
}

/**
 * Registers the depth limits: an onRoute hook that computes each route's limit into its config
 * (so it must run before the routes are added), and Fastify's JSON parser replaced by one that
 * checks the depth first, then parses with Fastify's own (prototype-poisoning protection kept).
 * Returns the limits by route, for the start-up log and the tests.
 */
export function registerJsonDepthLimits(app: FastifyInstance): Map<string, number> {
  const limits = new Map<string, number>();
  app.addHook('onRoute', function (this: FastifyInstance, route: RouteOptions) {
    const schemas = this.getSchemas() as Record<string, Schema>;
    const resolve: Resolve = (ref) => schemas[ref.replace(/#$/, '')];
    const depth = routeJsonDepth(route.schema?.body, resolve);
    route.config = { ...route.config, maxJsonDepth: depth };
    for (const method of [route.method].flat()) limits.set(`${method} ${route.url}`, depth);
  });

  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req: FastifyRequest, body: Buffer | string, done) => {
    const limit = req.routeOptions.config.maxJsonDepth ?? JSON_DEPTH_WITHOUT_SCHEMA;
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    if (nestsDeeperThan(bytes, limit)) {
      done(new JsonTooDeepError(limit), undefined);
      return;
    }
    parse(req, bytes.toString('utf8'), done);
  });
  return limits;
}
