import { securitySchemes } from './auth.ts';
import { PredictJsonBody } from '../schemas/predict.ts';

/** The parts of the OpenAPI document that no route schema carries. */
export const openapiDocument = {
  openapi: '3.0.3',
  info: {
    title: 'mnist-service',
    version: '0.1.0',
    description:
      'Train, fine-tune and serve convolutional networks for handwritten digits (MNIST, 28×28). ' +
      'Jobs are queued (BullMQ on Redis) and run by worker processes; every successful job writes a numbered model version ' +
      'in TensorFlow.js layers format, which /v1/predict serves and a browser can load with tf.loadLayersModel.',
  },
  tags: [
    { name: 'jobs', description: 'training jobs' },
    { name: 'models', description: 'model versions' },
    { name: 'predict', description: 'classify digit images' },
    { name: 'datasets', description: 'uploaded labelled digits for fine-tuning and evaluation' },
    { name: 'health', description: 'liveness and readiness' },
  ],
  // Which routes take which key is on each operation (see auth.ts); the Authorize button uses these.
  components: { securitySchemes },
};

/**
 * /v1/predict reads PNG and multipart bodies itself, so Fastify validates only the JSON one; this
 * is what the docs show for all three.
 */
export const predictRequestBodyDoc = {
  content: {
    'application/json': { schema: PredictJsonBody },
    'image/png': { schema: { type: 'string', format: 'binary', description: 'one PNG image' } },
    'multipart/form-data': {
      schema: {
        type: 'object',
        properties: { images: { type: 'array', items: { type: 'string', format: 'binary' }, description: 'one or more PNG files (any field names); predictions come back in the same order' } },
      },
    },
  },
};
