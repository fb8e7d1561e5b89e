import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestApi, type TestApi } from '../helpers/api.ts';
import { writeUntrainedVersion } from '../helpers/serving.ts';

const LIMIT = 3;
const WINDOW_SECONDS = 2;
const KEY_A = 'predict-key-a-0123456789abcdef';
const KEY_B = 'predict-key-b-0123456789abcdef';

/** A vertical stroke, as 784 gray levels. */
const STROKE = Array.from({ length: 784 }, (_, i) => (i % 28 >= 13 && i % 28 <= 14 && i >= 28 * 4 && i < 28 * 24 ? 255 : 0));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function predictFrom(api: TestApi, client: { ip?: string; key?: string }) {
  return api.app.inject({
    method: 'POST',
    url: '/v1/predict',
    remoteAddress: client.ip ?? '10.0.0.1',
    headers: client.key ? { authorization: `Bearer ${client.key}` } : {},
    payload: { pixels: [STROKE] },
  });
}

describe('PREDICT_RATE_LIMIT per IP address (no keys)', () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi({ PREDICT_RATE_LIMIT: String(LIMIT), PREDICT_RATE_WINDOW_SECONDS: String(WINDOW_SECONDS) });
    await writeUntrainedVersion(api.app.services.modelStore, 1);
    await api.app.services.registry.refresh();
  });
  after(() => api.close());

  test('the request after the limit is 429 with Retry-After; another client is not affected; the count resets after the window', async () => {
    // Start right after a window boundary is irrelevant: the window starts with the client's first request.
    for (let i = 1; i <= LIMIT; i++) {
      const res = await predictFrom(api, { ip: '10.0.0.1' });
      assert.equal(res.statusCode, 200, `request ${i}`);
      assert.equal(res.headers['x-ratelimit-limit'], String(LIMIT));
      assert.equal(res.headers['x-ratelimit-remaining'], String(LIMIT - i));
    }
    const limited = await predictFrom(api, { ip: '10.0.0.1' });
    assert.equal(limited.statusCode, 429);
    const retryAfter = Number(limited.headers['retry-after']);
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= WINDOW_SECONDS, `Retry-After ${limited.headers['retry-after']}`);
    assert.deepEqual(Object.keys(limited.json()).sort(), ['error', 'message', 'statusCode']);
    assert.equal(limited.json().statusCode, 429);
    assert.equal(limited.json().error, 'Too Many Requests');

    assert.equal((await predictFrom(api, { ip: '10.0.0.2' })).statusCode, 200, 'another client has its own count');
    assert.equal((await api.app.inject({ url: '/healthz', remoteAddress: '10.0.0.1' })).statusCode, 200, 'only predict is limited');
    assert.equal((await api.app.inject({ url: '/v1/models', remoteAddress: '10.0.0.1' })).headers['x-ratelimit-limit'], undefined);

    await sleep(retryAfter * 1000 + 200);
    assert.equal((await predictFrom(api, { ip: '10.0.0.1' })).statusCode, 200, 'the count resets after the window');
  });

  test('the counts live in Redis under the deployment prefix, so replicas share them', async () => {
    const keys = await api.app.services.redis.keys(`${api.config.QUEUE_PREFIX}:rate-limit:*`);
    assert.ok(keys.length >= 1, 'a counter key in Redis');
  });

  test('when Redis is away predict still answers, unlimited', async () => {
    const { redis } = api.app.services;
    for (let i = 0; i <= LIMIT; i++) await predictFrom(api, { ip: '10.0.0.3' });
    assert.equal((await predictFrom(api, { ip: '10.0.0.3' })).statusCode, 429, 'limited while Redis answers');
    redis.disconnect();
    try {
      const started = Date.now();
      const res = await predictFrom(api, { ip: '10.0.0.3' });
      assert.equal(res.statusCode, 200);
      assert.ok(Date.now() - started < 1000, 'without waiting for Redis');
    } finally {
      await redis.connect();
    }
  });

  test('when Redis hangs predict waits a moment for the count, not for Redis', async () => {
    // The plugin's Redis store counts with a Lua command it defines on the client; make it never answer.
    const redis = api.app.services.redis as unknown as { rateLimit: (...args: unknown[]) => void };
    const original = redis.rateLimit;
    redis.rateLimit = () => undefined;
    try {
      const started = Date.now();
      assert.equal((await predictFrom(api, { ip: '10.0.0.4' })).statusCode, 200);
      assert.ok(Date.now() - started < 1000, `answered after ${Date.now() - started} ms`);
    } finally {
      redis.rateLimit = original;
    }
  });
});

describe('PREDICT_RATE_LIMIT per API key', () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi({
      API_KEYS: `${KEY_A}:predict,${KEY_B}:predict`,
      PREDICT_AUTH: 'open',
      PREDICT_RATE_LIMIT: String(LIMIT),
      PREDICT_RATE_WINDOW_SECONDS: '60',
    });
    await writeUntrainedVersion(api.app.services.modelStore, 1);
    await api.app.services.registry.refresh();
  });
  after(() => api.close());

  test('a keyed client is counted by its key, whatever its address, apart from keyless clients at the same address', async () => {
    for (let i = 0; i < LIMIT; i++) assert.equal((await predictFrom(api, { key: KEY_A, ip: `10.1.0.${i}` })).statusCode, 200);
    const limited = await predictFrom(api, { key: KEY_A, ip: '10.1.0.99' });
    assert.equal(limited.statusCode, 429, 'the same key from a new address is still limited');
    assert.ok(Number(limited.headers['retry-after']) > 50, 'Retry-After counts down the 60 s window');
    assert.equal((await predictFrom(api, { key: KEY_B, ip: '10.1.0.0' })).statusCode, 200, 'another key has its own count');
    assert.equal((await predictFrom(api, { ip: '10.1.0.0' })).statusCode, 200, 'a keyless client at that address too');
    const counters = await api.app.services.redis.keys(`${api.config.QUEUE_PREFIX}:rate-limit:*`);
    assert.ok(counters.some((k) => /key:[0-9a-f]{12}$/.test(k)), `counted by key: ${counters.join(', ')}`);
    assert.ok(!counters.some((k) => k.includes(KEY_A) || k.includes(KEY_B)), 'Redis holds a digest of the key, not the key');
  });

  test('a request refused by auth is not counted', async () => {
    const keyed = await startTestApi({ API_KEYS: `${KEY_A}:predict`, PREDICT_RATE_LIMIT: '1' });
    try {
      for (let i = 0; i < 3; i++) assert.equal((await predictFrom(keyed, { ip: '10.2.0.1' })).statusCode, 401);
      assert.notEqual((await predictFrom(keyed, { ip: '10.2.0.1', key: KEY_A })).statusCode, 429);
    } finally {
      await keyed.close();
    }
  });
});
