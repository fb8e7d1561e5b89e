import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { imageToMnistPixels, toMnistInput } from '../../image/preprocess.ts';
import { DIGIT_SIZE } from '../../schemas/digit.ts';
import { readMultipart } from '../multipart.ts';
import { errorResponses } from '../../schemas/common.ts';
import { PredictJsonBody, PredictQuery, PredictResponse } from '../../schemas/predict.ts';
import { ServiceError } from '../../errors.ts';

const RAW_IMAGE_TYPES = ['image/png', 'application/octet-stream'];
const PREDICT_ACCEPTS = 'the image as image/png, several as multipart/form-data, or JSON {"images": [base64 PNG…]} / {"pixels": [[784 numbers]…]}';
const DATA_URL = /^data:[\w/+.-]*(;[\w=.-]+)*;base64,/;
const BASE64 = /^[A-Za-z0-9+/\s]*={0,2}\s*$/;

/** An image of the request, still to be preprocessed: PNG bytes or a 28×28 pixel array. */
type Input = { png: Buffer; name: string } | { pixels: number[]; name: string };

function fromBase64(text: string, name: string): Buffer {
  const body = text.replace(DATA_URL, '');
  if (!BASE64.test(body)) throw new ServiceError('invalid', `${name} is not base64 (send the PNG's bytes base64-encoded, optionally as a data: URL)`);
  return Buffer.from(body, 'base64');
}

/** The images of a predict request, from a raw PNG body, a multipart body or a JSON body. */
async function readInputs(req: FastifyRequest, max: number): Promise<Input[]> {
  if (req.isMultipart()) {
    const { files } = await readMultipart(req);
    const inputs: Input[] = files.map((f, i) => ({ png: f.data, name: `file ${i + 1} (${f.filename || f.fieldname})` }));
    if (inputs.length === 0) throw new ServiceError('invalid', 'the multipart body holds no file; send each image as a file part');
    return inputs;
  }
  if (Buffer.isBuffer(req.body)) {
    if (req.body.length === 0) throw new ServiceError('invalid', 'the body is empty; send a PNG image');
    return [{ png: req.body, name: 'the image' }];
  }
  if (req.mediaType === 'application/json' && req.body && typeof req.body === 'object') {
    const { images, pixels } = req.body as PredictJsonBody;
    if ((images === undefined) === (pixels === undefined)) {
      throw new ServiceError('invalid', 'the JSON body needs exactly one of `images` (base64 PNGs) or `pixels` (arrays of 784 gray levels)');
    }
    const count = (images ?? pixels)!.length;
    if (count > max) throw new ServiceError('too-large', `at most ${max} images per request, got ${count}`);
    if (images) return images.map((text, i) => ({ png: fromBase64(text, `images[${i}]`), name: `images[${i}]` }));
    return pixels!.map((p, i) => ({ pixels: p, name: `pixels[${i}]` }));
  }
  throw new ServiceError('unsupported', `${req.headers['content-type'] ?? 'no content type'} is not accepted here; send ${PREDICT_ACCEPTS}`);
}

function preprocess(input: Input): Uint8Array {
  try {
    if ('png' in input) return imageToMnistPixels(input.png);
    const data = Uint8Array.from(input.pixels, (v) => Math.round(v));
    return toMnistInput({ width: DIGIT_SIZE, height: DIGIT_SIZE, data });
  } catch (err) {
    if (err instanceof ServiceError) throw new ServiceError(err.kind, `${input.name}: ${err.message}`);
    throw err;
  }
}

export const predictRoutes: FastifyPluginAsyncTypebox = async (app) => {
  // Any image type is read as bytes so that a JPEG gets a clear "only PNG" 415 rather than a generic one.
  const asBuffer = (_req: unknown, body: Buffer | string, done: (err: null, body: Buffer | string) => void) => done(null, body);
  app.addContentTypeParser(RAW_IMAGE_TYPES, { parseAs: 'buffer' }, asBuffer);
  app.addContentTypeParser(/^image\/.*/, { parseAs: 'buffer' }, asBuffer);

  const max = app.services.config.MAX_IMAGES_PER_REQUEST;
  app.post('/v1/predict', {
    config: { accepts: PREDICT_ACCEPTS },
    schema: {
      tags: ['predict'],
      summary: 'Classify digit images',
      description:
        `Body: one PNG (\`image/png\`); \`multipart/form-data\` with up to ${max} PNG files; or \`application/json\` with ` +
        '`{"images": [base64 PNG…]}` or `{"pixels": [[784 gray levels]…]}`. Every image is preprocessed as MNIST was made: ' +
        'colour → luminance (BT.601), transparent pixels → background, a light background inverted, background gradient and noise removed, ' +
        'cropped to the ink, scaled to fit 20×20 keeping the aspect ratio and placed in 28×28 by centre of mass. ' +
        'A 28×28 image that already looks like MNIST (light digit on black within a 20×20 box, centred by mass) is used exactly as sent. ' +
        'Concurrent requests are batched into one model call; every image of one request is classified by the same version.',
      querystring: PredictQuery,
      body: { content: { 'application/json': { schema: PredictJsonBody } } },
      response: { 200: PredictResponse, ...errorResponses(400, 404, 409, 413, 415, 503) },
    },
  }, async (req) => {
    const inputs = await readInputs(req, max);
    if (inputs.length > max) throw new ServiceError('too-large', `at most ${max} images per request`);
    return app.services.batcher.predict(inputs.map(preprocess), req.query.version);
  });
};
