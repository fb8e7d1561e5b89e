import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestApi, type TestApi } from '../helpers/api.ts';

let api: TestApi;
before(async () => {
  api = await startTestApi();
});
after(() => api.close());

const post = (payload: unknown) => api.app.inject({ method: 'POST', url: '/v1/jobs', payload: payload as object });

describe('POST /v1/jobs', () => {
  test('a bare train job is queued with every default filled in and a seed chosen', async () => {
    const res = await post({ type: 'train' });
    assert.equal(res.statusCode, 202);
    const job = res.json();
    assert.equal(res.headers.location, `/v1/jobs/${job.id}`);
    assert.equal(job.state, 'queued');
    assert.equal(job.type, 'train');
    assert.deepEqual({ ...job.params, seed: undefined }, {
      type: 'train', architecture: 'cnn', epochs: 12, batchSize: 128, learningRate: 0.001, learningRateSchedule: 'step', limit: 60000, validationSplit: 0, seed: undefined,
    });
    assert.ok(Number.isInteger(job.params.seed));
    assert.equal(job.progress, null);
    assert.deepEqual(job.history, []);
    assert.ok(!Number.isNaN(Date.parse(job.createdAt)));
  });

  test('given parameters are kept', async () => {
    const res = await post({ type: 'train', architecture: 'lenet5', epochs: 2, batchSize: 32, learningRate: 0.01, limit: 500, validationSplit: 0.2, seed: 42 });
    assert.equal(res.statusCode, 202);
    assert.deepEqual(res.json().params, { type: 'train', architecture: 'lenet5', epochs: 2, batchSize: 32, learningRate: 0.01, learningRateSchedule: 'step', limit: 500, validationSplit: 0.2, seed: 42 });
  });

  const invalid: [string, unknown, RegExp][] = [
    ['epochs below 1', { type: 'train', epochs: 0 }, /epochs/],
    ['a fractional batch size', { type: 'train', batchSize: 1.5 }, /batchSize/],
    ['an unknown architecture', { type: 'train', architecture: 'resnet' }, /architecture must be one of "cnn", "lenet5"/],
    ['a learning rate of 0', { type: 'train', learningRate: 0 }, /learningRate/],
    ['a limit over the 60k images', { type: 'train', limit: 60001 }, /limit/],
    ['a validation split of 0.9', { type: 'train', validationSplit: 0.9 }, /validationSplit/],
    ['a misspelt field', { type: 'train', epoch: 3 }, /unknown field 'epoch'/],
    ['an unknown job type', { type: 'distill' }, /type/],
    ['no type', { epochs: 1 }, /type/],
    ['a string for a number', { type: 'train', epochs: 'many' }, /epochs/],
  ];
  for (const [what, body, field] of invalid) {
    test(`${what} is refused with 400 naming the field`, async () => {
      const res = await post(body);
      assert.equal(res.statusCode, 400);
      const err = res.json();
      assert.equal(err.statusCode, 400);
      assert.equal(err.error, 'Bad Request');
      assert.match(err.message, field);
    });
  }

  test('a body that is not JSON is refused with 400, a non-JSON content type with 415', async () => {
    const bad = await api.app.inject({ method: 'POST', url: '/v1/jobs', headers: { 'content-type': 'application/json' }, payload: '{"type":' });
    assert.equal(bad.statusCode, 400);
    const text = await api.app.inject({ method: 'POST', url: '/v1/jobs', headers: { 'content-type': 'text/csv' }, payload: 'type,train' });
    assert.equal(text.statusCode, 415);
  });

  test('nothing is queued by a refused request', async () => {
    const before = (await api.app.inject({ url: '/v1/jobs' })).json().total;
    await post({ type: 'train', epochs: -1 });
    assert.equal((await api.app.inject({ url: '/v1/jobs' })).json().total, before);
  });
});

describe('GET /v1/jobs', () => {
  test('lists jobs newest first with limit and offset', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push((await post({ type: 'train', seed: i })).json().id);
      await new Promise((r) => setTimeout(r, 5)); // distinct creation times
    }
    const page = (await api.app.inject({ url: '/v1/jobs?limit=2' })).json();
    assert.equal(page.limit, 2);
    assert.equal(page.offset, 0);
    assert.deepEqual(page.items.map((j: { id: string }) => j.id), [ids[2], ids[1]]);
    const next = (await api.app.inject({ url: '/v1/jobs?limit=2&offset=2' })).json();
    assert.equal(next.items[0].id, ids[0]);
    assert.equal(page.total, next.total);
    assert.equal((await api.app.inject({ url: '/v1/jobs?limit=0' })).statusCode, 400);
  });

  test('one job by id; an unknown id is 404', async () => {
    const { id } = (await post({ type: 'train' })).json();
    const res = await api.app.inject({ url: `/v1/jobs/${id}` });
    assert.equal(res.statusCode, 200);
    assert.equal(res.json().id, id);
    const missing = await api.app.inject({ url: '/v1/jobs/does-not-exist' });
    assert.equal(missing.statusCode, 404);
    assert.match(missing.json().message, /does-not-exist/);
  });
});

describe('DELETE /v1/jobs/{id}', () => {
  test('a queued job is cancelled at once, and cancelling it again is a conflict', async () => {
    const { id } = (await post({ type: 'train' })).json();
    const res = await api.app.inject({ method: 'DELETE', url: `/v1/jobs/${id}` });
    assert.equal(res.statusCode, 200);
    assert.equal(res.json().state, 'cancelled');
    assert.equal((await api.app.inject({ url: `/v1/jobs/${id}` })).json().state, 'cancelled');
    const again = await api.app.inject({ method: 'DELETE', url: `/v1/jobs/${id}` });
    assert.equal(again.statusCode, 409);
  });

  test('an unknown job is 404', async () => {
    assert.equal((await api.app.inject({ method: 'DELETE', url: '/v1/jobs/nope' })).statusCode, 404);
  });
});
