import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { loadConfig, type Config } from '../../src/config.ts';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A config of its own for one test file: a fresh key prefix on the shared Redis and an empty models dir. */
/**
 * Settings every test's service runs with: versions are scored on 2,000 MNIST test images (every
 * fifth) rather than 10,000 — the evaluation at the end of each job was a fifth of the suite's CPU.
 */
export const TEST_SETTINGS = { MNIST_TEST_LIMIT: '2000' };

export async function testConfig(env: Record<string, string> = {}): Promise<{ config: Config; cleanup: () => Promise<void> }> {
  const base = await mkdtemp(join(tmpdir(), 'mnist-test-'));
  const modelsDir = join(base, 'models');
  const prefix = `test-${randomUUID().slice(0, 8)}`;
  const config = loadConfig({ REDIS_URL, MODELS_DIR: modelsDir, DATASETS_DIR: join(base, 'datasets'), QUEUE_PREFIX: prefix, LOG_LEVEL: 'silent', TF_BACKEND: 'wasm', MODEL_POLL_MS: '0', ...TEST_SETTINGS, ...env });
  return {
    config,
    cleanup: async () => {
      await deleteKeys(prefix);
      await rm(base, { recursive: true, force: true });
    },
  };
}

async function deleteKeys(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
      if (keys.length) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs: number, intervalMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * The environment of an API or worker process a test starts on `config`'s Redis prefix and
 * directories, on the wasm backend, listening on `port`; `extra` adds or overrides settings.
 */
export function processEnv(config: Config, port: number, extra: Record<string, string> = {}): Record<string, string> {
  return {
    REDIS_URL: config.REDIS_URL,
    QUEUE_PREFIX: config.QUEUE_PREFIX,
    MODELS_DIR: config.modelsDir,
    DATASETS_DIR: config.datasetsDir,
    TF_BACKEND: 'wasm',
    LOG_LEVEL: 'info',
    ...TEST_SETTINGS,
    PORT: String(port),
    HOST: '127.0.0.1',
    ...extra,
  };
}
