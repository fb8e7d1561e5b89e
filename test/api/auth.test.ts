import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { findKey, parseApiKeys, routeAccess } from '../../src/api/auth.ts';
import { openapiSpec } from '../../src/api/openapi-spec.ts';
import { createApi, type RunningApi } from '../../src/api/start-api.ts';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { initBackend } from '../../src/ml/backend.ts';
import { startTestApi, type TestApi } from '../helpers/api.ts';
import { testConfig } from '../helpers/env.ts';
import { writeUntrainedVersion } from '../helpers/serving.ts';
import { encodeGrayPng } from '../../src/image/png-encode.ts';
import { routesToCanary } from '../../src/serving/canary-routing.ts';

const ADMIN = 'admin-key-0123456789abcdef';
const ADMIN_2 = 'second-admin-key-fedcba9876543210';
const PREDICT = 'predict-key-0123456789abcdef';
const API_KEYS = `${ADMIN}:admin, ${PREDICT}:predict,${ADMIN_2}:admin`;

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

/** A vertical stroke, as 784 gray levels: enough for a real model to answer. */
const STROKE = Array.from({ length: 784 }, (_, i) => (i % 28 >= 13 && i % 28 <= 14 && i >= 28 * 4 && i < 28 * 24 ? 255 : 0));
const predictBody = { pixels: [STROKE] };

async function withModel(api: TestApi): Promise<void> {
  await writeUntrainedVersion(api.app.services.modelStore, 1);
  await api.app.services.registry.refresh();
}

describe('with API keys configured (predict needs a key)', () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi({ API_KEYS });
    await withModel(api);
  });
  after(() => api.close());

  const call = (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, headers: Record<string, string> = {}, payload?: object) =>
    api.app.inject({ method, url, headers, ...(payload ? { payload } : {}) });

  test('a request without a key is 401 with a Bearer challenge, on reads, mutations and predict', async () => {
    for (const [method, url] of [['GET', '/v1/models'], ['GET', '/v1/jobs'], ['GET', '/v1/datasets'], ['POST', '/v1/jobs'], ['DELETE', '/v1/models/serving'], ['POST', '/v1/predict']] as const) {
      const res = await call(method, url, {}, method === 'POST' ? {} : undefined);
      assert.equal(res.statusCode, 401, `${method} ${url}`);
      assert.match(String(res.headers['www-authenticate']), /^Bearer realm="mnist-service"$/, `${method} ${url}`);
      assert.deepEqual(Object.keys(res.json()).sort(), ['error', 'message', 'statusCode']);
      assert.match(res.json().message, /Authorization: Bearer/);
    }
  });

  test('an unknown key is 401 with error="invalid_token", whatever its length', async () => {
    for (const key of ['nope', `${ADMIN}x`, ADMIN.slice(0, -1), PREDICT.toUpperCase()]) {
      const res = await call('GET', '/v1/models', bearer(key));
      assert.equal(res.statusCode, 401, key);
      assert.match(String(res.headers['www-authenticate']), /error="invalid_token"/);
      assert.equal(res.json().message, 'the API key is not valid');
    }
    const basic = await call('GET', '/v1/models', { authorization: `Basic ${Buffer.from(`u:${ADMIN}`).toString('base64')}` });
    assert.equal(basic.statusCode, 401, 'only Bearer is taken from Authorization');
  });

  test('a predict key may predict and read, but a mutation with it is 403, not 401', async () => {
    const predicted = await call('POST', '/v1/predict', bearer(PREDICT), predictBody);
    assert.equal(predicted.statusCode, 200);
    assert.equal(predicted.json().predictions.length, 1);
    for (const url of ['/v1/models', '/v1/models/serving', '/v1/models/1', '/v1/jobs', '/v1/datasets']) {
      assert.equal((await call('GET', url, bearer(PREDICT))).statusCode, 200, url);
    }
    for (const [method, url, body] of [
      ['POST', '/v1/jobs', { type: 'train' }],
      ['DELETE', '/v1/jobs/123'],
      ['PUT', '/v1/models/serving', { version: 1 }],
      ['DELETE', '/v1/models/serving'],
      ['POST', '/v1/models/1/evaluate', { dataset: 'mnist' }],
      ['POST', '/v1/models', {}],
      ['POST', '/v1/datasets', {}],
      ['DELETE', '/v1/datasets/ds_x'],
    ] as const) {
      const res = await call(method, url, bearer(PREDICT), body);
      assert.equal(res.statusCode, 403, `${method} ${url}`);
      assert.match(String(res.headers['www-authenticate']), /error="insufficient_scope", scope="admin"/);
      assert.match(res.json().message, /`predict` scope.*needs `admin`/);
    }
  });

  test('an admin key may do everything: mutations, reads and predict', async () => {
    const queued = await call('POST', '/v1/jobs', bearer(ADMIN), { type: 'train', epochs: 1 });
    assert.equal(queued.statusCode, 202);
    const id = queued.json().id as string;
    assert.equal((await call('GET', `/v1/jobs/${id}`, bearer(ADMIN_2))).statusCode, 200, 'any admin key of several');
    assert.ok([200, 202].includes((await call('DELETE', `/v1/jobs/${id}`, bearer(ADMIN))).statusCode), 'cancelled');
    assert.equal((await call('PUT', '/v1/models/serving', bearer(ADMIN), { version: 1 })).statusCode, 200);
    assert.equal((await call('DELETE', '/v1/models/serving', bearer(ADMIN))).statusCode, 200);
    assert.equal((await call('DELETE', '/v1/datasets/ds_missing', bearer(ADMIN))).statusCode, 404, 'past auth: the dataset does not exist');
    assert.equal((await call('POST', '/v1/predict', bearer(ADMIN), predictBody)).statusCode, 200);
  });

  test('X-API-Key works as well as Authorization: Bearer', async () => {
    assert.equal((await call('GET', '/v1/models', { 'x-api-key': PREDICT })).statusCode, 200);
    assert.equal((await call('DELETE', '/v1/models/serving', { 'x-api-key': PREDICT })).statusCode, 403);
    assert.equal((await call('DELETE', '/v1/models/serving', { 'x-api-key': ADMIN })).statusCode, 200);
    assert.equal((await call('GET', '/v1/models', { 'x-api-key': 'wrong' })).statusCode, 401);
  });

  test('a key in the query string is refused with 401, valid or not, saying to send it in a header', async () => {
    for (const url of [`/v1/models?api_key=${ADMIN}`, `/v1/jobs?limit=2&TOKEN=${PREDICT}`, '/v1/models?apikey=wrong', `/v1/predict?access_token=${ADMIN}`, `/healthz?Key=${ADMIN}`, `/v1/models?api%5Fkey=${ADMIN}`]) {
      const res = await call(url.startsWith('/v1/predict') ? 'POST' : 'GET', url, bearer(ADMIN), url.startsWith('/v1/predict') ? predictBody : undefined);
      assert.equal(res.statusCode, 401, url);
      assert.match(String(res.headers['www-authenticate']), /error="invalid_request"/, url);
      assert.match(res.json().message, /query string.*`Authorization: Bearer <key>` or `X-API-Key: <key>`/, url);
      for (const key of [ADMIN, PREDICT]) assert.ok(!res.body.includes(key), 'the answer does not repeat the key');
    }
    assert.equal((await call('GET', '/v1/jobs?limit=2', bearer(ADMIN))).statusCode, 200, 'other query parameters are fine');
  });

  test('a keyless upload is refused before its body is read', async () => {
    const res = await api.app.inject({ method: 'POST', url: '/v1/datasets', headers: { 'content-type': 'application/zip' }, payload: Buffer.alloc(2 * 1024 * 1024) });
    assert.equal(res.statusCode, 401);
  });

  test('health, metrics, docs, the OpenAPI document and the web page stay open, even with a stray Authorization header', async () => {
    for (const url of ['/healthz', '/readyz', '/metrics', '/openapi.json', '/docs/', '/', '/ui/app.js']) {
      assert.equal((await call('GET', url)).statusCode, 200, url);
      assert.equal((await call('GET', url, { authorization: 'Basic dTpw' })).statusCode, 200, `${url} with a proxy's Basic header`);
    }
    assert.equal((await call('GET', '/v1/nothing-here', {})).statusCode, 404, 'an unknown route is still a 404');
  });

  test('through a canary a keyed client sees one version whatever request ids it sends; a predict key may correct, not delete corrections', async () => {
    await writeUntrainedVersion(api.app.services.modelStore, 2);
    const pinned = await call('PUT', '/v1/models/serving', bearer(ADMIN), { version: 1, canary: { version: 2, fraction: 0.5 } });
    assert.equal(pinned.statusCode, 200, pinned.body);
    assert.equal(api.app.services.registry.activeCanary?.version, 2);
    const stored = parseApiKeys(API_KEYS);
    for (const key of [ADMIN, PREDICT, ADMIN_2]) {
      const seen = new Set<number>();
      for (let i = 0; i < 6; i++) seen.add((await call('POST', '/v1/predict', { ...bearer(key), 'x-request-id': `${key.slice(0, 6)}-${i}` }, predictBody)).json().modelVersion);
      const expected = routesToCanary({ version: 2, fraction: 0.5 }, `key:${findKey(stored, key)!.keyId}`) ? 2 : 1;
      assert.deepEqual([...seen], [expected], 'one version for one key: the one its key hashes to');
    }
    assert.equal((await call('DELETE', '/v1/models/serving/canary', bearer(ADMIN))).statusCode, 200);

    const correction = { image: encodeGrayPng(STROKE).toString('base64'), label: 1 };
    assert.equal((await call('POST', '/v1/feedback', {}, correction)).statusCode, 401);
    const kept = await call('POST', '/v1/feedback', bearer(PREDICT), correction);
    assert.equal(kept.statusCode, 201, kept.body);
    assert.equal((await call('GET', '/v1/feedback', bearer(PREDICT))).json().total, 1);
    assert.equal((await call('DELETE', `/v1/feedback/${kept.json().items[0].id}`, bearer(PREDICT))).statusCode, 403);
  });
});

describe('with PREDICT_AUTH=open', () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi({ API_KEYS, PREDICT_AUTH: 'open' });
    await withModel(api);
  });
  after(() => api.close());

  test('anyone may predict; reads and mutations still need keys', async () => {
    const open = await api.app.inject({ method: 'POST', url: '/v1/predict', payload: predictBody });
    assert.equal(open.statusCode, 200);
    assert.equal((await api.app.inject({ method: 'POST', url: '/v1/predict', headers: bearer(PREDICT), payload: predictBody })).statusCode, 200);
    assert.equal((await api.app.inject({ url: '/v1/models' })).statusCode, 401);
    assert.equal((await api.app.inject({ method: 'DELETE', url: '/v1/models/serving', headers: bearer(PREDICT) })).statusCode, 403);
  });
});

describe('with no API keys (the development default)', () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi();
  });
  after(() => api.close());

  test('every route is open: mutations get past auth without a key', async () => {
    assert.equal((await api.app.inject({ url: '/v1/models' })).statusCode, 200);
    assert.equal((await api.app.inject({ method: 'DELETE', url: '/v1/models/serving' })).statusCode, 200);
    assert.equal((await api.app.inject({ method: 'DELETE', url: '/v1/datasets/ds_missing', headers: bearer('anything') })).statusCode, 404);
  });
});

describe('keys never reach the logs', () => {
  let running: RunningApi;
  let cleanup: () => Promise<void>;
  const lines: string[] = [];
  before(async () => {
    await initBackend('wasm');
    const made = await testConfig({ API_KEYS });
    cleanup = made.cleanup;
    const log = createLogger('api', 'trace', { write: (line: string) => void lines.push(line) });
    running = await createApi(made.config, log);
  });
  after(async () => {
    await running.close();
    await cleanup();
  });

  test('requests with good, bad and misplaced keys, and errors, log no key', async () => {
    const { app } = running;
    await app.inject({ url: '/v1/models', headers: bearer(ADMIN) });
    await app.inject({ url: '/v1/models', headers: { 'x-api-key': PREDICT } });
    await app.inject({ url: '/v1/models', headers: bearer(`${ADMIN_2}-wrong`) });
    await app.inject({ method: 'DELETE', url: '/v1/models/serving', headers: bearer(PREDICT) });
    await app.inject({ method: 'POST', url: '/v1/jobs', headers: { ...bearer(ADMIN), 'content-type': 'application/json' }, payload: '{"type":' });
    await app.inject({ url: `/v1/models?api_key=${ADMIN}&access_token=${PREDICT}` });
    await app.inject({ url: `/v1/nothing-here?token=${ADMIN_2}` });
    // A handler that logs the request headers (as a careless future one might) is redacted too.
    app.log.info({ req: { headers: { authorization: `Bearer ${ADMIN}`, 'x-api-key': PREDICT } } }, 'headers');
    app.log.info({ config: running.app.services.config }, 'config');
    const log = lines.join('');
    assert.ok(lines.length > 5, 'the requests were logged');
    assert.match(log, /API keys required/);
    assert.match(log, /\[Redacted\]/);
    for (const key of [ADMIN, ADMIN_2, PREDICT]) assert.ok(!log.includes(key), 'a key appears in the log');
  });

  test('a bad API_KEYS stops start-up without echoing the keys', () => {
    for (const value of [`${ADMIN}:root`, 'short:admin', `${ADMIN}`, `${ADMIN}:admin;${PREDICT}:predict`]) {
      assert.throws(
        () => loadConfig({ API_KEYS: value }),
        (err: Error) => err instanceof ConfigError && /API_KEYS/.test(err.message) && !err.message.includes(ADMIN) && !err.message.includes('short'),
        value,
      );
    }
    assert.equal(loadConfig({ API_KEYS }).API_KEYS, API_KEYS);
  });
});

test('the policy: open outside /v1, predict by PREDICT_AUTH, reads any key, the rest admin', () => {
  assert.equal(routeAccess('GET', '/healthz', 'key'), 'open');
  assert.equal(routeAccess('GET', '/metrics', 'key'), 'open');
  assert.equal(routeAccess('GET', undefined, 'key'), 'open');
  assert.equal(routeAccess('POST', '/v1/predict', 'key'), 'predict');
  assert.equal(routeAccess('POST', '/v1/predict', 'open'), 'open');
  assert.equal(routeAccess('GET', '/v1/jobs/:id/events', 'open'), 'read');
  assert.equal(routeAccess('HEAD', '/v1/models/:version/:file', 'key'), 'read');
  assert.equal(routeAccess('POST', '/v1/models/:version/evaluate', 'open'), 'admin');
  assert.equal(routeAccess('PATCH', '/v1/anything-new', 'key'), 'admin');
});

test('keys are matched whole, by digest: a prefix, an extension or another case is no key', () => {
  const keys = parseApiKeys(API_KEYS);
  assert.deepEqual(keys.map((k) => k.scope), ['admin', 'predict', 'admin']);
  assert.equal(findKey(keys, ADMIN)?.scope, 'admin');
  assert.equal(findKey(keys, PREDICT)?.scope, 'predict');
  assert.equal(findKey(keys, ADMIN_2)?.keyId, keys[2].keyId);
  for (const wrong of ['', ADMIN.slice(1), `${PREDICT} `, ADMIN.toUpperCase()]) assert.equal(findKey(keys, wrong), undefined, wrong);
  assert.ok(!keys.some((k) => k.keyId.length > 12 || ADMIN.includes(k.keyId)), 'the id names a key without revealing it');
});

test('the OpenAPI document has an Authorize button and says which routes take which key', async () => {
  const spec = (await openapiSpec()) as {
    components: { securitySchemes: Record<string, { type: string }> };
    paths: Record<string, Record<string, { security?: object[]; responses: Record<string, unknown>; description?: string }>>;
  };
  assert.deepEqual(Object.keys(spec.components.securitySchemes).sort(), ['apiKeyHeader', 'bearerAuth']);
  const keyed = [{ bearerAuth: [] }, { apiKeyHeader: [] }];
  assert.deepEqual(spec.paths['/v1/jobs'].post.security, keyed);
  assert.ok(spec.paths['/v1/jobs'].post.responses['403'], 'mutations document 403');
  assert.match(spec.paths['/v1/jobs'].post.description ?? '', /`admin` key/);
  assert.deepEqual(spec.paths['/v1/models'].get.security, keyed);
  assert.deepEqual(spec.paths['/v1/predict'].post.security, [...keyed, {}], 'predict may be open');
  assert.ok(spec.paths['/v1/predict'].post.responses['401'] && spec.paths['/v1/predict'].post.responses['429'], 'predict documents 401 and 429');
  assert.equal(spec.paths['/healthz'].get.security, undefined);
  assert.equal(spec.paths['/healthz'].get.responses['401'], undefined);
});
