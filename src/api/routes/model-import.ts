import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { loadMnist } from '../../data/mnist.ts';
import { evaluateYielding } from '../../ml/evaluate.ts';
import { importLayersModel, ModelImportError } from '../../ml/import-model.ts';
import { serializeModel } from '../../ml/serialize.ts';
import { currentBackendName } from '../../ml/backend.ts';
import { redisKeys } from '../../redis/keys.ts';
import { publishVersion } from '../../redis/model-events.ts';
import { readMultipart } from '../multipart.ts';
import { errorResponses } from '../../schemas/common.ts';

export const modelImportRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/v1/models', {
    config: { accepts: 'multipart/form-data with `model.json` and the weight files it names' },
    schema: {
      tags: ['models'],
      summary: 'Import a TensorFlow.js layers model as a new version',
      description:
        'multipart/form-data with `model.json` and the weight files its manifest names (as tensorflowjs_converter or model.save() write them). ' +
        'The model must load, take [28,28,1] or [784] (a flatten is added in front) and give 10 outputs (a softmax is added after logits). ' +
        'It is scored on the MNIST test set and becomes a version that can be served and fine-tuned.',
      response: { 201: Type.Ref('ModelMetadata'), ...errorResponses(400, 413, 415) },
    },
  }, async (req, reply) => {
    if (!req.isMultipart()) throw new ModelImportError('send model.json and its weight files as multipart/form-data');
    const started = Date.now();
    const files = new Map<string, Buffer>();
    for (const f of (await readMultipart(req, { limits: { fileSize: app.services.config.UPLOAD_MAX_BYTES, files: 32 } })).files) {
      files.set(f.filename.split(/[\\/]/).pop()!, f.data);
    }
    const { model, adapted } = await importLayersModel(files);
    try {
      const test = await loadMnist('test');
      const result = await evaluateYielding(model, test);
      const { modelStore, registry, redis, config } = app.services;
      const version = await modelStore.writeVersion(await serializeModel(model), {
        jobId: null,
        createdAt: new Date().toISOString(),
        architecture: 'imported',
        params: { source: 'import', files: [...files.keys()], adapted },
        dataset: { name: 'none (imported)', trainCount: 0, testCount: test.count, sha256: test.sha256 },
        history: [],
        metrics: { testAccuracy: result.accuracy, testLoss: result.loss, confusionMatrix: result.confusionMatrix },
        backend: currentBackendName() ?? 'unknown',
        durationMs: Date.now() - started,
      });
      req.log.info({ version, adapted, testAccuracy: result.accuracy }, 'model imported');
      await publishVersion(redis, redisKeys(config.QUEUE_PREFIX).modelEvents, version).catch((err) => req.log.warn({ err }, 'could not announce the imported version'));
      void registry.refresh();
      return reply.status(201).header('location', `/v1/models/${version}`).send(await modelStore.readMetadata(version));
    } finally {
      model.dispose();
    }
  });
};
