import { resolve } from 'node:path';
import { Type, type Static } from 'typebox';
import { Value } from 'typebox/value';
import { SERVING_POLICIES } from './schemas/models.ts';
import { StringEnum } from './schemas/string-enum.ts';

/**
 * Every setting the service reads from the environment, with its type, default and meaning, in one
 * schema. Start-up fails fast on a bad value rather than misbehaving later.
 */
/** TF_BACKEND's values: a backend by name, or `auto` for the best that loads (see ml/backend.ts). */
export const BACKEND_PREFERENCES = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendPreference = (typeof BACKEND_PREFERENCES)[number];
/** A backend that runs: 'tensorflow' is either native package (tfjs-node or tfjs-node-gpu). */
export type BackendName = Exclude<BackendPreference, 'auto'>;

/** INFERENCE_ENGINE's values: `auto` serves a version on ONNX Runtime when it has a proven model.onnx and the runtime loads. */
export const INFERENCE_ENGINE_PREFERENCES = ['auto', 'tfjs'] as const;
export type InferenceEnginePreference = (typeof INFERENCE_ENGINE_PREFERENCES)[number];

export const ConfigSchema = Type.Object({
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000, description: 'HTTP port of the API' }),
  HOST: Type.String({ default: '127.0.0.1', description: 'interface the API listens on (0.0.0.0 in containers)' }),
  REDIS_URL: Type.String({ default: 'redis://127.0.0.1:6379', description: 'Redis for the job queue and model events' }),
  MODELS_DIR: Type.String({ default: './models', description: 'directory (volume) holding model versions' }),
  DATASETS_DIR: Type.String({ default: './datasets', description: 'directory (volume) holding uploaded datasets' }),
  UPLOAD_MAX_BYTES: Type.Integer({ minimum: 1024, default: 100 * 1024 * 1024, description: 'largest dataset (ZIP or IDX pair) or model upload' }),
  TF_BACKEND: StringEnum(BACKEND_PREFERENCES, {
    default: 'auto',
    description: 'TensorFlow.js backend: auto = tfjs-node-gpu, then tfjs-node, then wasm, then cpu',
  }),
  INFERENCE_ENGINE: StringEnum(INFERENCE_ENGINE_PREFERENCES, {
    default: 'auto',
    description: "what runs a served version: auto = ONNX Runtime on its model.onnx (one intra-op thread per inference thread) where the version has one and the native library loads, else TensorFlow.js on TF_BACKEND; tfjs = always TensorFlow.js",
  }),
  LOG_LEVEL: StringEnum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { default: 'info', description: 'pino log level' }),
  QUEUE_PREFIX: Type.String({ default: 'mnist', description: 'Redis key prefix, so several deployments can share one Redis' }),
  BODY_LIMIT_BYTES: Type.Integer({ minimum: 1024, default: 5 * 1024 * 1024, description: 'largest request body accepted' }),
  MAX_IMAGES_PER_REQUEST: Type.Integer({ minimum: 1, default: 64, description: 'most images in one predict request (multipart files or JSON array items)' }),
  PREDICT_MAX_PIXELS: Type.Integer({
    minimum: 784,
    default: 16_777_216,
    description: "most decoded pixels in one predict request, over all its images (one 4096×4096 image's worth); checked from the PNG headers before decoding; more → 413",
  }),
  UPLOAD_MAX_PIXELS: Type.Integer({
    minimum: 784,
    default: 134_217_728,
    description: 'most decoded pixels in one dataset upload, over all its PNG images (eight 4096×4096 images\' worth); checked from the PNG headers before decoding; more → 413',
  }),
  DATASETS_MAX_BYTES: Type.Integer({
    minimum: 0,
    default: 1_073_741_824,
    description: 'most bytes all stored datasets may take in DATASETS_DIR; an upload that would pass it → 507 (0 = no limit)',
  }),
  REQUEST_TIMEOUT_MS: Type.Integer({
    minimum: 1000,
    default: 120_000,
    description: 'longest a client may take to send a whole request, headers and body; slower → 408 and the connection closed',
  }),
  REFUSED_BODY_DRAIN_BYTES: Type.Integer({
    minimum: 0,
    default: 8 * 1024 * 1024,
    description: 'after an early refusal (401, 403, 413, 415, 429) the API answers at once with Connection: close, then reads and discards at most this much of the body before closing, so a client that writes its whole body first still reads the answer',
  }),
  REFUSED_BODY_DRAIN_MS: Type.Integer({ minimum: 0, default: 5000, description: 'the longest the API keeps discarding a refused body (see REFUSED_BODY_DRAIN_BYTES)' }),
  MODEL_POLL_MS: Type.Integer({
    minimum: 0,
    default: 1000,
    description: 'how often the API re-checks the models directory and the pin, should both a "version ready" event and the directory watch miss a change (0 = never)',
  }),
  SERVING_POLICY: StringEnum(SERVING_POLICIES, {
    default: 'best',
    description:
      'which version serves when none is pinned: "best", a new version only if its MNIST test accuracy is at least the served one\'s less PROMOTION_TOLERANCE; "newest", every new version; "manual", the first version until one is pinned. Under every policy the first version written serves',
  }),
  PROMOTION_TOLERANCE: Type.Number({ minimum: 0, maximum: 1, default: 0, description: 'under SERVING_POLICY=best, how much lower (as a fraction: 0.002 = 0.2 points) a new version\'s test accuracy may be and still be served' }),
  MNIST_TEST_LIMIT: Type.Integer({
    minimum: 100,
    maximum: 10_000,
    default: 10_000,
    description:
      "how many of the 10k MNIST test images score each new version (train, fine-tune, import: its testAccuracy), spread evenly over the set; fewer for quick development loops (the test suite uses 2000). Keep one value per deployment: SERVING_POLICY compares versions by it. Evaluate jobs always use all. Read by the worker",
  }),
  PROMOTION_MAX_MNIST_DROP: Type.Number({
    minimum: 0,
    maximum: 1,
    default: 0.005,
    description:
      'a version fine-tuned on corrections ("dataset": "feedback") is served only if it beats its base on the held-out corrections and its MNIST test accuracy is at most this much below the base\'s (0.005 = half a point), whatever SERVING_POLICY says; read by the worker that writes it',
  }),
  FEEDBACK_WINDOW_SECONDS: Type.Integer({
    minimum: 0,
    default: 3600,
    description: "how long a predicted image stays in Redis so that a correction may name it by its predictionId (0 = not kept: predictions have no predictionId)",
  }),
  FEEDBACK_WINDOW_MAX_IMAGES: Type.Integer({
    minimum: 1,
    default: 50_000,
    description: 'most predicted images kept for corrections at once, whatever their age (~1 KB each in Redis); the oldest go first',
  }),
  FEEDBACK_FINETUNE_EVERY: Type.Integer({
    minimum: 0,
    default: 0,
    description: 'after every N new corrections, queue a fine-tune of the served version on them ("dataset": "feedback", since the last such version); never two at a time (0 = off)',
  }),
  MODEL_CACHE_SIZE: Type.Integer({ minimum: 1, default: 3, description: 'most model versions the API holds in memory: the served one plus recently used ones (?version=N, previously served)' }),
  PREDICT_MAX_BATCH_SIZE: Type.Integer({ minimum: 1, default: 32, description: 'most images in one model call when concurrent predict requests are batched (as TF Serving max_batch_size)' }),
  PREDICT_BATCH_TIMEOUT_MS: Type.Number({
    minimum: 0,
    maximum: 1000,
    default: 1,
    description: 'how long a predict request waits for others to batch with when the model is idle (as TF Serving batch_timeout_micros, in ms; 0 = only those already arrived)',
  }),
  PREDICT_MAX_QUEUED_IMAGES: Type.Integer({
    minimum: 0,
    default: 1024,
    description: 'most images waiting for a model call in one API process (those being computed not counted; as TF Serving max_enqueued_batches × max_batch_size); a predict request that would go past it gets 503 with Retry-After at once instead of a wait that only grows (0 = no bound)',
  }),
  PREDICT_MAX_QUEUED_PIXELS: Type.Integer({
    minimum: 0,
    default: 67_108_864,
    description: 'most pixels of predict requests waiting for a decode thread in one API process (those being decoded not counted; four PREDICT_MAX_PIXELS requests by default, a few seconds of decoding); a request that would go past it gets 503 with Retry-After at once (0 = no bound)',
  }),
  PREDICT_WORKERS: Type.Integer({ minimum: 1, maximum: 64, default: 1, description: 'inference threads (worker_threads) of the API: they run the models, so the HTTP event loop never does (PNGs are decoded on separate decode threads, one per core but one)' }),
  API_SHUTDOWN_TIMEOUT_MS: Type.Integer({
    minimum: 100,
    default: 10_000,
    description: 'on SIGTERM the API stops accepting connections and lets in-flight requests finish (open event streams are closed at once); after this long it exits regardless, with status 1',
  }),
  API_KEYS: Type.String({
    default: '',
    // `key:scope` pairs; a key is 16+ characters without spaces, commas or colons.
    pattern: '^\\s*(?:[^\\s,:]{16,}:(?:predict|admin)(?:\\s*,\\s*[^\\s,:]{16,}:(?:predict|admin))*)?\\s*$',
    secret: true, // never echoed, not even in a config error
    description:
      'API keys as a comma-separated list of key:scope, scope predict or admin (several keys per scope allowed, e.g. for rotation); admin keys may do everything. ' +
      'Empty = authentication off, every route open (a warning at start-up). With keys: mutations of jobs, models and datasets need admin, reads any key, predict see PREDICT_AUTH',
  }),
  PREDICT_AUTH: StringEnum(['key', 'open'], {
    default: 'key',
    description: 'with API_KEYS set: key = POST /v1/predict needs a predict or admin key; open = anyone may predict (other routes still need keys)',
  }),
  PREDICT_RATE_LIMIT: Type.Integer({
    minimum: 0,
    default: 0,
    description: 'most POST /v1/predict requests per client (its API key, else its IP address) per PREDICT_RATE_WINDOW_SECONDS, and as many POST /v1/feedback requests apart, counted in Redis across replicas; more → 429 with Retry-After (0 = no limit)',
  }),
  PREDICT_RATE_WINDOW_SECONDS: Type.Integer({ minimum: 1, default: 60, description: 'the window PREDICT_RATE_LIMIT counts over, in seconds' }),
  MAX_EVENT_STREAMS: Type.Integer({ minimum: 1, default: 500, description: 'most job event streams (GET /v1/jobs/{id}/events) one API process keeps open; more → 503 with Retry-After' }),
  WORKER_CONCURRENCY: Type.Integer({ minimum: 1, default: 1, description: 'training jobs one worker process runs at once' }),
  MAX_QUEUED_JOBS: Type.Integer({ minimum: 1, default: 100, description: 'most training jobs waiting for a worker; past it POST /v1/jobs → 429 with Retry-After' }),
  JOB_MAX_SECONDS: Type.Integer({
    minimum: 60,
    default: 6 * 3600,
    description: "longest a job may run (each job's maxDurationSeconds defaults to it and may not exceed it); the worker stops a job past its budget and fails it with the reason",
  }),
  JOB_MAX_RSS_MB: Type.Integer({
    minimum: 256,
    default: 4096,
    description: "a job's child process is killed (and the job failed with the reason) when its resident memory passes this; a WebAssembly heap is not bounded by V8's heap flags",
  }),
  IMPORT_MAX_ACTIVATIONS: Type.Integer({
    minimum: 1000,
    default: 4_000_000,
    description: "most values an imported model's layers may produce for one image, summed over its layers (estimated from their shapes before the model runs); more → the import job fails with the reason",
  }),
  IMPORT_MAX_MACS: Type.Integer({
    minimum: 1000,
    default: 500_000_000,
    description: "most multiply-accumulates an imported model may take for one image (estimated from its layers' shapes before it runs); more → the import job fails with the reason",
  }),
  CHECKPOINTS_DIR: Type.String({
    default: '',
    description: 'directory (shared by the workers) for per-epoch training checkpoints, one file per running job; empty = .checkpoints in MODELS_DIR',
  }),
  JOB_LOCK_MS: Type.Integer({
    minimum: 1000,
    default: 30_000,
    description: "how long a worker's lock on its running job lasts unless renewed (every half of it); a worker that dies loses the job this long after (BullMQ lockDuration)",
  }),
  JOB_STALLED_CHECK_MS: Type.Integer({
    minimum: 100,
    default: 30_000,
    description: 'how often each worker looks for running jobs whose lock has expired (their worker died) and puts them back in the queue (BullMQ stalledInterval)',
  }),
  JOB_MAX_STALLS: Type.Integer({
    minimum: 0,
    default: 2,
    description: 'times a job may lose its worker (crash, kill) and be resumed from its checkpoint; one more and it fails with the reason',
  }),
  JOB_ATTEMPTS: Type.Integer({
    minimum: 1,
    default: 1,
    description: 'attempts a job gets when its training throws an error (each resumes from the last checkpoint); 1 = no retry. Crashes are counted by JOB_MAX_STALLS',
  }),
  WORKER_SHUTDOWN_TIMEOUT_MS: Type.Integer({
    minimum: 1000,
    default: 30_000,
    description: 'on SIGTERM a worker checkpoints its running jobs, puts them back in the queue and exits; after this long it exits regardless (the jobs are then resumed from their last epoch checkpoint)',
  }),
  JOB_RETENTION_SECONDS: Type.Integer({
    minimum: 0,
    default: 7 * 24 * 3600,
    description: 'how long a finished job (succeeded, failed or cancelled) stays readable, in seconds; 0 = no age limit',
  }),
  JOB_RETENTION_COUNT: Type.Integer({
    minimum: 0,
    default: 1000,
    description: 'most succeeded jobs kept, and most failed or cancelled ones, the oldest removed first; 0 = no count limit',
  }),
  MODEL_KEEP_LAST: Type.Integer({
    minimum: 0,
    default: 0,
    description: 'model versions kept on disk: the newest N plus the pinned one, any an API replica serves and the bases of queued fine-tunes; older ones are deleted by the worker (0 = keep all)',
  }),
});

export type Config = Static<typeof ConfigSchema> & { modelsDir: string; datasetsDir: string };

export class ConfigError extends Error {}

/** For entry points: a bad setting ends the process with one line that names it, not a stack. */
export function loadConfigOrExit(env: NodeJS.ProcessEnv = process.env): Config {
  try {
    return loadConfig(env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`mnist-service: ${err.message}\n`);
    process.exit(1);
  }
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(ConfigSchema.properties)) {
    const value = env[key];
    if (value !== undefined && value !== '') raw[key] = value;
  }
  const parsed = Value.Convert(ConfigSchema, Value.Default(ConfigSchema, raw));
  const errors = [...Value.Errors(ConfigSchema, parsed)];
  if (errors.length > 0) {
    const first = errors[0];
    const key = first.instancePath.replace(/^\//, '');
    const secret = (ConfigSchema.properties as Record<string, { secret?: boolean }>)[key]?.secret === true;
    throw new ConfigError(`invalid config ${key}=${secret ? '(hidden)' : JSON.stringify(raw[key])}: ${first.message}`);
  }
  const config = parsed as Static<typeof ConfigSchema>;
  return { ...config, modelsDir: resolve(config.MODELS_DIR), datasetsDir: resolve(config.DATASETS_DIR) };
}
