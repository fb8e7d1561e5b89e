import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { withDefaults } from '../../src/queue/job-data.ts';
import { startTestApi, type TestApi } from '../helpers/api.ts';
import { writeFixtureVersion } from '../helpers/fixture-model.ts';

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
      type: 'train', architecture: 'cnn', epochs: 2, batchSize: 256, learningRate: 0.01, learningRateSchedule: 'one-cycle', beta1: 0.7, beta2: 0.9, limit: 60000, validationSplit: 0, maxDurationSeconds: 21600, seed: undefined,
    });
    assert.ok(Number.isInteger(job.params.seed));
    assert.equal(job.progress, null);
    assert.deepEqual(job.history, []);
    assert.ok(!Number.isNaN(Date.parse(job.createdAt)));
  });

  test('given parameters are kept', async () => {
    const body = { type: 'train', architecture: 'resnet', epochs: 3, batchSize: 48, learningRate: 0.002, learningRateSchedule: 'step', beta1: 0.9, beta2: 0.999, limit: 500, validationSplit: 0.2, maxDurationSeconds: 600, seed: 42 };
    const res = await post(body);
    assert.equal(res.statusCode, 202);
    assert.deepEqual(res.json().params, body);
  });

  test('without a batch size, small jobs get smaller batches so they still take enough steps', async () => {
    const batchOf = async (limit: number, epochs: number) => (await post({ type: 'train', limit, epochs })).json().params.batchSize;
    assert.deepEqual(
      [await batchOf(60000, 2), await batchOf(60000, 1), await batchOf(20000, 1), await batchOf(10000, 1), await batchOf(3000, 1), await batchOf(100, 1)],
      [256, 128, 32, 32, 32, 32],
    );
  });

  test('a fine-tune job keeps defaults suited to fine-tuning: a constant low rate and Adam\'s usual betas', () => {
    const { seed: _seed, ...filled } = withDefaults({ type: 'finetune', baseModel: 1, dataset: 'mnist' });
    assert.deepEqual(filled, {
      type: 'finetune', baseModel: 1, dataset: 'mnist', freeze: 'features', epochs: 5, batchSize: 32, learningRate: 0.0005, learningRateSchedule: 'constant', beta1: 0.9, beta2: 0.999, validationSplit: 0.2, rehearsal: 0.5,
    });
  });

  const invalid: [string, unknown, RegExp][] = [
    ['epochs below 1', { type: 'train', epochs: 0 }, /epochs/],
    ['a fractional batch size', { type: 'train', batchSize: 1.5 }, /batchSize/],
    ['an unknown architecture', { type: 'train', architecture: 'vgg' }, /architecture must be one of "cnn", "lenet5", "stn", "resnet"/],
    ['an unknown schedule', { type: 'train', learningRateSchedule: 'cosine' }, /learningRateSchedule must be one of "one-cycle", "step", "constant"/],
    ['a beta1 of 1', { type: 'train', beta1: 1 }, /beta1/],
    ['a negative beta2', { type: 'train', beta2: -0.1 }, /beta2/],
    ['a learning rate below 1e-6', { type: 'train', learningRate: 1e-7 }, /learningRate/],
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

  test('constraints across fields are checked when the job is posted, not in the worker', async () => {
    const version = await writeFixtureVersion(api.app.services.modelStore);
    const cases: [string, object, RegExp][] = [
      ['a zoom range that runs backwards', { type: 'train', augment: { scale: [1.2, 0.8] } }, /augment.scale: the range \[1.2, 0.8\] runs backwards/],
      ['freezing more layers than the base has', { type: 'finetune', baseModel: version, dataset: 'mnist', freeze: 1e9 }, /freeze: version \d+ has 6 layers, so freezing 1000000000 leaves nothing to train/],
      ['freezing every layer', { type: 'finetune', baseModel: version, dataset: 'mnist', freeze: 6 }, /freezing 6 leaves nothing to train/],
      ['a time budget over JOB_MAX_SECONDS', { type: 'train', maxDurationSeconds: 10 ** 7 }, /maxDurationSeconds: at most 21600 \(JOB_MAX_SECONDS\)/],
      ['a learning rate of 1e-320', { type: 'train', learningRate: 1e-320 }, /learningRate/],
    ];
    for (const [what, body, message] of cases) {
      const res = await post(body);
      assert.equal(res.statusCode, 400, what);
      assert.match(res.json().message, message, what);
    }
    const ok = await post({ type: 'finetune', baseModel: version, dataset: 'mnist', freeze: 5, maxDurationSeconds: 600 });
    assert.equal(ok.statusCode, 202, ok.body);
    assert.equal(ok.json().params.maxDurationSeconds, 600);
    assert.equal((await post({ type: 'train' })).json().params.maxDurationSeconds, 21600, 'JOB_MAX_SECONDS is the default budget');
  });
});

describe('a full queue', () => {
  test('past MAX_QUEUED_JOBS waiting jobs a new one is refused with 429 and Retry-After', async () => {
    const small = await startTestApi({ MAX_QUEUED_JOBS: '2' });
    try {
      const send = () => small.app.inject({ method: 'POST', url: '/v1/jobs', payload: { type: 'train', limit: 100, epochs: 1 } });
      assert.deepEqual([(await send()).statusCode, (await send()).statusCode], [202, 202]);
      const refused = await send();
      assert.equal(refused.statusCode, 429, refused.body);
      assert.ok(Number(refused.headers['retry-after']) > 0);
      assert.match(refused.json().message, /2 training jobs are already waiting for a worker \(MAX_QUEUED_JOBS\)/);
    } finally {
      await small.close();
    }
  });

  test('a burst of concurrent posts cannot pass MAX_QUEUED_JOBS', async () => {
    const small = await startTestApi({ MAX_QUEUED_JOBS: '5' });
    try {
      const statuses = await Promise.all(
        Array.from({ length: 30 }, () => small.app.inject({ method: 'POST', url: '/v1/jobs', payload: { type: 'train', limit: 100, epochs: 1 } }).then((r) => r.statusCode)),
      );
      assert.deepEqual([statuses.filter((s) => s === 202).length, statuses.filter((s) => s === 429).length], [5, 25]);
    } finally {
      await small.close();
    }
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

  test("only ids of the form the API hands out are looked up: BullMQ's own keys are 404, not 500", async () => {
    for (const id of ['meta', 'id', 'events', 'completed', 'stalled-check', 'wait', 'x'.repeat(100)]) {
      assert.equal((await api.app.inject({ url: `/v1/jobs/${encodeURIComponent(id)}` })).statusCode, 404, `GET ${id}`);
      assert.equal((await api.app.inject({ method: 'DELETE', url: `/v1/jobs/${encodeURIComponent(id)}` })).statusCode, 404, `DELETE ${id}`);
    }
    assert.equal(await api.app.services.redis.scard(`${api.config.QUEUE_PREFIX}:jobs:cancelled`), 0, 'no phantom cancel was recorded');
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
