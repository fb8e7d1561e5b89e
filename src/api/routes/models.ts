import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { MODEL_JSON } from '../../ml/model-files.ts';
import { VersionNotFoundError } from '../../store/model-store.ts';
import { errorResponses, VersionParams } from '../../schemas/common.ts';
import { ModelFileParams, ModelListSchema, PinBody, ServingStatusSchema } from '../../schemas/models.ts';
import { ServiceError } from '../../errors.ts';
import { chooseServing, scoredVersion, servingReason } from '../../serving/serving-policy.ts';

export const modelRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/v1/models', {
    schema: { tags: ['models'], summary: 'Model versions, newest first, with test accuracy and which one is served', response: { 200: ModelListSchema } },
  }, async () => {
    const { modelStore, registry, config } = app.services;
    const versions = await modelStore.listVersions();
    // A version deleted by retention between the listing and the read is left out, not a 404.
    const read = await Promise.all(versions.map((v) => modelStore.readMetadata(v).catch((err) => (err instanceof VersionNotFoundError ? undefined : Promise.reject(err)))));
    const metas = read.filter((m) => m !== undefined);
    const choice = chooseServing(metas.map(scoredVersion), config.SERVING_POLICY, config.PROMOTION_TOLERANCE);
    const pinnedVersion = registry.pinnedVersion ?? null;
    const servedVersion = registry.servedVersion ?? pinnedVersion ?? choice.candidates[0] ?? null;
    const canary = registry.canarySetting ?? null;
    return {
      servedVersion,
      pinnedVersion,
      canary,
      servingPolicy: config.SERVING_POLICY,
      items: metas.map((m) => ({
        version: m.version,
        createdAt: m.createdAt,
        architecture: m.architecture,
        jobId: m.jobId,
        testAccuracy: m.metrics.testAccuracy,
        served: m.version === servedVersion,
        servingReason: servingReason(choice, m.version, servedVersion, pinnedVersion, canary),
      })),
    };
  });

  app.get('/v1/models/serving', {
    schema: { tags: ['models'], summary: 'Which version is served, pinned, newest and loaded', response: { 200: ServingStatusSchema } },
  }, async () => app.services.registry.status());

  app.put('/v1/models/serving', {
    schema: {
      tags: ['models'],
      summary: 'Pin the served version (roll back or forward)',
      description:
        'Every API replica serves `version` until `DELETE /v1/models/serving`, new versions included. The pin is kept in Redis, so replicas agree ' +
        'and it survives restarts. With `canary`, that version answers `canary.fraction` of the predict requests that name no `?version`: ' +
        "chosen by a hash of the caller's API key when it sends one, else of the `X-Request-Id` it sends, else at random per request, so a keyed client sees one version. " +
        'Without `canary`, a running canary ends (the body states the whole set-up). Every response names its `modelVersion`, and `/metrics` splits predictions, ' +
        'latency and confidence by version. The versions are loaded and warmed up before the answer: one that does not exist is 404, one that cannot be served ' +
        '(fails to load or to run) is 409 and nothing changes.',
      body: PinBody,
      response: { 200: ServingStatusSchema, ...errorResponses(400, 404, 409) },
    },
  }, async (req) => app.services.registry.pin(req.body.version, req.body.canary));

  app.post('/v1/models/serving/canary/promote', {
    schema: {
      tags: ['models'],
      summary: 'Promote the canary: it becomes the pinned, served version on every replica',
      response: { 200: ServingStatusSchema, ...errorResponses(404, 409) },
    },
  }, async () => app.services.registry.promoteCanary());

  app.delete('/v1/models/serving/canary', {
    schema: { tags: ['models'], summary: 'End the canary: every request goes to the served version again', response: { 200: ServingStatusSchema } },
  }, async () => app.services.registry.endCanary());

  app.delete('/v1/models/serving', {
    schema: {
      tags: ['models'],
      summary: 'Unpin: SERVING_POLICY chooses the served version again',
      response: { 200: ServingStatusSchema },
    },
  }, async () => app.services.registry.unpin());

  app.get('/v1/models/:version', {
    schema: { tags: ['models'], summary: "A version's metadata: params, dataset, history, metrics, lineage", params: VersionParams, response: { 200: Type.Ref('ModelMetadata'), ...errorResponses(400, 404) } },
  }, async (req) => app.services.modelStore.readMetadata(req.params.version));

  app.get('/v1/models/:version/:file', {
    schema: {
      tags: ['models'],
      summary: 'The files of a version: TensorFlow.js layers, and its ONNX copy',
      description: "`model.json` and the weight files it names, so `tf.loadLayersModel('<base>/v1/models/3/model.json')` loads the model in a browser (CORS allowed); and `model.onnx` when the version has one (its parity with the TF.js files is in the version's `onnx` metadata): input `image` float32 [n, 28, 28, 1] in [0, 1], output `probabilities` [n, 10], for ONNX Runtime anywhere.",
      params: ModelFileParams,
      response: { 200: { description: 'the file', content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } }, ...errorResponses(400, 404) },
    },
  }, async (req, reply) => {
    const { version, file } = req.params;
    const { modelStore } = app.services;
    const allowed = await modelStore.servableFiles(version);
    if (!allowed.has(file)) throw new ServiceError('not-found', `version ${version} has no file ${file}`);
    // Opened before answering, so a version deleted by retention meanwhile is a 404, not a broken stream.
    const handle = await open(join(modelStore.versionDir(version), file)).catch((err: NodeJS.ErrnoException) => {
      throw err.code === 'ENOENT' ? new VersionNotFoundError(version) : err;
    });
    // Versions are immutable, so clients and proxies may cache them for good.
    return reply
      .header('access-control-allow-origin', '*')
      .header('cache-control', 'public, max-age=31536000, immutable')
      .type(file === MODEL_JSON ? 'application/json' : 'application/octet-stream')
      .send(handle.createReadStream() as unknown as string); // a stream; the schema documents bytes
  });
};
