import { loadModel } from '../../ml/load-model.ts';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { loadMnist } from '../../data/mnist.ts';
import { evaluateYielding, perClassAccuracy } from '../../ml/evaluate.ts';
import { filesToArtifacts } from '../../ml/model-files.ts';
import { errorResponses, VersionParams } from '../../schemas/common.ts';
import { EvaluateBody, EvaluationSchema } from '../../schemas/evaluation.ts';

export const evaluateRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/v1/models/:version/evaluate', {
    schema: {
      tags: ['models'],
      summary: 'Evaluate a version on MNIST test or an uploaded dataset',
      params: VersionParams,
      body: EvaluateBody,
      response: { 200: EvaluationSchema, ...errorResponses(400, 404) },
    },
  }, async (req) => {
    const { version } = req.params;
    const dataset = req.body.dataset!; // the schema's default fills it in
    const { modelStore, datasetStore } = app.services;
    const files = await modelStore.readModelFiles(version);
    const data = dataset === 'mnist' ? await loadMnist('test') : await datasetStore.load(dataset);
    const model = await loadModel(filesToArtifacts(files));
    try {
      const result = await evaluateYielding(model, data);
      return { version, dataset, count: result.count, accuracy: result.accuracy, loss: result.loss, perClassAccuracy: perClassAccuracy(result.confusionMatrix), confusionMatrix: result.confusionMatrix };
    } finally {
      model.dispose();
    }
  });
};
