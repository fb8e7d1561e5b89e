import { pino, type DestinationStream, type Logger } from 'pino';

/**
 * Where an API key could turn up in a log line: request headers (should a request, its headers or
 * an error carrying them be logged) and the config. pino replaces them with "[Redacted]".
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'headers.authorization',
  'headers["x-api-key"]',
  'config.API_KEYS',
  'API_KEYS',
];

/**
 * Query parameters that clients (and other services' conventions) use for credentials. Their
 * values never reach a log line, whether or not the API takes keys at all.
 */
export const SECRET_QUERY_PARAMS: ReadonlySet<string> = new Set(['api_key', 'apikey', 'key', 'token', 'access_token']);

const REDACTED = '[Redacted]';

/** A query parameter's name as a server reads it: percent-decoded and `+` as space; matched in lower case. */
function paramName(pair: string): string {
  const eq = pair.indexOf('=');
  const raw = (eq < 0 ? pair : pair.slice(0, eq)).replace(/\+/g, ' ');
  try {
    return decodeURIComponent(raw).trim().toLowerCase();
  } catch {
    return raw.trim().toLowerCase(); // malformed escapes: still compare what is there
  }
}

/** The credential-like parameters of a request URL's query string, by the name the client wrote. */
export function secretQueryParams(url: string): string[] {
  const q = url.indexOf('?');
  if (q < 0) return [];
  return url
    .slice(q + 1)
    .split('&')
    .filter((pair) => SECRET_QUERY_PARAMS.has(paramName(pair)))
    .map((pair) => pair.split('=')[0]);
}

/** `url` with the values of its credential-like query parameters replaced by "[Redacted]"; anything else as it was. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const pairs = url.slice(q + 1).split('&');
  if (!pairs.some((pair) => SECRET_QUERY_PARAMS.has(paramName(pair)))) return url;
  const kept = pairs.map((pair) => (SECRET_QUERY_PARAMS.has(paramName(pair)) ? `${pair.split('=')[0]}=${REDACTED}` : pair));
  return `${url.slice(0, q)}?${kept.join('&')}`;
}

interface RequestLike {
  method?: string;
  url?: string;
  ip?: string;
  socket?: { remoteAddress?: string; remotePort?: number } | null;
}

/**
 * pino serializers, which Fastify's request loggers inherit in place of its own. Fastify's `req`
 * serializer writes the URL as received; these write it with credentials redacted, for a request
 * logged whole (`{ req }`) and for any line that carries a `url` field.
 */
export const serializers = {
  req: (req: RequestLike) => ({
    method: req.method,
    url: typeof req.url === 'string' ? redactUrl(req.url) : req.url,
    remoteAddress: req.ip ?? req.socket?.remoteAddress,
    remotePort: req.socket?.remotePort,
  }),
  url: (url: unknown) => (typeof url === 'string' ? redactUrl(url) : url),
};

export function createLogger(name: string, level: string, destination?: DestinationStream): Logger {
  return pino({ name, level, redact: REDACT_PATHS, serializers }, destination);
}
