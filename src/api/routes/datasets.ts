import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { DatasetError, DEFAULT_DATASET_LIMITS } from '../../data/dataset-error.ts';
import { ServiceError } from '../../errors.ts';
import type { LabelledImages } from '../../data/labelled-images.ts';
import { readIdxUpload } from '../../data/idx-upload.ts';
import { readImageFolderZip } from '../../data/image-folder.ts';
import { DatasetListSchema, DatasetParams, type DatasetInfo } from '../../schemas/datasets.ts';
import { readMultipart } from '../multipart.ts';
import { errorResponses } from '../../schemas/common.ts';

const ZIP_TYPES = ['application/zip', 'application/x-zip-compressed'];
const Dataset = Type.Ref('Dataset');

interface Upload {
  data: LabelledImages;
  name: string;
  format: DatasetInfo['format'];
}

/** A raw ZIP body, or multipart with a ZIP file, or multipart with `images` + `labels` IDX files. */
async function readUpload(req: FastifyRequest, maxBytes: number): Promise<Upload> {
  if (!req.isMultipart()) {
    if (!Buffer.isBuffer(req.body) || req.body.length === 0) {
      throw new ServiceError('unsupported', 'send a ZIP (application/zip, or a multipart file) of folders 0-9 with PNG images, or multipart `images` + `labels` IDX files');
    }
    return { data: await readImageFolderZip(req.body), name: 'upload', format: 'imagefolder' };
  }
  const body = await readMultipart(req, { limits: { fileSize: maxBytes, files: 2, fields: 4 } });
  const files = new Map(body.files.map((f) => [f.fieldname, f]));
  let name: string | undefined;
  for (const field of body.fields) if (field.fieldname === 'name') name = String(field.value).slice(0, 200);
  const images = files.get('images');
  const labels = files.get('labels');
  if (images && labels) return { data: readIdxUpload(images.data, labels.data), name: name ?? images.filename, format: 'idx' };
  if (files.size === 1 && !images && !labels) {
    const [zip] = files.values();
    return { data: await readImageFolderZip(zip.data), name: name ?? zip.filename.replace(/\.zip$/i, ''), format: 'imagefolder' };
  }
  throw new DatasetError('multipart uploads take one ZIP file, or two IDX files named `images` and `labels`');
}

export const datasetRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const maxBytes = app.services.config.UPLOAD_MAX_BYTES;
  app.addContentTypeParser(ZIP_TYPES, { parseAs: 'buffer', bodyLimit: maxBytes }, (_req, body, done) => done(null, body));

  app.post('/v1/datasets', {
    bodyLimit: maxBytes,
    config: { accepts: 'application/zip (an ImageFolder ZIP), or multipart/form-data with a ZIP file or an IDX pair named `images` and `labels`' },
    schema: {
      tags: ['datasets'],
      summary: 'Upload a dataset of labelled digits',
      description:
        'An ImageFolder ZIP (folders `0` … `9` of PNG images, optionally inside one top-level folder) as `application/zip` or as a multipart file, ' +
        'or an IDX pair (as MNIST ships, gzipped or not) as multipart files `images` and `labels`; an optional multipart field `name`. ' +
        `Every image is preprocessed exactly as /v1/predict does. Refused with 4xx, and nothing stored: wrong layout, non-PNG files, empty class folders, names that leave the archive, more than ${DEFAULT_DATASET_LIMITS.maxImages} images or archives that expand beyond ${DEFAULT_DATASET_LIMITS.maxTotalBytes} bytes.`,
      response: { 201: Dataset, ...errorResponses(400, 413, 415) },
    },
  }, async (req, reply) => {
    const upload = await readUpload(req, maxBytes);
    const info = await app.services.datasetStore.create(upload.data, { name: upload.name, format: upload.format });
    req.log.info({ datasetId: info.id, count: info.count }, 'dataset stored');
    return reply.status(201).header('location', `/v1/datasets/${info.id}`).send(info);
  });

  app.get('/v1/datasets', {
    schema: { tags: ['datasets'], summary: 'Uploaded datasets, newest first', response: { 200: DatasetListSchema } },
  }, async () => ({ items: await app.services.datasetStore.list() }));

  app.get('/v1/datasets/:id', {
    schema: { tags: ['datasets'], summary: 'One dataset: size, images per class, sha256', params: DatasetParams, response: { 200: Dataset, ...errorResponses(404) } },
  }, async (req) => app.services.datasetStore.get(req.params.id));

  app.delete('/v1/datasets/:id', {
    schema: { tags: ['datasets'], summary: 'Delete a dataset (versions tuned on it keep its id and sha256 in their metadata)', params: DatasetParams, response: { 204: Type.Null(), ...errorResponses(404) } },
  }, async (req, reply) => {
    await app.services.datasetStore.delete(req.params.id);
    return reply.status(204).send(null);
  });
};
