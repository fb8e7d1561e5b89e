import { Redis, type RedisOptions } from 'ioredis';

/** Longest a command on a `client` connection may take before it fails (Redis hung or unreachable). */
export const CLIENT_COMMAND_TIMEOUT_MS = 3000;
/** Reconnect attempts are spaced out to at most this; connections keep trying for as long as the process lives. */
const MAX_RECONNECT_DELAY_MS = 2000;
/** What `Retry-After` says when Redis is away: about how often the connections retry. */
export const REDIS_RETRY_AFTER_SECONDS = 5;

/**
 * One Redis connection. Every purpose reconnects for ever (at most every 2 s), so the service
 * recovers by itself when Redis comes back.
 *
 * - `worker` / `subscriber`: `maxRetriesPerRequest: null`, what BullMQ requires for blocking
 *   connections; their commands wait for the reconnection.
 * - `client` (requests, BullMQ `Queue`s): fails fast while Redis is away. Commands are queued only
 *   until the first connection (start-up); after that a command sent while disconnected fails at
 *   once (no offline queue, so a request that got a 503 cannot run later behind the client's back),
 *   and one Redis does not answer fails after CLIENT_COMMAND_TIMEOUT_MS.
 */
export function createRedis(url: string, purpose: 'worker' | 'client' | 'subscriber', extra: RedisOptions = {}): Redis {
  const client = purpose === 'client';
  const redis = new Redis(url, {
    maxRetriesPerRequest: client ? 2 : null,
    enableReadyCheck: true,
    connectionName: `mnist-${purpose}`,
    connectTimeout: 5000,
    retryStrategy: (times) => Math.min(times * 100, MAX_RECONNECT_DELAY_MS),
    ...(client && { commandTimeout: CLIENT_COMMAND_TIMEOUT_MS }),
    ...extra,
  });
  if (client && extra.enableOfflineQueue === undefined) {
    redis.once('ready', () => {
      redis.options.enableOfflineQueue = false;
    });
  }
  return redis;
}

/**
 * Logs a connection's outage once when it starts (not on every reconnect attempt) and once when it
 * ends; also keeps ioredis's 'error' events from going unhandled.
 */
export function logConnectionState(redis: Redis, name: string, log: { warn: (obj: object, msg: string) => void; info: (obj: object, msg: string) => void }): void {
  let down = false;
  redis.on('error', (err) => {
    if (down) return;
    down = true;
    log.warn({ connection: name, err: err.message }, 'Redis connection lost; reconnecting');
  });
  redis.on('ready', () => {
    if (!down) return;
    down = false;
    log.info({ connection: name }, 'Redis connection restored');
  });
}

const CONNECTION_ERROR_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
const CONNECTION_ERROR_MESSAGES = [
  "Stream isn't writeable", // ioredis, no offline queue
  'Connection is closed', // ioredis / BullMQ
  'Command timed out', // ioredis commandTimeout
  'max retries per request', // ioredis MaxRetriesPerRequestError
  'LOADING', // Redis restarting, still reading its data
];

/** Whether `err` says Redis could not be reached (rather than a bug or a bad request): the caller should answer 503. */
export function isRedisConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const { code, name, message } = err as Error & { code?: unknown };
  if (typeof code === 'string' && CONNECTION_ERROR_CODES.has(code)) return true;
  if (name === 'MaxRetriesPerRequestError' || name === 'ConnectionClosedError') return true;
  return CONNECTION_ERROR_MESSAGES.some((m) => message.includes(m));
}

/** Fails start-up with a message that says what to do, instead of retrying forever in silence. */
export async function assertRedisReachable(url: string, log: { fatal: (obj: object, msg: string) => void }, timeoutMs = 3000): Promise<void> {
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: timeoutMs });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    await probe.ping();
  } catch (err) {
    log.fatal({ redisUrl: url, err: (err as Error).message }, 'Redis is not reachable: start one (e.g. `redis-server`, or `docker compose up -d redis`) or set REDIS_URL');
    process.exit(1);
  } finally {
    probe.disconnect();
  }
}
