import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createApi, type RunningApi } from '../../src/api/start-api.ts';
import { createLogger, redactUrl } from '../../src/logger.ts';
import { initBackend } from '../../src/ml/backend.ts';
import { testConfig } from '../helpers/env.ts';

const SECRETS = ['s3cret-one', 's3cret-two', 's3cret-three', 's3cret-four', 's3cret-five'];

test('redactUrl hides the values of api_key, apikey, key, token and access_token, in any case, and nothing else', () => {
  assert.equal(redactUrl('/v1/models?api_key=abc&limit=2'), '/v1/models?api_key=[Redacted]&limit=2');
  assert.equal(redactUrl('/v1/jobs?limit=2&TOKEN=abc&Access_Token=def&apikey=g&Key=h'), '/v1/jobs?limit=2&TOKEN=[Redacted]&Access_Token=[Redacted]&apikey=[Redacted]&Key=[Redacted]');
  assert.equal(redactUrl('/x?api%5Fkey=abc'), '/x?api%5Fkey=[Redacted]', 'a percent-encoded name is the same name');
  assert.equal(redactUrl('/x?token'), '/x?token=[Redacted]');
  assert.equal(redactUrl('/x?keys=1&monkey=2&tokens=3'), '/x?keys=1&monkey=2&tokens=3');
  assert.equal(redactUrl('/v1/models'), '/v1/models');
});

describe('without API keys configured, a key in the URL still never reaches the log', () => {
  let running: RunningApi;
  let cleanup: () => Promise<void>;
  const lines: string[] = [];
  before(async () => {
    await initBackend('wasm');
    const made = await testConfig();
    cleanup = made.cleanup;
    running = await createApi(made.config, createLogger('api', 'trace', { write: (line: string) => void lines.push(line) }));
  });
  after(async () => {
    await running.close();
    await cleanup();
  });

  test('request lines, 404s, predict at debug level and anything logging a request or a url are redacted', async () => {
    const { app } = running;
    await app.inject({ url: `/v1/models?api_key=${SECRETS[0]}&limit=2` });
    await app.inject({ url: `/v1/jobs?Token=${SECRETS[1]}` });
    await app.inject({ url: `/nothing-here?access_token=${SECRETS[2]}` });
    await app.inject({ method: 'POST', url: `/v1/predict?key=${SECRETS[3]}`, payload: { pixels: [[1]] } });
    // A future handler that logs the request, or its URL, as Fastify's own lines do.
    app.log.info({ req: { method: 'GET', url: `/v1/models?apikey=${SECRETS[4]}`, headers: {} } }, 'a request');
    app.log.info({ url: `/v1/models?apikey=${SECRETS[4]}` }, 'a url');

    const log = lines.join('');
    for (const secret of SECRETS) assert.ok(!log.includes(secret), `${secret} is in the log:\n${log}`);
    const urls = lines.map((l) => JSON.parse(l)).filter((l) => l.msg === 'request completed').map((l) => l.url);
    assert.ok(urls.includes('/v1/models?api_key=[Redacted]&limit=2'), `logged: ${urls.join(', ')}`);
    assert.ok(urls.includes('/nothing-here?access_token=[Redacted]'));
    assert.ok(urls.includes('/v1/predict?key=[Redacted]'));
  });
});
