import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { REDIS_RETRY_AFTER_SECONDS } from '../../queue/redis.ts';

const REDIS_PING_TIMEOUT_MS = 1000;

export const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/healthz', {
    schema: { tags: ['health'], summary: 'Liveness: the process answers', response: { 200: Type.Object({ status: Type.Literal('ok') }) } },
  }, async () => ({ status: 'ok' as const }));

  const Readiness = Type.Object({
    status: Type.Union([Type.Literal('ready'), Type.Literal('unavailable')]),
    redis: Type.Boolean({ description: 'Redis answered a PING' }),
    modelLoaded: Type.Boolean({ description: 'a model version is loaded for /v1/predict' }),
    servedVersion: Type.Union([Type.Integer(), Type.Null()]),
  });
  app.get('/readyz', {
    schema: { tags: ['health'], summary: 'Readiness: Redis reachable (503 with Retry-After otherwise); says whether a model is loaded', response: { 200: Readiness, 503: Readiness } },
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
