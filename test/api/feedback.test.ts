import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { PredictionLog } from '../../src/redis/prediction-log.ts';
import { redisKeys } from '../../src/redis/keys.ts';
import { CORRECTION_BYTES } from '../../src/redis/feedback-store.ts';
import { startTestApi, type TestApi } from '../helpers/api.ts';
import { mnistTestPngs } from '../helpers/mnist-pngs.ts';
import { multipart } from '../helpers/multipart.ts';
import { writeUntrainedVersion } from '../helpers/serving.ts';
import { pino } from 'pino';
import { feedbackFinetuneTrigger } from '../../src/queue/feedback-finetune-trigger.ts';
import type { JobService } from '../../src/queue/job-service.ts';

/* Corrections: by prediction id, as images, as multipart; deduplicated; listed, zipped, deleted; within the quota. */
let api: TestApi;
let digits: { png: Buffer; label: number }[];
const QUOTA = 55_000;
before(async () => {
  api = await startTestApi({ DATASETS_MAX_BYTES: String(QUOTA) });
  await writeUntrainedVersion(api.app.services.modelStore, 1);
  await api.app.services.registry.refresh();
  digits = await mnistTestPngs(70);
});
after(() => api.close());

const b64 = (png: Buffer) => png.toString('base64');
const send = (payload: object) => api.app.inject({ method: 'POST', url: '/v1/feedback', payload });
const list = async () => (await api.app.inject({ url: '/v1/feedback?limit=1000' })).json();

test('a predict answer names each image; a correction by that id stores the image, once, and a new label replaces the old with the change recorded', async () => {
  const form = multipart(digits.slice(0, 2).map((d, i) => ({ name: 'images', filename: `d${i}.png`, contentType: 'image/png', data: d.png })));
  const predicted = (await api.app.inject({ method: 'POST', url: '/v1/predict', ...form })).json();
  const ids = predicted.predictions.map((p: { predictionId: string }) => p.predictionId);
  assert.equal(new Set(ids).size, 2, `one id per image: ${ids}`);

  const first = await send({ predictionId: ids[0], label: digits[0].label });
  assert.equal(first.statusCode, 201, first.body);
  const [item] = first.json().items;
  assert.equal(item.status, 'created');
  assert.deepEqual(first.json().total, 1);
  const again = await send({ predictionId: ids[0], label: digits[0].label });
  assert.deepEqual([again.statusCode, again.json().items[0].status, again.json().items[0].id], [200, 'unchanged', item.id]);
  // The same image sent as a PNG is the same correction (same preprocessed pixels), now relabelled.
  const wrong = (digits[0].label + 1) % 10;
  const relabelled = await send({ image: b64(digits[0].png), label: wrong });
  assert.equal(relabelled.statusCode, 201);
  assert.deepEqual(relabelled.json().items[0], { id: item.id, label: wrong, status: 'relabelled', previousLabel: digits[0].label });
  const { total, items } = await list();
  assert.equal(total, 1);
  assert.equal(items[0].source, 'prediction');
  assert.deepEqual(items[0].changes.map((c: { from: number; to: number }) => [c.from, c.to]), [[digits[0].label, wrong]]);
});

test('several images by JSON and by multipart; a bad request is a 400/404/415 that stores nothing', async () => {
  const json = await send({ images: digits.slice(1, 4).map((d) => b64(d.png)), labels: digits.slice(1, 4).map((d) => d.label) });
  assert.equal(json.statusCode, 201, json.body);
  assert.deepEqual(json.json().items.map((i: { status: string }) => i.status), ['created', 'created', 'created']);
  const form = multipart([
    ...digits.slice(4, 6).map((d, i) => ({ name: 'images', filename: `d${i}.png`, contentType: 'image/png', data: d.png })),
    { name: 'labels', data: digits.slice(4, 6).map((d) => d.label).join(',') },
  ]);
  const multi = await api.app.inject({ method: 'POST', url: '/v1/feedback', ...form });
  assert.equal(multi.statusCode, 201, multi.body);
  assert.equal(multi.json().total, 6);

  const bad: [object, number, RegExp][] = [
    [{ images: [b64(digits[6].png)], labels: [1, 2] }, 400, /1 image\(s\) but 2 label\(s\)/],
    [{ image: b64(digits[6].png), label: 10 }, 400, /label/],
    [{ image: b64(digits[6].png) }, 400, /`image` goes with `label`/],
    [{ image: b64(digits[6].png), predictionId: '1-0', label: 1 }, 400, /exactly one of/],
    [{ predictionId: '1700000000000-0', label: 1 }, 404, /not known here: images are kept for FEEDBACK_WINDOW_SECONDS \(3600 s\)/],
    [{ image: 'not base64!', label: 1 }, 400, /not base64/],
  ];
  for (const [payload, status, message] of bad) {
    const res = await send(payload);
    assert.equal(res.statusCode, status, JSON.stringify(payload).slice(0, 80));
    assert.match(res.json().message, message);
  }
  const text = await api.app.inject({ method: 'POST', url: '/v1/feedback', headers: { 'content-type': 'text/plain' }, payload: '7' });
  assert.equal(text.statusCode, 415);
  assert.equal((await list()).total, 6, 'nothing stored by the bad requests');
});

test('GET /v1/feedback.zip is an ImageFolder ZIP that POST /v1/datasets takes back; DELETE removes one', async () => {
  const zip = await api.app.inject({ url: '/v1/feedback.zip' });
  assert.equal(zip.statusCode, 200);
  assert.equal(zip.headers['content-type'], 'application/zip');
  const uploaded = await api.app.inject({ method: 'POST', url: '/v1/datasets', headers: { 'content-type': 'application/zip' }, payload: zip.rawPayload });
  assert.equal(uploaded.statusCode, 201, uploaded.body);
  const { items } = await list();
  const classCounts = Array<number>(10).fill(0);
  for (const i of items) classCounts[i.label]++;
  assert.deepEqual([uploaded.json().count, uploaded.json().classCounts], [6, classCounts]);

  const gone = items[0].id;
  assert.equal((await api.app.inject({ method: 'DELETE', url: `/v1/feedback/${gone}` })).statusCode, 204);
  assert.equal((await api.app.inject({ method: 'DELETE', url: `/v1/feedback/${gone}` })).statusCode, 404);
  const after = await list();
  assert.equal(after.total, 5);
  assert.ok(!after.items.some((i: { id: string }) => i.id === gone));
});

test('corrections count against DATASETS_MAX_BYTES with the datasets: past it, 507 and nothing stored', async () => {
  // The dataset uploaded above and 5 corrections are stored; 64 more would pass the quota.
  const batch = digits.slice(6, 70);
  const res = await send({ images: batch.map((d) => b64(d.png)), labels: batch.map((d) => d.label) });
  assert.equal(res.statusCode, 507, res.body);
  assert.match(res.json().message, new RegExp(`^these 64 corrections would take ${(64 * CORRECTION_BYTES).toLocaleString('en-US')} bytes stored, but the datasets and corrections already use`));
  assert.equal((await list()).total, 5);
  assert.equal((await send({ image: b64(digits[6].png), label: digits[6].label })).statusCode, 201, 'one more still fits');
});

test('a predicted image is found by its id within FEEDBACK_WINDOW_SECONDS, not after', async () => {
  const { redis, config } = { redis: api.app.services.redis, config: api.config };
  const key = `${redisKeys(config.QUEUE_PREFIX).predictions}:window-test`; // a stream of its own: ids only grow
  const old = `${Date.now() - 5000}-0`;
  await redis.xadd(key, old, 'p', Buffer.alloc(784, 7));
  const log = (windowSeconds: number) => new PredictionLog(redis, key, { windowSeconds, maxImages: 100 }, pino({ level: 'silent' }));
  assert.deepEqual(await log(3600).lookup(old), new Uint8Array(784).fill(7));
  assert.equal(await log(2).lookup(old), undefined);
  assert.equal(await log(3600).lookup('../etc'), undefined);
  // FEEDBACK_WINDOW_SECONDS=0: nothing kept, no id.
  assert.deepEqual(await log(0).record([new Uint8Array(784)]), undefined);
});

test('FEEDBACK_FINETUNE_EVERY: every N corrections queue one fine-tune on them, never a second while it is unfinished, also when replicas race', async () => {
  // Enough corrections for a fine-tune (at least 20).
  const more = digits.slice(7, 21);
  assert.equal((await send({ images: more.map((d) => b64(d.png)), labels: more.map((d) => d.label) })).statusCode, 201);
  const { redis, modelStore, datasetStore, feedback } = api.app.services;
  const queued: { id: string; data: unknown }[] = [];
  let state = 'queued';
  const jobs = {
    enqueue: async (data: unknown, _meta: unknown, id: string) => void queued.push({ id, data }),
    get: async (id: string) => (queued.some((j) => j.id === id) ? { state } : undefined),
  } as unknown as JobService;
  const keys = { counter: `${api.config.QUEUE_PREFIX}:trigger-test:count`, job: `${api.config.QUEUE_PREFIX}:trigger-test:job` };
  const replica = () =>
    feedbackFinetuneTrigger({ every: 3, redis, keys, jobs, modelStore, datasetStore, feedback, maxSeconds: 3600, servedVersion: () => 1, log: pino({ level: 'silent' }) });
  const [a, b] = [replica(), replica()];

  await a(2);
  assert.equal(queued.length, 0, '2 of 3');
  await Promise.all([a(1), b(1)]);
  assert.equal(queued.length, 1, 'two replicas past the threshold at once queue one job');
  assert.deepEqual(queued[0].data, { ...(queued[0].data as object), type: 'finetune', baseModel: 1, dataset: 'feedback' });
  await b(5);
  state = 'running';
  await a(5);
  assert.equal(queued.length, 1, 'none while the first is unfinished');
  state = 'succeeded';
  await b(1);
  assert.equal(queued.length, 2, 'the next correction after it ended queues the next');
});
