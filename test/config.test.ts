import assert from 'node:assert/strict';
import { isAbsolute } from 'node:path';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../src/config.ts';

test('with no environment the documented defaults apply', () => {
  const config = loadConfig({});
  assert.equal(config.PORT, 3000);
  assert.equal(config.REDIS_URL, 'redis://127.0.0.1:6379');
  assert.equal(config.MODELS_DIR, './models');
  assert.ok(isAbsolute(config.modelsDir));
  assert.equal(config.TF_BACKEND, 'auto');
  assert.equal(config.LOG_LEVEL, 'info');
});

test('environment values are converted to their types', () => {
  const config = loadConfig({ PORT: '8080', TF_BACKEND: 'wasm', LOG_LEVEL: 'debug', HOST: '0.0.0.0' });
  assert.equal(config.PORT, 8080);
  assert.equal(config.TF_BACKEND, 'wasm');
  assert.equal(config.HOST, '0.0.0.0');
});

test('a bad value stops start-up with an error naming the variable', () => {
  assert.throws(() => loadConfig({ PORT: 'eighty' }), (err: Error) => err instanceof ConfigError && /PORT/.test(err.message));
  assert.throws(() => loadConfig({ TF_BACKEND: 'cuda' }), (err: Error) => err instanceof ConfigError && /TF_BACKEND/.test(err.message));
  assert.throws(() => loadConfig({ PORT: '70000' }), /PORT/);
});
