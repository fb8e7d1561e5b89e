import multipart from '@fastify/multipart';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyServerOptions } from 'fastify';
import { auth, documentAccess } from './auth.ts';
import { errorHandler } from './error-handler.ts';
import { validatorCompiler, schemaErrorFormatter } from './validation.ts';
import { echoRequestId, logRequest, requestIdOptions } from './request-id.ts';
import { registerBodyLimit } from './body-limit.ts';
import { registerJsonDepthLimits } from './json-depth.ts';
import { lingeringClose, registerLingeringClose } from './lingering-close.ts';
import { clientErrorHandler, requestTimeoutOptions } from './request-timeout.ts';
import { documentResponses, feedbackRequestBodyDoc, openapiDocument, predictRequestBodyDoc } from './openapi.ts';
import { feedbackRoutes } from './routes/feedback.ts';
import { datasetRoutes } from './routes/datasets.ts';
import { evaluateRoutes } from './routes/evaluate.ts';
import { healthRoutes } from './routes/health.ts';
import { modelImportRoutes } from './routes/model-import.ts';
import { jobEventRoutes } from './routes/job-events.ts';
import { jobRoutes } from './routes/jobs.ts';
import { metricsRoutes } from './routes/metrics.ts';
import { modelRoutes } from './routes/models.ts';
import { predictRateLimit } from './rate-limit.ts';
import { predictRoutes } from './routes/predict.ts';
import { uiRoutes } from './routes/ui.ts';
import { ErrorSchema } from '../schemas/common.ts';
import { JobSchema } from '../schemas/jobs.ts';
import { ModelMetadataSchema } from '../schemas/models.ts';
import { DatasetInfoSchema } from '../schemas/datasets.ts';
import { FeedbackItemSchema } from '../schemas/feedback.ts';
import type { ApiServices } from './services.ts';

/** Builds the HTTP app without listening, so tests drive it with `inject`. */
export async function buildApp(services: ApiServices, opts: FastifyServerOptions = {}) {
  const { config } = services;
  // Early refusals are answered, then the rest of the body discarded within these bounds (lingering-close.ts).
  const lingering = lingeringClose({ maxBytes: config.REFUSED_BODY_DRAIN_BYTES, maxMs: config.REFUSED_BODY_DRAIN_MS });
  const app = Fastify({
    bodyLimit: config.BODY_LIMIT_BYTES,
    schemaErrorFormatter,
    ...requestIdOptions,
    ...requestTimeoutOptions(config.REQUEST_TIMEOUT_MS),
    clientErrorHandler: clientErrorHandler(lingering, config.REQUEST_TIMEOUT_MS),
    ...opts,
  }).withTypeProvider<TypeBoxTypeProvider>();

  // Every route but HEAD and the hidden ones (the page's files), for the check that OpenAPI has them all.
  const publicRoutes: { method: string; url: string }[] = [];
  app.addHook('onRoute', (route) => {
    if ((route.schema as { hide?: boolean } | undefined)?.hide) return;
    for (const method of [route.method].flat()) if (method !== 'HEAD') publicRoutes.push({ method, url: route.url });
  });
  app.decorate('publicRoutes', publicRoutes);
  // Before any route: each route's JSON depth limit is computed as it is added.
  app.decorate('jsonDepthLimits', registerJsonDepthLimits(app));
  app.setValidatorCompiler(validatorCompiler());
  // JSON bodies only, unless a route reads its own (predict's PNGs, uploads): text/plain is a 415.
  app.removeContentTypeParser('text/plain');
  app.decorate('services', services);
  app.addHook('onRequest', echoRequestId); // first, so that every answer (401, 429, 404…) carries X-Request-Id
  registerLingeringClose(app, lingering);
  app.addHook('onResponse', logRequest);
  app.setErrorHandler(errorHandler);
  app.addSchema(ErrorSchema);
  app.addSchema(JobSchema);
  app.addSchema(ModelMetadataSchema);
  app.addSchema(DatasetInfoSchema);
  app.addSchema(FeedbackItemSchema);

  await app.register(swagger, {
    openapi: openapiDocument,
    // Shared schemas keep their $id as the component name (Job, Error…), which generated clients use as type names.
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
    transform: ({ schema, url, route }) => {
      const method = Array.isArray(route.method) ? route.method[0] : route.method;
      const bodyDoc = url === '/v1/predict' ? predictRequestBodyDoc : url === '/v1/feedback' && method === 'POST' ? feedbackRequestBodyDoc : undefined;
      const withBody = bodyDoc ? { ...schema, body: bodyDoc } : schema;
      return { schema: documentResponses(documentAccess(withBody, method, url), method, url), url };
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  await app.register(multipart, {
    limits: {
      fileSize: services.config.BODY_LIMIT_BYTES,
      files: services.config.MAX_IMAGES_PER_REQUEST,
      parts: services.config.MAX_IMAGES_PER_REQUEST + 16,
      fields: 16,
    },
  });

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  // Before the routes: auth's onRequest hook runs first, then predict's rate limit (counted per key).
  await app.register(auth, { config: services.config });
  // Then the size (413), before the rate limit counts the request and before any parser looks at the content (415, 400).
  registerBodyLimit(app, config);
  await app.register(predictRateLimit, { config: services.config, redis: services.redis });
  await app.register(metricsRoutes); // first: its hook times every route
  await app.register(healthRoutes);
  await app.register(jobRoutes);
  await app.register(jobEventRoutes);
  await app.register(modelRoutes);
  await app.register(predictRoutes);
  await app.register(datasetRoutes);
  await app.register(feedbackRoutes);
  await app.register(evaluateRoutes);
  await app.register(modelImportRoutes);
  await app.register(uiRoutes);
  return app;
}

export type App = Awaited<ReturnType<typeof buildApp>>;

declare module 'fastify' {
  interface FastifyInstance {
    publicRoutes: { method: string; url: string }[];
    /** The deepest JSON body each route takes, by `METHOD /url` (json-depth.ts). */
    jsonDepthLimits: Map<string, number>;
  }
}
