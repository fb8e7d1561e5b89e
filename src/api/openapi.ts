import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { securitySchemes } from './auth.ts';
import { PredictJsonBody } from '../schemas/predict.ts';
import { FeedbackJsonBody } from '../schemas/feedback.ts';

/** The parts of the OpenAPI document that no route schema carries. */
export const openapiDocument = {
  openapi: '3.1.0',
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
    { name: 'feedback', description: 'corrections of predictions, to fine-tune on' },
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

/** /v1/feedback reads multipart bodies itself, like /v1/predict; this is what the docs show for both kinds. */
export const feedbackRequestBodyDoc = {
  content: {
    'application/json': { schema: FeedbackJsonBody },
    'multipart/form-data': {
      schema: {
        type: 'object',
        properties: {
          images: { type: 'array', items: { type: 'string', format: 'binary' }, description: 'one or more PNG files (any field names)' },
          labels: { type: 'string', description: 'the digits, comma-separated, one per file in order (or `label` for one file)' },
        },
      },
    },
  },
};

/** What each error status means on any route; the body is always the `Error` schema. */
const ERROR_RESPONSES: Record<string, string> = {
  400: 'Invalid request: the message names the field and what to send instead',
  401: 'No API key, or an unknown one: send it in the X-API-Key header (or Authorization: Bearer)',
  403: 'The key may not do this: an admin key is needed',
  404: 'No such resource',
  408: 'The request body did not arrive in time (REQUEST_TIMEOUT_MS)',
  409: 'In conflict with the current state: the message says which',
  413: 'Over a size limit: the message names the limit and its setting',
  415: 'Unsupported content type: the message says which to send',
  429: 'Too many requests, or too many queued jobs: Retry-After says when to try again',
  503: 'Not available now (Redis unreachable, no model to serve yet, or more predictions waiting than PREDICT_MAX_QUEUED_IMAGES or PREDICT_MAX_QUEUED_PIXELS): Retry-After, when present, says when to try again',
  507: 'The datasets quota (DATASETS_MAX_BYTES) is full: the message says what is used and free',
};

/** What a success means, per operation; a route whose status has no entry here fails the OpenAPI test. */
const SUCCESS_RESPONSES: Record<string, string> = {
  'GET /metrics 200': 'Prometheus text exposition',
  'GET /healthz 200': 'The process answers',
  'GET /readyz 200': 'Ready: Redis answers; says whether a model is loaded',
  'GET /readyz 503': 'Not ready: Redis does not answer (Retry-After says when to ask again)',
  'POST /v1/jobs 202': 'The job, queued: poll GET /v1/jobs/{id} or stream GET /v1/jobs/{id}/events',
  'GET /v1/jobs 200': 'A page of jobs, newest first',
  'GET /v1/jobs/{id} 200': 'The job',
  'DELETE /v1/jobs/{id} 200': 'The job, cancelled (it was still queued)',
  'DELETE /v1/jobs/{id} 202': 'The job, running: the worker stops it at the next batch',
  'GET /v1/jobs/{id}/events 200': 'Server-sent events: a `job` event with the whole job, then one per change, until it finishes',
  'GET /v1/models 200': 'Every version, newest first, which one is served and why',
  'POST /v1/models 202': 'The import job, queued: its result carries the new version',
  'GET /v1/models/serving 200': 'What is served, pinned, newest and loaded',
  'PUT /v1/models/serving 200': 'The version is pinned and served, and the canary (if any) answers its share',
  'DELETE /v1/models/serving 200': 'Unpinned: the version SERVING_POLICY chooses is served',
  'POST /v1/models/serving/canary/promote 200': 'The canary is now the pinned, served version; no canary runs',
  'DELETE /v1/models/serving/canary 200': 'No canary runs: every request goes to the served version',
  'GET /v1/models/{version} 200': "The version's metadata",
  'GET /v1/models/{version}/{file} 200': 'The file: model.json or a weights shard',
  'POST /v1/models/{version}/evaluate 202': 'The evaluation job, queued: its result carries the evaluation',
  'POST /v1/predict 200': 'One prediction per image, in the order sent, all by the same version',
  'POST /v1/datasets 200': 'The same data was uploaded before: the existing dataset',
  'POST /v1/datasets 201': 'The new dataset',
  'GET /v1/datasets 200': 'Every dataset, newest first',
  'GET /v1/datasets/{id} 200': 'The dataset',
  'DELETE /v1/datasets/{id} 204': 'Deleted',
  'POST /v1/feedback 200': 'Every correction was kept already with this label: nothing changed',
  'POST /v1/feedback 201': 'Stored: one item per image, new or relabelled',
  'GET /v1/feedback 200': 'A page of corrections, most recently labelled first',
  'GET /v1/feedback.zip 200': 'The corrections as an ImageFolder ZIP',
  'DELETE /v1/feedback/{id} 204': 'Deleted',
};

/** A handwritten 7 (`examples/digit-7.png`), so "Try it out" on /v1/predict answers at once. */
const SAMPLE_DIGIT = readFileSync(fileURLToPath(new URL('../../examples/digit-7.png', import.meta.url))).toString('base64');

/** Request bodies Swagger UI offers under "Try it out": each answers in seconds on a laptop. */
const REQUEST_EXAMPLES: Record<string, Record<string, { summary: string; value: unknown }>> = {
  'POST /v1/jobs': {
    quick: { summary: 'A quick train job: 3,000 images, 1 epoch (about 10 s to a ~94 % version)', value: { type: 'train', limit: 3000, epochs: 1 } },
    default: { summary: 'The default recipe: 2 epochs of the 60k set (~99 %, about a minute)', value: { type: 'train' } },
  },
  'POST /v1/predict': {
    digit: { summary: 'A handwritten 7 as a base64 PNG', value: { images: [SAMPLE_DIGIT] } },
  },
  'POST /v1/feedback': {
    image: { summary: 'The sample digit, labelled 7', value: { image: SAMPLE_DIGIT, label: 7 } },
  },
  'PUT /v1/models/serving': {
    pin: { summary: 'Serve version 1 until unpinned', value: { version: 1 } },
    canary: { summary: 'Serve version 1, and version 2 to 10 % of requests', value: { version: 1, canary: { version: 2, fraction: 0.1 } } },
  },
  'POST /v1/models/{version}/evaluate': {
    mnist: { summary: 'Score the version on the 10k MNIST test set', value: { dataset: 'mnist' } },
  },
};

const operationKey = (method: string, url: string) => `${method} ${url.replace(/:(\w+)/g, '{$1}')}`;

interface DocumentedSchema {
  hide?: boolean;
  body?: object;
  response?: Record<string, object>;
}

/**
 * Names every response (a description, as @fastify/swagger otherwise writes "Default Response") and
 * adds the runnable request examples. Documentation only: the schemas Fastify validates with are
 * the route's own.
 */
export function documentResponses<S extends object | undefined>(schema: S, method: string, url: string): S {
  const s = schema as DocumentedSchema | undefined;
  if (!s || s.hide) return schema;
  const op = operationKey(method, url);
  const response = Object.fromEntries(
    Object.entries(s.response ?? {}).map(([code, r]) => [code, { ...r, description: SUCCESS_RESPONSES[`${op} ${code}`] ?? ERROR_RESPONSES[code] }]),
  );
  const examples = REQUEST_EXAMPLES[op];
  const body = examples && s.body ? { ...withExamples(s.body, examples) } : s.body;
  return { ...s, response, ...(body ? { body } : {}) } as S;
}

/** `x-examples` is how @fastify/swagger takes named examples onto the media type. */
function withExamples(body: object, examples: Record<string, { summary: string; value: unknown }>): object {
  if ('content' in body) {
    const content = (body as { content: Record<string, { schema: object }> }).content;
    return { ...body, content: { ...content, 'application/json': { schema: { ...content['application/json'].schema, 'x-examples': examples } } } };
  }
  return { ...body, 'x-examples': examples };
}
