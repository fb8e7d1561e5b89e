import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { Type } from 'typebox';
import type { Config } from '../config.ts';
import { secretQueryParams } from '../logger.ts';

export const SCOPES = ['predict', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/**
 * What a route asks of the caller: nothing, a key with the `predict` scope, any valid key (reads),
 * or an `admin` key. `admin` keys pass everywhere; `predict` keys pass `predict` and `read`.
 */
export type Access = 'open' | 'predict' | 'read' | 'admin';

/** Which key a request was let in with: the scope and a short digest that names the key without revealing it. */
export interface Caller {
  scope: Scope;
  keyId: string;
}

interface StoredKey {
  digest: Buffer;
  scope: Scope;
  keyId: string;
}

const REALM = 'mnist-service';
const KEY_ID_HEX = 12;

const digest = (key: string) => createHash('sha256').update(key, 'utf8').digest();

/**
 * The policy, one function for the hook and the OpenAPI document alike. Decided by the route's
 * pattern and method, not by each route opting in, so a new `/v1` mutation is `admin` by default.
 * Outside `/v1` (health, metrics, docs, the web page and its files) nothing needs a key: health
 * checks and scrapers carry none, and the page must load before anyone can type a key into it.
 * An unmatched URL is `open` so it stays a 404.
 */
export function routeAccess(method: string, url: string | undefined, predictAuth: Config['PREDICT_AUTH']): Access {
  if (url === undefined || !url.startsWith('/v1/')) return 'open';
  // A correction is the other half of a prediction: whoever may predict may correct.
  if (url === '/v1/predict' || (url === '/v1/feedback' && method === 'POST')) return predictAuth === 'open' ? 'open' : 'predict';
  return method === 'GET' || method === 'HEAD' ? 'read' : 'admin';
}

const allows = (scope: Scope, access: Access) => access === 'open' || scope === 'admin' || access !== 'admin';

/**
 * `API_KEYS` (`key:scope,key:scope`, already checked by the config schema) as digests. Only the
 * digests are kept: equal length, so `timingSafeEqual` applies, and the keys themselves are not
 * held where a heap dump or a stray log line could show them.
 */
export function parseApiKeys(value: string): StoredKey[] {
  return value
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '')
    .map((entry) => {
      const at = entry.lastIndexOf(':');
      const d = digest(entry.slice(0, at));
      return { digest: d, scope: entry.slice(at + 1) as Scope, keyId: d.toString('hex').slice(0, KEY_ID_HEX) };
    });
}

/**
 * The configured key equal to `presented`, compared in constant time: every stored digest is
 * compared (no early exit), so the time taken says nothing about which key, if any, was close.
 */
export function findKey(keys: readonly StoredKey[], presented: string): Caller | undefined {
  const d = digest(presented);
  let found: StoredKey | undefined;
  for (const key of keys) if (timingSafeEqual(key.digest, d) && !found) found = key;
  return found && { scope: found.scope, keyId: found.keyId };
}

/** The key of a request: `Authorization: Bearer <key>`, else `X-API-Key: <key>`; '' when the header is there but empty. */
export function presentedKey(req: FastifyRequest): string | undefined {
  const auth = req.headers.authorization;
  if (auth !== undefined) {
    const m = /^Bearer[ \t]+(\S*)[ \t]*$/i.exec(auth);
    if (m) return m[1];
  }
  const header = req.headers['x-api-key'];
  if (typeof header === 'string') return header.trim();
  return auth === undefined ? undefined : ''; // another scheme (Basic …): present but not a key we take
}

function deny(reply: FastifyReply, statusCode: 401 | 403, challenge: string, message: string) {
  return reply
    .status(statusCode)
    .header('www-authenticate', `Bearer realm="${REALM}"${challenge}`)
    .send({ statusCode, error: statusCode === 401 ? 'Unauthorized' : 'Forbidden', message });
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The key this request was let in with; undefined on open routes called without one, and when auth is off. */
    caller?: Caller;
  }
}

/**
 * API keys (`API_KEYS`), checked in `onRequest`, so a request without the right key is refused
 * before its body (up to `UPLOAD_MAX_BYTES`) is read. A missing or unknown key is 401 with a
 * `WWW-Authenticate` challenge; a valid key without the scope is 403. With no keys configured every
 * route is open (the development default) and a warning says so at start-up.
 */
const authPlugin: FastifyPluginAsync<{ config: Config }> = async (app, { config }) => {
  const keys = parseApiKeys(config.API_KEYS);
  app.decorateRequest('caller', undefined);
  if (keys.length === 0) {
    app.log.warn('API_KEYS is empty: authentication is off and every route is open to anyone who can reach the API');
    return;
  }
  const count = (scope: Scope) => keys.filter((k) => k.scope === scope).length;
  app.log.info({ adminKeys: count('admin'), predictKeys: count('predict'), predictAuth: config.PREDICT_AUTH }, 'API keys required');

  app.addHook('onRequest', async (req, reply) => {
    // A key in the URL is already compromised: proxies, browsers' history and access logs keep
    // URLs. Refused on every route, whether the key is valid or not, so that no client comes to
    // depend on it working; the message says where the key goes instead.
    const inQuery = secretQueryParams(req.url);
    if (inQuery.length > 0) {
      return deny(reply, 401, ', error="invalid_request"', `do not send an API key in the URL (\`${inQuery[0].slice(0, 40)}\` in the query string): URLs are logged and cached; send it as \`Authorization: Bearer <key>\` or \`X-API-Key: <key>\` instead`);
    }
    const access = routeAccess(req.method, req.routeOptions.url, config.PREDICT_AUTH);
    const presented = presentedKey(req);
    const caller = presented ? findKey(keys, presented) : undefined;
    // On an open route a key is only noted (open predict counts a keyed client by its key); a bad
    // one is ignored, so a proxy's own Authorization header cannot break health checks.
    if (access === 'open') {
      req.caller = caller;
      return;
    }
    if (presented === undefined) return deny(reply, 401, '', 'this route needs an API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`');
    if (!caller) return deny(reply, 401, ', error="invalid_token"', 'the API key is not valid');
    req.caller = caller;
    if (!allows(caller.scope, access)) {
      return deny(reply, 403, ', error="insufficient_scope", scope="admin"', `this API key has the \`${caller.scope}\` scope; ${req.method} ${req.routeOptions.url} needs \`admin\``);
    }
  });
};

export const auth = fp(authPlugin, { name: 'auth' });

// ---- OpenAPI ---------------------------------------------------------------------------------

export const securitySchemes = {
  bearerAuth: {
    type: 'http',
    scheme: 'bearer',
    description: 'An API key from `API_KEYS`, as `Authorization: Bearer <key>`. Only checked when the server has keys configured.',
  },
  apiKeyHeader: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'The same API key, as `X-API-Key: <key>`.' },
} as const;

const KEYED = [{ bearerAuth: [] }, { apiKeyHeader: [] }];
const NOTE: Record<Exclude<Access, 'open'>, string> = {
  predict:
    'Auth: a `predict` or `admin` key when the server sets `PREDICT_AUTH=key` (the default once `API_KEYS` is set); open with `PREDICT_AUTH=open`. ' +
    'With `PREDICT_RATE_LIMIT` set, each client (its key, else its address) gets that many requests per window, then 429 with `Retry-After`.',
  read: 'Auth: any valid key (`predict` or `admin`) when the server has `API_KEYS`.',
  admin: 'Auth: an `admin` key when the server has `API_KEYS`.',
};

interface RouteSchema {
  hide?: boolean;
  description?: string;
  response?: unknown;
}

/**
 * A route's schema as the OpenAPI document shows it: the security it takes (so Swagger UI has an
 * Authorize button), a line saying which key, and the 401/403 answers. The document describes the
 * policy whatever the server's config, so the committed `openapi/openapi.json` is one file.
 * Predict lists an empty requirement too: with `PREDICT_AUTH=open` it takes no key.
 */
export function documentAccess<S extends object | undefined>(schema: S, method: string | string[], url: string): S {
  const s = schema as RouteSchema | undefined;
  if (!s || s.hide) return schema;
  const access = routeAccess(Array.isArray(method) ? method[0] : method, url, 'key');
  if (access === 'open') return schema;
  const error = Type.Ref('Error');
  return {
    ...s,
    security: access === 'predict' ? [...KEYED, {}] : KEYED,
    description: s.description ? `${s.description}\n\n${NOTE[access]}` : NOTE[access],
    response: { ...(s.response as object | undefined), 401: error, ...(access === 'predict' ? { 429: error } : { 403: error }) },
  } as S;
}
