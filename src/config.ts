import { resolve } from 'node:path';
import { Type, type Static } from 'typebox';
import { Value } from 'typebox/value';
import { StringEnum } from './schemas/string-enum.ts';

/**
 * Every setting the service reads from the environment, with its type, default and meaning, in one
 * schema. Start-up fails fast on a bad value rather than misbehaving later.
 */
export const ConfigSchema = Type.Object({
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000, description: 'HTTP port of the API' }),
  HOST: Type.String({ default: '127.0.0.1', description: 'interface the API listens on (0.0.0.0 in containers)' }),
  REDIS_URL: Type.String({ default: 'redis://127.0.0.1:6379', description: 'Redis for the job queue and model events' }),
  MODELS_DIR: Type.String({ default: './models', description: 'directory (volume) holding model versions' }),
  DATASETS_DIR: Type.String({ default: './datasets', description: 'directory (volume) holding uploaded datasets' }),
  UPLOAD_MAX_BYTES: Type.Integer({ minimum: 1024, default: 100 * 1024 * 1024, description: 'largest dataset (ZIP or IDX pair) or model upload' }),
  TF_BACKEND: StringEnum(['auto', 'tensorflow', 'wasm', 'cpu'], {
    default: 'auto',
    description: 'TensorFlow.js backend: auto = tfjs-node-gpu, then tfjs-node, then wasm, then cpu',
  }),
  LOG_LEVEL: StringEnum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { default: 'info', description: 'pino log level' }),
  QUEUE_PREFIX: Type.String({ default: 'mnist', description: 'Redis key prefix, so several deployments can share one Redis' }),
  BODY_LIMIT_BYTES: Type.Integer({ minimum: 1024, default: 5 * 1024 * 1024, description: 'largest request body accepted' }),
  MAX_IMAGES_PER_REQUEST: Type.Integer({ minimum: 1, default: 64, description: 'most images in one predict request (multipart files or JSON array items)' }),
  MODEL_POLL_MS: Type.Integer({
    minimum: 0,
    default: 1000,
    description: 'how often the API re-checks the models directory and the pin, should both a "version ready" event and the directory watch miss a change (0 = never)',
  }),
  MODEL_CACHE_SIZE: Type.Integer({ minimum: 1, default: 3, description: 'most model versions the API holds in memory: the served one plus recently used ones (?version=N, previously served)' }),
  PREDICT_MAX_BATCH_SIZE: Type.Integer({ minimum: 1, default: 32, description: 'most images in one model call when concurrent predict requests are batched (as TF Serving max_batch_size)' }),
  PREDICT_BATCH_TIMEOUT_MS: Type.Number({
    minimum: 0,
    maximum: 1000,
    default: 1,
    description: 'how long a predict request waits for others to batch with when the model is idle (as TF Serving batch_timeout_micros, in ms; 0 = only those already arrived)',
  }),
  PREDICT_WORKERS: Type.Integer({ minimum: 0, maximum: 64, default: 1, description: 'inference threads (worker_threads) of the API; 0 = run inference on the HTTP event loop' }),
  WORKER_CONCURRENCY: Type.Integer({ minimum: 1, default: 1, description: 'training jobs one worker process runs at once' }),
});

export type Config = Static<typeof ConfigSchema> & { modelsDir: string; datasetsDir: string };

export class ConfigError extends Error {}

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
    throw new ConfigError(`invalid config ${key}=${JSON.stringify(raw[key])}: ${first.message}`);
  }
  const config = parsed as Static<typeof ConfigSchema>;
  return { ...config, modelsDir: resolve(config.MODELS_DIR), datasetsDir: resolve(config.DATASETS_DIR) };
}
