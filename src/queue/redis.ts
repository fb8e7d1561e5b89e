import { Redis, type RedisOptions } from 'ioredis';

/**
 * `maxRetriesPerRequest: null` is what BullMQ requires for blocking connections; the API uses a
 * bounded retry instead so a request fails fast when Redis is away.
 */
export function createRedis(url: string, purpose: 'worker' | 'client' | 'subscriber', extra: RedisOptions = {}): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: purpose === 'client' ? 2 : null,
    enableReadyCheck: true,
    connectionName: `mnist-${purpose}`,
    ...extra,
  });
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
