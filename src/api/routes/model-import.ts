import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { ServiceError } from '../../errors.ts';
import { checkModelUpload } from '../../ml/model-upload.ts';
import { newJobId } from '../../queue/job-service.ts';
import { errorResponses } from '../../schemas/common.ts';
import { ImportStaging, importStagingDir } from '../../store/import-staging.ts';
import { readMultipart } from '../multipart.ts';

export const modelImportRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/v1/models', {
    config: { accepts: 'multipart/form-data with `model.json` and the weight files it names' },
    bodyLimit: app.services.config.UPLOAD_MAX_BYTES,
    schema: {
      tags: ['models'],
      summary: 'Import a TensorFlow.js layers model as a new version (a job)',
      description:
        'multipart/form-data with `model.json` and exactly the weight files its manifest names (as tensorflowjs_converter or model.save() write them). ' +
        'The upload is checked at once (400 with the reason); a worker then loads it, refuses a model whose layers would cost one image more than ' +
        'IMPORT_MAX_ACTIVATIONS values or IMPORT_MAX_MACS multiply-accumulates, makes it take [28,28,1] (a flatten in front of [784]) and give ' +
        '10 probabilities (a softmax after logits), scores it on the MNIST test set and writes it as a version. Answers 202 with the import job: ' +
        'poll GET /v1/jobs/{id} (the Location header) for its `modelVersion`.',
      response: { 202: Type.Ref('Job'), ...errorResponses(400, 413, 415) },
    },
  }, async (req, reply) => {
    if (!req.isMultipart()) {
      throw new ServiceError('unsupported', `${req.headers['content-type'] ?? 'no content type'} is not accepted here; send model.json and its weight files as multipart/form-data`);
    }
    const files = new Map<string, Buffer>();
    for (const f of (await readMultipart(req, { limits: { fileSize: app.services.config.UPLOAD_MAX_BYTES, files: 32 } })).files) {
      files.set(f.filename.split(/[\\/]/).pop()!, f.data);
    }
    checkModelUpload(files);
    const { jobs, config } = app.services;
    const id = newJobId();
    await new ImportStaging(importStagingDir(config)).write(id, files);
    const job = await jobs.enqueue({ type: 'import', files: [...files.keys()] }, { requestId: req.id }, id);
    req.log.info({ jobId: job.id, files: [...files.keys()] }, 'model import queued');
    return reply.status(202).header('location', `/v1/jobs/${job.id}`).send(job);
  });
};
