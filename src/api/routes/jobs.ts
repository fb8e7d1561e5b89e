import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { JobNotFoundError } from '../../queue/job-service.ts';
import { resolveJobRequest } from '../../queue/resolve-job-request.ts';
import { errorResponses } from '../../schemas/common.ts';
import { JobRequestSchema, JobListSchema, JobParams, ListJobsQuery } from '../../schemas/jobs.ts';

const Job = Type.Ref('Job');

export const jobRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/v1/jobs', {
    schema: {
      tags: ['jobs'],
      summary: 'Queue a training or fine-tuning job',
      description:
        'Answers at once with the queued job; poll GET /v1/jobs/{id} (the Location header) for progress. `{"type":"train"}` alone trains the default CNN to ≥ 99 % test accuracy. ' +
        '`{"type":"finetune","baseModel":"latest","dataset":"<id>"}` adapts a version to an uploaded dataset, freezing its convolutional features and mixing in MNIST so it does not forget; ' +
        '`"dataset":"feedback"` tunes on the corrections (POST /v1/feedback), and the version serves only if it passes the promotion gate.',
      body: JobRequestSchema,
      response: { 202: Job, ...errorResponses(400, 413, 415, 429, 503) },
    },
  }, async (req, reply) => {
    const { modelStore, datasetStore, jobs, config, feedback } = app.services;
    const data = await resolveJobRequest(req.body, { modelStore, datasetStore, maxSeconds: config.JOB_MAX_SECONDS, feedback });
    const job = await jobs.enqueue(data, { requestId: req.id }); // a full queue: QueueFullError, 429 with Retry-After
    req.log.info({ jobId: job.id, params: job.params }, 'job queued'); // the request's child logger adds requestId
    return reply.status(202).header('location', `/v1/jobs/${job.id}`).send(job);
  });

  app.get('/v1/jobs', {
    schema: { tags: ['jobs'], summary: 'List jobs, newest first', querystring: ListJobsQuery, response: { 200: JobListSchema, ...errorResponses(400, 503) } },
  }, async (req) => {
    const { limit, offset } = req.query as Required<typeof req.query>; // the schema's defaults fill them in
    const { items, total } = await app.services.jobs.list(offset, limit);
    return { items, total, limit, offset };
  });

  app.get('/v1/jobs/:id', {
    schema: { tags: ['jobs'], summary: 'A job: state, progress, per-epoch history, resulting model version', params: JobParams, response: { 200: Job, ...errorResponses(404, 503) } },
  }, async (req) => {
    const job = await app.services.jobs.get(req.params.id);
    if (!job) throw new JobNotFoundError(req.params.id);
    return job;
  });

  app.delete('/v1/jobs/:id', {
    schema: {
      tags: ['jobs'],
      summary: 'Cancel a queued or running job',
      description: 'A running job stops within one batch and writes no model. Answers 200 with the cancelled job, or 202 if it is still stopping after a few seconds; 409 if the job had already finished.',
      params: JobParams,
      response: { 200: Job, 202: Job, ...errorResponses(404, 409, 503) },
    },
  }, async (req, reply) => {
    const job = await app.services.jobs.cancel(req.params.id);
    return reply.status(job.state === 'cancelled' ? 200 : 202).send(job);
  });
};
