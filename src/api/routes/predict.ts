import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { declaredPixels, type NamedPng } from '../../image/png.ts';
import { toMnistInput } from '../../image/preprocess.ts';
import { DIGIT_PIXELS, DIGIT_SIZE } from '../../schemas/digit.ts';
import { readMultipart } from '../multipart.ts';
import { errorResponses } from '../../schemas/common.ts';
import { PredictJsonBody, PredictQuery, PredictResponse } from '../../schemas/predict.ts';
import { ServiceError } from '../../errors.ts';
import { REQUEST_ID_HEADER } from '../request-id.ts';

const RAW_IMAGE_TYPES = ['image/png', 'application/octet-stream'];
const PREDICT_ACCEPTS = 'the image as image/png, several as multipart/form-data, or JSON {"images": [base64 PNG…]} / {"pixels": [[784 numbers]…]}';
const DATA_URL = /^data:[\w/+.-]*(;[\w=.-]+)*;base64,/;
const BASE64 = /^[A-Za-z0-9+/\s]*={0,2}\s*$/;

/** The images of a predict request: PNGs to decode, or 28×28 pixel arrays (JSON `pixels`). */
type Inputs = { pngs: NamedPng[] } | { pixels: number[][] };

function fromBase64(text: string, name: string): Buffer {
  const body = text.replace(DATA_URL, '');
  if (!BASE64.test(body)) throw new ServiceError('invalid', `${name} is not base64 (send the PNG's bytes base64-encoded, optionally as a data: URL)`);
  return Buffer.from(body, 'base64');
}

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

const formatCount = (n: number) => n.toLocaleString('en-US');

export const predictRoutes: FastifyPluginAsyncTypebox = async (app) => {
  // Any image type is read as bytes so that a JPEG gets a clear "only PNG" 415 rather than a generic one.
  const asBuffer = (_req: unknown, body: Buffer | string, done: (err: null, body: Buffer | string) => void) => done(null, body);
  app.addContentTypeParser(RAW_IMAGE_TYPES, { parseAs: 'buffer' }, asBuffer);
  app.addContentTypeParser(/^image\/.*/, { parseAs: 'buffer' }, asBuffer);

  const { MAX_IMAGES_PER_REQUEST: max, PREDICT_MAX_PIXELS: maxPixels } = app.services.config;

  /** Every PNG of the request checked from its header, then decoded (on a decode thread unless tiny). */
  async function preprocessPngs(pngs: NamedPng[]): Promise<Uint8Array> {
    const pixels = declaredPixels(pngs);
    if (pixels > maxPixels) {
      throw new ServiceError('too-large', `the images of this request decode to ${formatCount(pixels)} pixels; at most ${formatCount(maxPixels)} (PREDICT_MAX_PIXELS): send smaller images, or fewer per request`);
    }
    return app.services.decodePool.preprocessPngs(pngs);
  }

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
        'Concurrent requests are batched into one model call; every image of one request is classified by the same version.',
      querystring: PredictQuery,
      body: { content: { 'application/json': { schema: PredictJsonBody } } },
      response: { 200: PredictResponse, ...errorResponses(400, 404, 409, 413, 415, 503) },
    },
  }, async (req) => {
    const inputs = await readInputs(req, max);
    const count = 'pngs' in inputs ? inputs.pngs.length : inputs.pixels.length;
    if (count > max) throw new ServiceError('too-large', `at most ${max} images per request`);
    const pixels = 'pngs' in inputs ? await preprocessPngs(inputs.pngs) : preprocessPixels(inputs.pixels);
    const digits = Array.from({ length: count }, (_, i) => pixels.subarray(i * DIGIT_PIXELS, (i + 1) * DIGIT_PIXELS));
    return app.services.batcher.predict(digits, req.query.version ?? app.services.registry.route(canaryKey(req)));
  });
};
