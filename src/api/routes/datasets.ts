import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { DatasetError, DEFAULT_DATASET_LIMITS } from '../../data/dataset-error.ts';
import { ServiceError } from '../../errors.ts';
import type { DatasetUpload } from '../../serving/decode-pool.ts';
import { DatasetListSchema, DatasetParams, type DatasetInfo } from '../../schemas/datasets.ts';
import { readMultipart, type UploadedFile } from '../multipart.ts';
import { errorResponses } from '../../schemas/common.ts';

const ZIP_TYPES = ['application/zip', 'application/x-zip-compressed'];
const Dataset = Type.Ref('Dataset');
const MULTIPART_SHAPE = 'multipart uploads take one ZIP file, or two IDX files named `images` and `labels`, and optionally a field `name`';

interface Upload {
  files: DatasetUpload;
  name: string;
  format: DatasetInfo['format'];
}

/** Which files a multipart upload holds, refusing any part that is not one of them. */
function multipartUpload(files: UploadedFile[], name: string | undefined): Upload {
  const images = files.find((f) => f.fieldname === 'images');
  const labels = files.find((f) => f.fieldname === 'labels');
  if (files.length === 1 && !images && !labels) {
    const [zip] = files;
    return { files: { zip: zip.data }, name: name ?? zip.filename.replace(/\.zip$/i, ''), format: 'imagefolder' };
  }
  if (files.length === 2 && images && labels) return { files: { images: images.data, labels: labels.data }, name: name ?? images.filename, format: 'idx' };
  if (files.length === 1) throw new DatasetError(`the file '${files[0].fieldname}' comes without its pair: ${MULTIPART_SHAPE}`);
  const unexpected = files.find((f) => f.fieldname !== 'images' && f.fieldname !== 'labels') ?? files[1];
  throw new DatasetError(`unexpected file part '${unexpected.fieldname}': ${MULTIPART_SHAPE}`);
}

/** A raw ZIP body, or multipart with a ZIP file, or multipart with `images` + `labels` IDX files. */
async function readUpload(req: FastifyRequest, maxBytes: number): Promise<Upload> {
  if (!req.isMultipart()) {
    if (!Buffer.isBuffer(req.body) || req.body.length === 0) {
      throw new ServiceError('unsupported', 'send a ZIP (application/zip, or a multipart file) of folders 0-9 with PNG images, or multipart `images` + `labels` IDX files');
    }
    return { files: { zip: req.body }, name: 'upload', format: 'imagefolder' };
  }
  const body = await readMultipart(req, { limits: { fileSize: maxBytes, files: 2, fields: 4 } });
  const [field, other] = body.fields;
  if (field && (field.fieldname !== 'name' || other)) throw new DatasetError(`unexpected field '${(field.fieldname !== 'name' ? field : other).fieldname}': ${MULTIPART_SHAPE}`);
  if (body.files.length === 0) throw new DatasetError(`the multipart body holds no file: ${MULTIPART_SHAPE}`);
  return multipartUpload(body.files, field ? String(field.value).slice(0, 200) : undefined);
}

export const datasetRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { UPLOAD_MAX_BYTES: maxBytes, UPLOAD_MAX_PIXELS: maxPixels } = app.services.config;
  const limits = { ...DEFAULT_DATASET_LIMITS, maxPixels };
  app.addContentTypeParser(ZIP_TYPES, { parseAs: 'buffer', bodyLimit: maxBytes }, (_req, body, done) => done(null, body));

  app.post('/v1/datasets', {
    bodyLimit: maxBytes,
    config: { accepts: 'application/zip (an ImageFolder ZIP), or multipart/form-data with a ZIP file or an IDX pair named `images` and `labels`' },
    schema: {
      tags: ['datasets'],
      summary: 'Upload a dataset of labelled digits',
      description:
        'An ImageFolder ZIP (folders `0` … `9` of PNG images, optionally inside one top-level folder) as `application/zip` or as a multipart file, ' +
        'or an IDX pair (as MNIST ships, gzipped or not) as multipart files `images` and `labels`; an optional multipart field `name`, and no other parts. ' +
        `Every image is preprocessed exactly as /v1/predict does. Refused with 4xx, and nothing stored: wrong layout, non-PNG files, empty class folders, names that leave the archive, more than ${limits.maxImages} images, ` +
        `archives that expand beyond ${limits.maxTotalBytes} bytes or whose PNGs decode to more than ${maxPixels} pixels in all (read from their headers before decoding). ` +
        'The same content (sha256 of the preprocessed images and labels) as a stored dataset is not stored again: the answer is that dataset, with 200. ' +
        'All datasets together may take DATASETS_MAX_BYTES on disk: an upload that does not fit is refused with 507 until datasets are deleted.',
      response: { 200: Dataset, 201: Dataset, ...errorResponses(400, 413, 415, 507) },
    },
  }, async (req, reply) => {
    const upload = await readUpload(req, maxBytes);
    const data = await app.services.decodePool.readDataset(upload.files, limits);
    const { dataset, created } = await app.services.datasetStore.add(data, { name: upload.name, format: upload.format });
    req.log.info({ datasetId: dataset.id, count: dataset.count, created }, created ? 'dataset stored' : 'dataset already stored');
    return reply.status(created ? 201 : 200).header('location', `/v1/datasets/${dataset.id}`).send(dataset);
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
