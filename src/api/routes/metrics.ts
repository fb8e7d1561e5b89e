import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import fp from 'fastify-plugin';

/**
 * `GET /metrics` in Prometheus text format, and the hook that times every request. Wrapped with
 * fastify-plugin so the hook sees the routes of every other plugin, not only its own.
 */
const metricsPlugin: FastifyPluginAsyncTypebox = async (app) => {
  const { metrics } = app.services;

  app.addHook('onResponse', async (req, reply) => {
    // The route pattern (`/v1/jobs/:id`), never the raw URL, keeps label cardinality bounded.
    const labels = { method: req.method, route: req.routeOptions.url ?? '(unmatched)', status_code: String(reply.statusCode) };
    metrics.httpRequests.inc(labels);
    metrics.httpDuration.observe(labels, reply.elapsedTime / 1000);
  });

  app.get('/metrics', {
    schema: {
      tags: ['health'],
      summary: 'Prometheus metrics',
      description:
        'Request count and latency by route and status, predictions by model version, batch sizes, training jobs by state and their durations, and the Node.js process metrics.',
      response: { 200: { description: 'Prometheus text exposition format', content: { 'text/plain': { schema: { type: 'string' } } } } },
    },
  }, async (_req, reply) => {
    reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });
};

export const metricsRoutes = fp(metricsPlugin, { name: 'metrics' });
