import { Readable } from 'node:stream';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { zipStream, type ZipFile } from '../../data/zip-stream.ts';
import { ServiceError } from '../../errors.ts';
import type { NamedPng } from '../../image/png.ts';
import { encodeGrayPng } from '../../image/png-encode.ts';
import { CORRECTION_BYTES, type FeedbackStore, type NewCorrection } from '../../redis/feedback-store.ts';
import { errorResponses } from '../../schemas/common.ts';
import { DIGIT_PIXELS, NUM_CLASSES } from '../../schemas/digit.ts';
import { FeedbackAddResponse, FeedbackJsonBody, FeedbackListQuery, FeedbackListSchema, FeedbackParams } from '../../schemas/feedback.ts';
import { fromBase64, preprocessPngs } from '../digit-images.ts';
import { readMultipart } from '../multipart.ts';

const FEEDBACK_SHAPES =
  'JSON {"image": "<base64 PNG>", "label": 7}, {"images": […], "labels": […]} or {"predictionId": "…", "label": 7}; or multipart/form-data with PNG files and a `label` (one file) or `labels` field (comma-separated, one per file)';

/** What a correction request names: PNGs to preprocess, or a recent prediction's image. */
type Sent = { pngs: NamedPng[]; labels: number[] } | { predictionId: string; label: number };

function parseLabel(value: unknown, name: string): number {
  const text = String(value).trim();
  if (!/^[0-9]$/.test(text)) throw new ServiceError('invalid', `${name} must be a digit 0-${NUM_CLASSES - 1}, got ${JSON.stringify(text.slice(0, 20))}`);
  return Number(text);
}

async function readSent(req: FastifyRequest, max: number): Promise<Sent> {
  if (req.isMultipart()) {
    const { files, fields } = await readMultipart(req);
    if (files.length === 0) throw new ServiceError('invalid', `the multipart body holds no file: send ${FEEDBACK_SHAPES}`);
    const unexpected = fields.find((f) => f.fieldname !== 'label' && f.fieldname !== 'labels');
    if (unexpected) throw new ServiceError('invalid', `unexpected field '${unexpected.fieldname}': send ${FEEDBACK_SHAPES}`);
    const labels = fields.flatMap((f) => String(f.value).split(',')).map((v, i) => parseLabel(v, `labels[${i}]`));
    if (labels.length !== files.length) throw new ServiceError('invalid', `${files.length} image(s) but ${labels.length} label(s): send one label per file`);
    if (files.length > max) throw new ServiceError('too-large', `at most ${max} images per request, got ${files.length}`);
    return { pngs: files.map((f, i) => ({ png: f.data, name: `file ${i + 1} (${f.filename || f.fieldname})` })), labels };
  }
  if (req.mediaType !== 'application/json' || !req.body || typeof req.body !== 'object') {
    throw new ServiceError('unsupported', `${req.headers['content-type'] ?? 'no content type'} is not accepted here; send ${FEEDBACK_SHAPES}`);
  }
  const { image, images, predictionId, label, labels } = req.body as FeedbackJsonBody;
  const given = [image, images, predictionId].filter((v) => v !== undefined).length;
  if (given !== 1) throw new ServiceError('invalid', `send exactly one of \`image\`, \`images\` or \`predictionId\`: ${FEEDBACK_SHAPES}`);
  if (images) {
    if (labels === undefined || label !== undefined) throw new ServiceError('invalid', '`images` goes with `labels`, one per image');
    if (labels.length !== images.length) throw new ServiceError('invalid', `${images.length} image(s) but ${labels.length} label(s): send one label per image`);
    if (images.length > max) throw new ServiceError('too-large', `at most ${max} images per request, got ${images.length}`);
    return { pngs: images.map((text, i) => ({ png: fromBase64(text, `images[${i}]`), name: `images[${i}]` })), labels };
  }
  if (label === undefined || labels !== undefined) throw new ServiceError('invalid', `\`${image !== undefined ? 'image' : 'predictionId'}\` goes with \`label\``);
  if (predictionId !== undefined) return { predictionId, label };
  return { pngs: [{ png: fromBase64(image!, 'image'), name: 'image' }], labels: [label] };
}

/** The corrections as an ImageFolder ZIP (`feedback/<label>/<id>.png`), read from Redis a page at a time. */
async function* correctionFiles(feedback: FeedbackStore): AsyncGenerator<ZipFile> {
  for await (const { items, pixels } of feedback.pages()) {
    for (let i = 0; i < items.length; i++) yield { name: `feedback/${items[i].label}/${items[i].id}.png`, data: encodeGrayPng(pixels[i]) };
  }
}

export const feedbackRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { MAX_IMAGES_PER_REQUEST: max, PREDICT_MAX_PIXELS: maxPixels, FEEDBACK_WINDOW_SECONDS: window } = app.services.config;

  app.post('/v1/feedback', {
    config: { accepts: FEEDBACK_SHAPES },
    schema: {
      tags: ['feedback'],
      summary: 'Correct the model: store labelled digits to fine-tune on',
      description:
        `Body: ${FEEDBACK_SHAPES}. Images are preprocessed exactly as /v1/predict does; a \`predictionId\` (from a /v1/predict answer, kept ${window} s, ` +
        'FEEDBACK_WINDOW_SECONDS, on any replica) names the image that was classified. Corrections are deduplicated by their preprocessed pixels: ' +
        'the same image sent again with another label replaces the label, and the change is recorded. They count against DATASETS_MAX_BYTES ' +
        `(${CORRECTION_BYTES} bytes each; 507 when full). Fine-tune on them with POST /v1/jobs {"type": "finetune", "dataset": "feedback"}. ` +
        '201 when at least one correction is new or relabelled, else 200.',
      body: { content: { 'application/json': { schema: FeedbackJsonBody } } },
      response: { 200: FeedbackAddResponse, 201: FeedbackAddResponse, ...errorResponses(400, 404, 413, 415, 507) },
    },
  }, async (req, reply) => {
    const { decodePool, predictionLog, feedback, datasetStore } = app.services;
    const sent = await readSent(req, max);
    let corrections: NewCorrection[];
    if ('predictionId' in sent) {
      const pixels = await predictionLog.lookup(sent.predictionId);
      if (!pixels) {
        throw new ServiceError('not-found', `prediction ${sent.predictionId} is not known here: images are kept for FEEDBACK_WINDOW_SECONDS (${window} s) after their prediction; send the image instead`);
      }
      corrections = [{ pixels, label: sent.label, source: 'prediction' }];
    } else {
      const all = await preprocessPngs(decodePool, sent.pngs, maxPixels);
      corrections = sent.labels.map((label, i) => ({ pixels: all.subarray(i * DIGIT_PIXELS, (i + 1) * DIGIT_PIXELS), label, source: 'image' }));
    }
    const { items, total } = await feedback.add(corrections, {
      reserve: (fresh) => datasetStore.ensureSpace(fresh * CORRECTION_BYTES, fresh === 1 ? 'this correction' : `these ${fresh} corrections`),
    });
    const changed = items.filter((i) => i.status !== 'unchanged').length;
    req.log.info({ corrections: items.length, changed, total }, 'corrections stored');
    if (changed > 0) app.services.onCorrections?.(changed);
    return reply.status(changed > 0 ? 201 : 200).send({ items, total });
  });

  app.get('/v1/feedback', {
    schema: { tags: ['feedback'], summary: 'Corrections, most recently labelled first (paged)', querystring: FeedbackListQuery, response: { 200: FeedbackListSchema } },
  }, async (req) => {
    const offset = req.query.offset ?? 0;
    return { offset, ...(await app.services.feedback.list(offset, req.query.limit ?? 100)) };
  });

  app.get('/v1/feedback.zip', {
    schema: {
      tags: ['feedback'],
      summary: 'Download the corrections as an ImageFolder ZIP',
      description: 'Folders `feedback/0` … `feedback/9` of 28×28 preprocessed PNGs, named by correction id: the layout POST /v1/datasets takes back.',
      response: { 200: { description: 'the ZIP, streamed', content: { 'application/zip': { schema: { type: 'string', format: 'binary' } } } } },
    },
  }, async (_req, reply) =>
    reply
      .type('application/zip')
      .header('content-disposition', 'attachment; filename="feedback.zip"')
      .send(Readable.from(zipStream(correctionFiles(app.services.feedback))) as unknown as string), // a stream; the schema documents bytes
  );

  app.delete('/v1/feedback/:id', {
    schema: { tags: ['feedback'], summary: 'Delete a correction', params: FeedbackParams, response: { 204: Type.Null(), ...errorResponses(404) } },
  }, async (req, reply) => {
    if (!(await app.services.feedback.delete(req.params.id))) throw new ServiceError('not-found', `correction ${req.params.id} does not exist`);
    return reply.status(204).send(null);
  });
};
