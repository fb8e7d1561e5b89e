import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import type { NamedPng } from '../../image/png.ts';
import { fromBase64, preprocessPngs } from '../digit-images.ts';
import { toMnistInput } from '../../image/preprocess.ts';
import { DIGIT_PIXELS, DIGIT_SIZE } from '../../schemas/digit.ts';
import { readMultipart } from '../multipart.ts';
import { errorResponses } from '../../schemas/common.ts';
import { PredictJsonBody, PredictQuery, PredictResponse } from '../../schemas/predict.ts';
import { ServiceError } from '../../errors.ts';
import { REQUEST_ID_HEADER } from '../request-id.ts';
import { formatCount } from '../../format.ts';

const RAW_IMAGE_TYPES = ['image/png', 'application/octet-stream'];
const PREDICT_ACCEPTS = 'the image as image/png, several as multipart/form-data, or JSON {"images": [base64 PNG…]} / {"pixels": [[784 numbers]…]}';

/** The images of a predict request: PNGs to decode, or 28×28 pixel arrays (JSON `pixels`). */
type Inputs = { pngs: NamedPng[] } | { pixels: number[][] };

/** The images of a predict request, from a raw PNG body, a multipart body or a JSON body. */
async function readInputs(req: FastifyRequest, max: number): Promise<Inputs> {
  if (req.isMultipart()) {
    const { files, fields } = await readMultipart(req);
    if (fields.length > 0) throw new ServiceError('invalid', `the multipart field '${fields[0].fieldname}' is not a file; send each image as a file part, and nothing else`);
    if (files.length === 0) throw new ServiceError('invalid', 'the multipart body holds no file; send each image as a file part');
    return { pngs: files.map((f, i) => ({ png: f.data, name: `file ${i + 1} (${f.filename || f.fieldname})` })) };
  }
  if (Buffer.isBuffer(req.body)) {
    if (req.body.length === 0) throw new ServiceError('invalid', 'the body is empty; send a PNG image');
    return { pngs: [{ png: req.body, name: 'the image' }] };
  }
  if (req.mediaType === 'application/json' && req.body && typeof req.body === 'object') {
    const { images, pixels } = req.body as PredictJsonBody;
    if ((images === undefined) === (pixels === undefined)) {
      throw new ServiceError('invalid', 'the JSON body needs exactly one of `images` (base64 PNGs) or `pixels` (arrays of 784 gray levels)');
    }
    const count = (images ?? pixels)!.length;
    if (count > max) throw new ServiceError('too-large', `at most ${max} images per request, got ${count}`);
    if (images) return { pngs: images.map((text, i) => ({ png: fromBase64(text, `images[${i}]`), name: `images[${i}]` })) };
    return { pixels: pixels! };
  }
  throw new ServiceError('unsupported', `${req.headers['content-type'] ?? 'no content type'} is not accepted here; send ${PREDICT_ACCEPTS}`);
}

/** JSON pixel arrays are 784 values each: preprocessed here, in microseconds. */
function preprocessPixels(pixels: number[][]): Uint8Array {
  const out = new Uint8Array(pixels.length * DIGIT_PIXELS);
  pixels.forEach((p, i) => out.set(toMnistInput({ width: DIGIT_SIZE, height: DIGIT_SIZE, data: Uint8Array.from(p, (v) => Math.round(v)) }), i * DIGIT_PIXELS));
  return out;
}

/** What a canary's share is drawn by: the caller's API key, else the X-Request-Id it sent (see routesToCanary). */
function canaryKey(req: FastifyRequest): string | undefined {
  if (req.caller) return `key:${req.caller.keyId}`;
  return req.headers[REQUEST_ID_HEADER] === req.id ? `id:${req.id}` : undefined;
}

/** How long an answer waits for Redis to take its images (for corrections) after the model has answered. */
const RECORD_WAIT_MS = 50;

const PENDING = Symbol('pending');

/** The promise's value if it settles within `ms`, else undefined (it is not cancelled, only not waited for). */
async function settleWithin<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  // Usually settled already (Redis answers before the model does): no timer for those.
  const now = await Promise.race([promise, Promise.resolve(PENDING)]);
  if (now !== PENDING) return now as T;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

export const predictRoutes: FastifyPluginAsyncTypebox = async (app) => {
  // Any image type is read as bytes so that a JPEG gets a clear "only PNG" 415 rather than a generic one.
  const asBuffer = (_req: unknown, body: Buffer | string, done: (err: null, body: Buffer | string) => void) => done(null, body);
  app.addContentTypeParser(RAW_IMAGE_TYPES, { parseAs: 'buffer' }, asBuffer);
  app.addContentTypeParser(/^image\/.*/, { parseAs: 'buffer' }, asBuffer);

  const { MAX_IMAGES_PER_REQUEST: max, PREDICT_MAX_PIXELS: maxPixels, PREDICT_MAX_QUEUED_IMAGES: maxQueued } = app.services.config;

  app.post('/v1/predict', {
    config: { accepts: PREDICT_ACCEPTS },
    schema: {
      tags: ['predict'],
      summary: 'Classify digit images',
      description:
        `Body: one PNG (\`image/png\`); \`multipart/form-data\` with up to ${max} PNG files (and no other parts); or \`application/json\` with ` +
        '`{"images": [base64 PNG…]}` or `{"pixels": [[784 gray levels]…]}`. Every image is preprocessed as MNIST was made: ' +
        'colour → luminance (BT.601), transparent pixels → background, a light background inverted, background gradient and noise removed, ' +
        'cropped to the ink, scaled to fit 20×20 keeping the aspect ratio and placed in 28×28 by centre of mass. ' +
        'A 28×28 image that already looks like MNIST (light digit on black within a 20×20 box, centred by mass) is used exactly as sent. ' +
        `The PNGs of one request may decode to at most ${formatCount(maxPixels)} pixels in all (read from their headers before decoding; more → 413). ` +
        'Concurrent requests are batched into one model call; every image of one request is classified by the same version. ' +
        `When more than PREDICT_MAX_QUEUED_IMAGES (here ${formatCount(maxQueued)}) images already wait for the model, or PREDICT_MAX_QUEUED_PIXELS ` +
        'pixels for a decode thread, 503 with Retry-After at once.',
      querystring: PredictQuery,
      body: { content: { 'application/json': { schema: PredictJsonBody } } },
      response: { 200: PredictResponse, ...errorResponses(400, 404, 409, 413, 415, 503) },
    },
  }, async (req) => {
    const { batcher, registry, predictionLog, decodePool } = app.services;
    const inputs = await readInputs(req, max);
    const count = 'pngs' in inputs ? inputs.pngs.length : inputs.pixels.length;
    if (count > max) throw new ServiceError('too-large', `at most ${max} images per request`);
    batcher.admit(count); // under overload, refused before paying for the decoding
    const pixels = 'pngs' in inputs ? await preprocessPngs(decodePool, inputs.pngs, maxPixels) : preprocessPixels(inputs.pixels);
    const digits = Array.from({ length: count }, (_, i) => pixels.subarray(i * DIGIT_PIXELS, (i + 1) * DIGIT_PIXELS));
    batcher.admit(count); // and again: the queue may have filled while this one decoded; a refused request keeps no images
    const recording = predictionLog.record(digits);
    const result = await batcher.predict(digits, req.query.version ?? registry.route(canaryKey(req)));
    const ids = await settleWithin(recording, RECORD_WAIT_MS);
    if (ids) result.predictions.forEach((p, i) => (p.predictionId = ids[i]));
    return result;
  });
};
