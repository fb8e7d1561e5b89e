import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import createClient from 'openapi-fetch';
import { pino } from 'pino';
import type { paths } from '../../openapi/schema.d.ts';
import { startWorker, type RunningWorker } from '../../src/worker/start-worker.ts';
import { startTestApi, type TestApi } from '../helpers/api.ts';
import { waitFor } from '../helpers/env.ts';

// A team's client, as the README shows it: types generated from openapi/openapi.json by
// openapi-typescript, requests by openapi-fetch, against the API on a real port (and a worker in
// this process running jobs in its sandboxed child, as in production). Nothing below is cast: a
// field renamed in a route's schema stops this file compiling.
let api: TestApi;
let worker: RunningWorker;
let client: ReturnType<typeof createClient<paths>>;
before(async () => {
  api = await startTestApi();
  worker = await startWorker(api.config, pino({ level: 'silent' }), 'wasm');
  await api.app.listen({ port: 0, host: '127.0.0.1' });
  client = createClient<paths>({ baseUrl: `http://127.0.0.1:${(api.app.server.address() as AddressInfo).port}` });
});
after(async () => {
  await worker.close();
  await api.close();
});

test('the generated client trains a model, polls the job, lists versions, predicts a PNG, pins and unpins, and reads an error body', async () => {
  const created = await client.POST('/v1/jobs', { body: { type: 'train', limit: 300, epochs: 1, seed: 3 } });
  assert.equal(created.response.status, 202);
  assert.ok(created.data, JSON.stringify(created.error));
  const id = created.data.id;
  assert.equal(created.data.params.type, 'train');

  const job = await waitFor('the job to finish', async () => {
    const { data } = await client.GET('/v1/jobs/{id}', { params: { path: { id } } });
    return data && ['succeeded', 'failed', 'cancelled'].includes(data.state) ? data : undefined;
  }, 120_000);
  assert.equal(job.state, 'succeeded', job.error ?? undefined);
  const version = job.modelVersion;
  assert.ok(typeof version === 'number');

  const models = await client.GET('/v1/models');
  assert.deepEqual(models.data?.items.map((m) => m.version), [version]);
  await api.app.services.registry.refresh();

  const png = (await readFile(new URL('../../examples/digit-7.png', import.meta.url))).toString('base64');
  const predicted = await client.POST('/v1/predict', { body: { images: [png] } });
  assert.ok(predicted.data, JSON.stringify(predicted.error));
  assert.equal(predicted.data.modelVersion, version);
  assert.equal(predicted.data.predictions.length, 1);
  assert.equal(predicted.data.predictions[0].probabilities.length, 10);

  const pinned = await client.PUT('/v1/models/serving', { body: { version } });
  assert.equal(pinned.data?.pinnedVersion, version);
  const unpinned = await client.DELETE('/v1/models/serving');
  assert.equal(unpinned.data?.pinnedVersion, null);

  // An error comes back typed as the Error schema, with a message that says what is wrong.
  const missing = await client.GET('/v1/jobs/{id}', { params: { path: { id: 'job-does-not-exist' } } });
  assert.equal(missing.response.status, 404);
  assert.equal(missing.error?.statusCode, 404);
  assert.match(missing.error?.message ?? '', /job/i);
  const invalid = await client.POST('/v1/jobs', { body: { type: 'train', epochs: 0 } });
  assert.equal(invalid.response.status, 400);
  assert.match(invalid.error?.message ?? '', /epochs/);
});
