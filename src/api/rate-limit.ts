import { createRequire } from 'node:module';
import rateLimit, { normalizeIP, type FastifyRateLimitStore } from '@fastify/rate-limit';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Redis } from 'ioredis';
import type { Config } from '../config.ts';

/** Longer than this for Redis's count and predict goes on unlimited: a slow Redis must not slow predictions. */
const REDIS_TIMEOUT_MS = 250;
/** At most one "not limiting" warning per this, however long Redis stays away. */
const WARN_EVERY_MS = 60_000;

// The plugin's own Redis store (an atomic Lua INCR + PEXPIRE), wrapped below; it ships no types of its own.
type RedisStoreCtor = new (continueExceeding: boolean, exponentialBackoff: boolean, redis: Redis, key: string) => FastifyRateLimitStore;
const RedisStore = createRequire(import.meta.url)('@fastify/rate-limit/store/RedisStore.js') as RedisStoreCtor;

/**
 * The Redis store, failing at once when the connection is not ready and after REDIS_TIMEOUT_MS
 * otherwise, instead of waiting in ioredis's offline queue for reconnects. With `skipOnError` the
 * plugin then lets the request through: predict keeps answering while Redis is away.
 */
class FailFastStore implements FastifyRateLimitStore {
  constructor(
    private readonly inner: FastifyRateLimitStore,
    private readonly redis: Redis,
    private readonly onSkip: (reason: string) => void,
  ) {}

  incr(key: string, cb: (err: Error | null, result?: { current: number; ttl: number }) => void, timeWindow: number, max: number): void {
    if (this.redis.status !== 'ready') {
      this.onSkip(`Redis is ${this.redis.status}`);
      return cb(new Error('Redis is not ready'));
    }
    let settled = false;
    const timer = setTimeout(() => {
      settled = true;
      this.onSkip('Redis did not answer in time');
      cb(new Error('Redis did not answer in time'));
    }, REDIS_TIMEOUT_MS);
    this.inner.incr(key, (err, result) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) this.onSkip(err.message);
      cb(err, result);
    }, timeWindow, max);
  }

  child(routeOptions: Parameters<FastifyRateLimitStore['child']>[0]): FastifyRateLimitStore {
    return new FailFastStore(this.inner.child(routeOptions), this.redis, this.onSkip);
  }
}

/** A client: its API key when it sent a valid one (by digest, never the key), else its address (IPv6 by /64). */
const clientOf = (req: FastifyRequest) => (req.caller ? `key:${req.caller.keyId}` : `ip:${normalizeIP(req.ip)}`);

/**
 * `PREDICT_RATE_LIMIT` requests per client per `PREDICT_RATE_WINDOW_SECONDS` on `POST /v1/predict`,
 * counted in Redis so every replica shares one count; beyond it 429 with `Retry-After`. Registered
 * after auth, so a keyed client is counted by its key and refused requests are not counted.
 */
const predictRateLimitPlugin: FastifyPluginAsync<{ config: Config; redis: Redis }> = async (app, { config, redis }) => {
  const max = config.PREDICT_RATE_LIMIT;
  if (max === 0) return;
  const windowSeconds = config.PREDICT_RATE_WINDOW_SECONDS;

  // Before the plugin registers its own onRoute hook, which reads this config.
  app.addHook('onRoute', (route) => {
    // Corrections too, counted apart: they are what a hostile client would flood with wrong labels.
    if ((route.url === '/v1/predict' || route.url === '/v1/feedback') && route.method === 'POST') route.config = { ...route.config, rateLimit: { max, timeWindow: windowSeconds * 1000 } };
  });

  let lastWarning = -Infinity;
  const onSkip = (reason: string) => {
    if (Date.now() - lastWarning < WARN_EVERY_MS) return;
    lastWarning = Date.now();
    app.log.warn({ reason }, 'predict rate limit not applied: Redis unavailable');
  };
  // Under the deployment's key prefix, like the queue: deployments sharing a Redis count apart.
  const nameSpace = `${config.QUEUE_PREFIX}:rate-limit:`;
  class Store extends FailFastStore {
    constructor() {
      super(new RedisStore(false, false, redis, nameSpace), redis, onSkip);
    }
  }

  await app.register(rateLimit, {
    global: false,
    store: Store,
    skipOnError: true,
    keyGenerator: clientOf,
    errorResponseBuilder: (req, ctx) =>
      Object.assign(new Error(`at most ${max} ${req.routeOptions.url === '/v1/feedback' ? 'correction requests' : 'predictions'} per ${windowSeconds} s per client; retry in ${Math.max(1, Math.ceil(ctx.ttl / 1000))} s`), { statusCode: ctx.statusCode }),
  });
};

export const predictRateLimit = fp(predictRateLimitPlugin, { name: 'predict-rate-limit', dependencies: ['auth'] });
