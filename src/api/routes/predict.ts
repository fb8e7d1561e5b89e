import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { imageToMnistPixels } from '../../ml/preprocess.ts';
import { errorResponses } from '../schemas/common.ts';
import { PredictQuery, PredictResponse } from '../schemas/predict.ts';

class BadPredictBodyError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

const RAW_IMAGE_TYPES = ['image/png', 'application/octet-stream'];

/** The images of a predict request: the raw body, or every file part of a multipart body in order. */
async function readImages(req: FastifyRequest): Promise<Buffer[]> {
  if (req.isMultipart()) {
    const images: Buffer[] = [];
    for await (const part of req.parts()) {
      if (part.type === 'file') images.push(await part.toBuffer());
    }
    if (images.length === 0) throw new BadPredictBodyError(400, 'the multipart body holds no file; send each image as a file part');
    return images;
  }
  if (Buffer.isBuffer(req.body)) {
    if (req.body.length === 0) throw new BadPredictBodyError(400, 'the body is empty; send a PNG image');
    return [req.body];
  }
  throw new BadPredictBodyError(415, `send the image as image/png, or several as multipart/form-data (got ${req.headers['content-type'] ?? 'no content type'})`);
}

export const predictRoutes: FastifyPluginAsyncTypebox = async (app) => {
  // Any image type is read as bytes so that a JPEG gets a clear "only PNG" 415 rather than a generic one.
  const asBuffer = (_req: unknown, body: Buffer | string, done: (err: null, body: Buffer | string) => void) => done(null, body);
  app.addContentTypeParser(RAW_IMAGE_TYPES, { parseAs: 'buffer' }, asBuffer);
  app.addContentTypeParser(/^image\/.*/, { parseAs: 'buffer' }, asBuffer);

  app.post('/v1/predict', {
    schema: {
      tags: ['predict'],
      summary: 'Classify digit images',
      description:
        'Body: one PNG (`image/png`), or `multipart/form-data` with one or more PNG files. A 28×28 grayscale PNG with a white digit on black (as MNIST) is used as is. ' +
        'Colour is converted to luminance (BT.601); transparent pixels count as background; an image whose border is light is inverted so the digit is light on dark; ' +
        'other sizes are scaled to fit 28×28 keeping their aspect ratio (area averaging) and centred.',
      querystring: PredictQuery,
      response: { 200: PredictResponse, ...errorResponses(400, 404, 413, 415, 503) },
    },
  }, async (req) => {
    const buffers = await readImages(req);
    if (buffers.length > app.services.config.MAX_IMAGES_PER_REQUEST) {
      throw new BadPredictBodyError(413, `at most ${app.services.config.MAX_IMAGES_PER_REQUEST} images per request`);
    }
    const pixels = buffers.map((buf) => imageToMnistPixels(buf));
    return app.services.registry.predict(pixels, req.query.version);
  });
};
