import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { ServiceError } from '../../errors.ts';
import { errorResponses, VersionParams } from '../../schemas/common.ts';
import { EvaluateBody } from '../../schemas/evaluation.ts';
import { VersionNotFoundError } from '../../store/model-store.ts';

export const evaluateRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/v1/models/:version/evaluate', {
    schema: {
      tags: ['models'],
      summary: 'Evaluate a version on MNIST test or an uploaded dataset (a job)',
      description:
        'Answers 202 with an evaluate job, run by a worker on a queue of its own (never behind a training run); its `evaluation` has the accuracy, ' +
        'loss, accuracy per digit and the confusion matrix. Poll GET /v1/jobs/{id} (the Location header).',
      params: VersionParams,
      body: EvaluateBody,
      response: { 202: Type.Ref('Job'), ...errorResponses(400, 404) },
    },
  }, async (req, reply) => {
    const { version } = req.params;
    const dataset = req.body.dataset!; // the schema's default fills it in
    const { modelStore, datasetStore, jobs } = app.services;
    if (!(await modelStore.exists(version))) throw new VersionNotFoundError(version);
    if (dataset !== 'mnist') {
      await datasetStore.get(dataset).catch(() => {
        throw new ServiceError('invalid', `dataset: ${dataset} does not exist (upload one with POST /v1/datasets, or use "mnist")`);
      });
    }
    const job = await jobs.enqueue({ type: 'evaluate', version, dataset }, { requestId: req.id });
    return reply.status(202).header('location', `/v1/jobs/${job.id}`).send(job);
  });
};
