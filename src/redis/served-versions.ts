import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

/** How often each API replica re-writes the version it serves. */
export const SERVED_REPORT_INTERVAL_MS = 2000;
/** A report older than this is from a replica that is gone (or cut off from Redis) and is ignored. */
export const SERVED_REPORT_STALE_MS = 60_000;

/** Redis's clock, in ms: replicas and workers on different machines compare times on one clock. */
async function redisNow(redis: Redis): Promise<number> {
  const [seconds, micros] = await redis.time();
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

interface Report {
  /** The served version and the canary, if any (`version` alone in reports written before canaries). */
  versions: number[];
  at: number;
}

export interface ServedReporter {
  /** Writes the served version now (also done every SERVED_REPORT_INTERVAL_MS). */
  report(): Promise<void>;
  /** Stops reporting and withdraws this replica's entry. */
  stop(): Promise<void>;
}

/**
 * Each API replica keeps its served version in a Redis hash (replica id → version and time), so
 * that model retention, which runs in the workers, never deletes a version some replica serves —
 * including one that is neither the newest nor the pinned (the newest failed to load, or the
 * replica has not switched yet).
 */
export function reportServedVersion(opts: {
  redis: Redis;
  key: string;
  servedVersions: () => number[];
  log: Logger;
  intervalMs?: number;
  replicaId?: string;
}): ServedReporter {
  const { redis, key, log } = opts;
  const replicaId = opts.replicaId ?? randomUUID();
  const intervalMs = opts.intervalMs ?? SERVED_REPORT_INTERVAL_MS;
  let stopped = false;
  let failing = false; // log an outage once, not every interval
  let inflight: Promise<void> = Promise.resolve();
  const write = async () => {
    const versions = opts.servedVersions();
    try {
      if (versions.length === 0) await redis.hdel(key, replicaId);
      else {
        const entry: Report = { versions, at: await redisNow(redis) };
        await redis.multi().hset(key, replicaId, JSON.stringify(entry)).pexpire(key, SERVED_REPORT_STALE_MS * 2).exec();
      }
      failing = false;
    } catch (err) {
      if (!failing) log.warn({ err: (err as Error).message }, 'could not report the served model version');
      failing = true;
    }
  };
  // One write at a time, so a late one cannot land after stop() withdrew the entry.
  let pending = 0;
  const report = () => {
    pending++;
    inflight = inflight.then(() => (stopped ? undefined : write())).finally(() => void pending--);
    return inflight;
  };
  const timer = setInterval(() => pending === 0 && void report(), intervalMs); // no pile-up while Redis is slow
  timer.unref();
  return {
    report,
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      await inflight;
      await redis.hdel(key, replicaId).catch(() => undefined);
    },
  };
}

/** The versions API replicas reported serving within SERVED_REPORT_STALE_MS; stale entries are removed. */
export async function readServedVersions(redis: Redis, key: string, staleMs = SERVED_REPORT_STALE_MS): Promise<number[]> {
  const [entries, now] = await Promise.all([redis.hgetall(key), redisNow(redis)]);
  const versions = new Set<number>();
  const stale: string[] = [];
  for (const [replica, raw] of Object.entries(entries)) {
    let entry: (Partial<Report> & { version?: number }) | undefined;
    try {
      entry = JSON.parse(raw) as Partial<Report>;
    } catch {
      entry = undefined;
    }
    const reported = Array.isArray(entry?.versions) ? entry.versions : [entry?.version];
    if (!entry || !reported.every(Number.isInteger) || typeof entry.at !== 'number' || now - entry.at > staleMs) stale.push(replica);
    else for (const v of reported) versions.add(v!);
  }
  if (stale.length > 0) await redis.hdel(key, ...stale);
  return [...versions].sort((a, b) => b - a);
}
