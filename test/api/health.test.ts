import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTestApi, type TestApi } from '../helpers/api.ts';

let api: TestApi;
before(async () => {
  api = await startTestApi();
});
after(() => api.close());

test('/healthz answers while the process lives', async () => {
  const res = await api.app.inject({ url: '/healthz' });
  assert.equal(res.statusCode, 200);
  assert.deepEqual(res.json(), { status: 'ok' });
});

test('/readyz says Redis is reachable and that no model is loaded yet', async () => {
  const res = await api.app.inject({ url: '/readyz' });
  assert.equal(res.statusCode, 200);
  assert.deepEqual(res.json(), { status: 'ready', redis: true, modelLoaded: false, servedVersion: null });
});

test('/readyz is 503 when Redis does not answer', async () => {
  const { redis } = api.app.services;
  const ping = redis.ping.bind(redis);
  redis.ping = (() => Promise.reject(new Error('connection lost'))) as typeof redis.ping;
  try {
    const res = await api.app.inject({ url: '/readyz' });
    assert.equal(res.statusCode, 503);
    assert.equal(res.json().redis, false);
  } finally {
    redis.ping = ping;
  }
});

test('the docs and the OpenAPI document are served', async () => {
  const spec = await api.app.inject({ url: '/openapi.json' });
  assert.equal(spec.statusCode, 200);
  assert.equal(spec.json().info.title, 'mnist-service');
  const docs = await api.app.inject({ url: '/docs/' });
  assert.equal(docs.statusCode, 200);
  assert.match(docs.body, /swagger/i);
});

test('an unknown route is a JSON 404', async () => {
  const res = await api.app.inject({ url: '/v2/nothing' });
  assert.equal(res.statusCode, 404);
  assert.equal(res.json().statusCode, 404);
});
