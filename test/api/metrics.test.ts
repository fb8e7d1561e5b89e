import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { trainingWorker } from '../../src/queue/queues.ts';
import { startTestApi, type TestApi } from '../helpers/api.ts';
import { REDIS_URL, waitFor } from '../helpers/env.ts';
import { mnistTestPngs } from '../helpers/mnist-pngs.ts';
import { untrainedModelFiles, writeModelFiles, writeUntrainedVersion } from '../helpers/serving.ts';

let api: TestApi;
before(async () => {
  api = await startTestApi();
  await writeUntrainedVersion(api.app.services.modelStore, 1);
  await api.app.services.registry.refresh();
});
after(() => api.close());

const scrape = async () => {
  const res = await api.app.inject({ url: '/metrics' });
  assert.equal(res.statusCode, 200);
  assert.match(String(res.headers['content-type']), /^text\/plain/);
  return res.body;
};
/** The value of one sample, e.g. value(text, 'http_requests_total', {route: '/v1/predict'}). */
function value(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}
/** The sum of every sample of `name` whatever its labels (a labelled histogram's count over all its series). */
const total = (text: string, name: string) =>
  text.split('\n').filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `)).reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);

test('requests are counted and timed by route pattern and status', async () => {
  const digits = await mnistTestPngs(3);
  await Promise.all(digits.map((d) => api.app.inject({ method: 'POST', url: '/v1/predict', headers: { 'content-type': 'image/png' }, payload: d.png })));
  await api.app.inject({ method: 'POST', url: '/v1/predict', headers: { 'content-type': 'text/plain' }, payload: 'seven' });
  await api.app.inject({ url: '/v1/models/1' });
  await api.app.inject({ url: '/no/such/route/12345' });
  const text = await scrape();
  assert.equal(value(text, 'http_requests_total', { method: 'POST', route: '/v1/predict', status_code: '200' }), 3);
  assert.equal(value(text, 'http_requests_total', { method: 'POST', route: '/v1/predict', status_code: '415' }), 1);
  assert.equal(value(text, 'http_requests_total', { route: '/v1/models/:version', status_code: '200' }), 1, 'the pattern, not the URL');
  assert.equal(value(text, 'http_requests_total', { route: '(unmatched)', status_code: '404' }), 1);
  assert.equal(value(text, 'http_request_duration_seconds_count', { route: '/v1/predict', status_code: '200' }), 3);
  assert.equal(value(text, 'http_request_duration_seconds_bucket', { route: '/v1/predict', status_code: '200', le: '+Inf' }), 3);
  assert.doesNotMatch(text, /12345/);
});

test('predictions are counted by model version and engine, and model calls by batch size and compute time', async () => {
  const [d] = await mnistTestPngs(1);
  // Version 2 as written before ONNX: no model.onnx, so TF.js runs it.
  await writeModelFiles(api.app.services.modelStore, await untrainedModelFiles(2, { onnx: false }), 2);
  await api.app.inject({ method: 'POST', url: '/v1/predict?version=2', payload: { images: [d.png.toString('base64'), d.png.toString('base64')] } });
  const text = await scrape();
  assert.equal(value(text, 'mnist_predictions_total', { model_version: '1', engine: 'onnxruntime' }), 3);
  assert.equal(value(text, 'mnist_predictions_total', { model_version: '2', engine: 'tfjs' }), 2);
  assert.equal(value(text, 'mnist_predict_model_seconds_count', { engine: 'tfjs' }), 1, 'the one call on version 2');
  const calls = total(text, 'mnist_predict_batch_size_count');
  assert.ok(calls >= 2 && calls <= 4, `${calls} model calls for 5 images in 4 requests`);
  assert.equal(value(text, 'mnist_predict_batch_size_sum'), 5);
  assert.equal(total(text, 'mnist_predict_model_seconds_count'), calls, 'every model call is timed');
  const seconds = total(text, 'mnist_predict_model_seconds_sum');
  const wall = value(text, 'http_request_duration_seconds_sum', { route: '/v1/predict', status_code: '200' })!;
  assert.ok(seconds > 0 && seconds < wall, `the model computed ${seconds} s, within the ${wall} s the predict requests took`);
  assert.equal(value(text, 'mnist_predict_queue_seconds_count'), 4, 'every request that reached the batcher reports its wait (the 415 did not)');
  const queued = value(text, 'mnist_predict_queue_seconds_sum')!;
  assert.ok(queued >= 0 && queued < wall, `the requests queued ${queued} s of the ${wall} s they took`);
});

test('training jobs are reported by BullMQ state, and finished ones by duration', async () => {
  const { config } = api;
  const created = await api.app.inject({ method: 'POST', url: '/v1/jobs', payload: { type: 'train', epochs: 1, limit: 100 } });
  assert.equal(created.statusCode, 202);
  assert.equal(value(await scrape(), 'mnist_training_jobs', { state: 'waiting' }), 1);

  // A stand-in worker that finishes the job at once, so a duration gets observed.
  const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const worker = trainingWorker(async () => new Promise((r) => setTimeout(() => r({ modelVersion: 1, metrics: { testAccuracy: 0.5, testLoss: 1 } }), 50)), { connection, prefix: config.QUEUE_PREFIX });
  try {
    const text = await waitFor('a job duration', async () => {
      const t = await scrape();
      return value(t, 'mnist_training_job_duration_seconds_count', { outcome: 'completed' }) === 1 ? t : undefined;
    }, 10_000);
    assert.equal(value(text, 'mnist_training_jobs', { state: 'completed' }), 1);
    assert.equal(value(text, 'mnist_training_jobs', { state: 'waiting' }), 0);
    const seconds = value(text, 'mnist_training_job_duration_seconds_sum', { outcome: 'completed' })!;
    assert.ok(seconds >= 0.04 && seconds < 5, `${seconds} s`);
  } finally {
    await worker.close();
    connection.disconnect();
  }
});

test('the Node.js process metrics are there too', async () => {
  const text = await scrape();
  assert.ok(value(text, 'process_cpu_user_seconds_total')! > 0);
  assert.match(text, /^nodejs_eventloop_lag_p99_seconds /m);
});
