import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { REDIS_RETRY_AFTER_SECONDS } from '../../redis/connection.ts';
import { LivenessSchema, ReadinessSchema } from '../../schemas/health.ts';

const REDIS_PING_TIMEOUT_MS = 1000;

export const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/healthz', {
    schema: { tags: ['health'], summary: 'Liveness: the process answers', response: { 200: LivenessSchema } },
  }, async () => ({ status: 'ok' as const }));

  app.get('/readyz', {
    schema: { tags: ['health'], summary: 'Readiness: Redis reachable (503 with Retry-After otherwise); says whether a model is loaded', response: { 200: ReadinessSchema, 503: ReadinessSchema } },
  }, async (_req, reply) => {
    const { redis, registry } = app.services;
    const redisOk = await Promise.race([
      redis.ping().then(() => true, () => false),
      new Promise<boolean>((r) => setTimeout(r, REDIS_PING_TIMEOUT_MS, false).unref()),
    ]);
    const served = registry.servedVersion;
    if (!redisOk) reply.header('retry-after', String(REDIS_RETRY_AFTER_SECONDS));
    return reply.status(redisOk ? 200 : 503).send({
      status: redisOk ? 'ready' : 'unavailable',
      redis: redisOk,
      modelLoaded: served !== undefined,
      servedVersion: served ?? null,
    });
  });
};
