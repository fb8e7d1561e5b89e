import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { loadMnist } from '../../src/data/mnist.ts';
import { redisKeys } from '../../src/redis/keys.ts';
import { startTestApi, type TestApi } from '../helpers/api.ts';
import { writeUntrainedVersion } from '../helpers/serving.ts';

// Under more load than the model takes, predict sheds it at once rather than queueing without end.
let api: TestApi;
let pixels: number[][];
before(async () => {
  // A long batching wait keeps the first request queued while the others arrive.
  api = await startTestApi({ PREDICT_MAX_QUEUED_IMAGES: '8', MAX_IMAGES_PER_REQUEST: '8', PREDICT_BATCH_TIMEOUT_MS: '200' });
  await writeUntrainedVersion(api.app.services.modelStore, 1);
  await api.app.services.registry.refresh();
  const testSet = await loadMnist('test');
  pixels = Array.from({ length: 8 }, (_, k) => Array.from(testSet.images.subarray(k * 784, (k + 1) * 784)));
});
after(() => api.close());

test('past PREDICT_MAX_QUEUED_IMAGES waiting, predict answers 503 with Retry-After at once and keeps none of those images', async () => {
  const answers = await Promise.all(Array.from({ length: 6 }, () => api.app.inject({ method: 'POST', url: '/v1/predict', payload: { pixels } })));
  const ok = answers.filter((a) => a.statusCode === 200);
  const shed = answers.filter((a) => a.statusCode === 503);
  assert.equal(ok.length + shed.length, answers.length, `statuses ${answers.map((a) => a.statusCode)}`);
  assert.ok(ok.length >= 1 && shed.length >= 1, `${ok.length} answered, ${shed.length} refused`);
  for (const a of shed) {
    assert.equal(a.headers['retry-after'], '1');
    assert.match(a.json().message, /images are waiting for the model here \(PREDICT_MAX_QUEUED_IMAGES 8\); try again in a second/);
  }
  for (const a of ok) assert.equal(a.json().predictions.length, 8);
  // Only the answered requests' images were kept for corrections.
  const kept = await api.app.services.redis.xlen(redisKeys(api.config.QUEUE_PREFIX).predictions);
  assert.equal(kept, ok.length * 8);
  // Once the queue has drained, predict answers again.
  assert.equal((await api.app.inject({ method: 'POST', url: '/v1/predict', payload: { pixels } })).statusCode, 200);
});
