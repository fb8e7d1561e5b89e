import { parseJobData, type FinetuneJobData } from '../../src/queue/job-data.ts';
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as tfl from '@tensorflow/tfjs-layers';
import { loadMnist } from '../../src/data/mnist.ts';
import { createCnn } from '../../src/ml/architectures.ts';
import { serializeModel } from '../../src/ml/serialize.ts';
import { runFinetuneJob } from '../../src/worker/finetune-job.ts';
import { startTestApi, type TestApi } from '../helpers/api.ts';
import { mnistTestPngs } from '../helpers/mnist-pngs.ts';
import { multipart, type Part } from '../helpers/multipart.ts';

let api: TestApi;
before(async () => {
  api = await startTestApi();
});
after(() => api.close());

/** A model as a Keras → tensorflowjs_converter user would bring it: model.json + a weights file. */
async function upload(model: tfl.LayersModel, tamper: (json: Record<string, unknown>, weights: Buffer) => Part[] | void = () => undefined) {
  const files = await serializeModel(model);
  model.dispose();
  const json = JSON.parse(JSON.stringify(files.modelJson));
  const weights = Buffer.from(files.weights);
  const parts = tamper(json, weights) ?? [
    { name: 'files', filename: 'model.json', contentType: 'application/json', data: JSON.stringify(json) },
    { name: 'files', filename: 'group1-shard1of1.bin', contentType: 'application/octet-stream', data: weights },
  ];
  return api.app.inject({ method: 'POST', url: '/v1/models', ...multipart(parts) });
}

const mlp = (units = 10) =>
  tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [784], units: 32, activation: 'relu' }), tfl.layers.dense({ units })] }); // logits, no softmax

test('a [784]-input model with logits is imported, adapted, scored and served', async () => {
  const res = await upload(mlp());
  assert.equal(res.statusCode, 201, res.body);
  const meta = res.json();
  assert.equal(res.headers.location, `/v1/models/${meta.version}`);
  assert.equal(meta.architecture, 'imported');
  assert.deepEqual(meta.params.adapted, ['flatten [28,28,1] → [784] added in front', 'softmax added after the logits']);
  assert.equal(meta.metrics.confusionMatrix.flat().reduce((a: number, b: number) => a + b, 0), 10000);

  const stored = (await api.app.inject({ url: `/v1/models/${meta.version}/model.json` })).json();
  assert.deepEqual(stored.modelTopology.config.layers[0].config.batch_input_shape, [null, 28, 28, 1]);

  const [digit] = await mnistTestPngs(1);
  const pred = await api.app.inject({ method: 'POST', url: `/v1/predict?version=${meta.version}`, headers: { 'content-type': 'image/png' }, payload: digit.png });
  assert.equal(pred.statusCode, 200, pred.body);
  const p = pred.json().predictions[0].probabilities;
  assert.ok(Math.abs(p.reduce((a: number, b: number) => a + b, 0) - 1) < 1e-4);
});

test('a [28,28,1] softmax model is imported unchanged and can be fine-tuned', async () => {
  const res = await upload(createCnn(3));
  assert.equal(res.statusCode, 201, res.body);
  const meta = res.json();
  assert.deepEqual(meta.params.adapted, []);
  const train = await loadMnist('train');
  const small = await api.app.services.datasetStore.create({ images: train.images.subarray(0, 3000 * 784), labels: train.labels.subarray(0, 3000), count: 3000 }, { name: 'mnist-3k', format: 'idx' });
  const outcome = await runFinetuneJob(
    parseJobData({ type: 'finetune', baseModel: meta.version, dataset: small.id, freeze: 'features', epochs: 1, batchSize: 32, learningRate: 0.003, validationSplit: 0.1, rehearsal: 0, seed: 1 }) as FinetuneJobData,
    { modelsDir: api.config.modelsDir, datasetsDir: api.config.datasetsDir },
  );
  assert.ok(outcome.metrics.testAccuracy > meta.metrics.testAccuracy + 0.3, `${meta.metrics.testAccuracy} → ${outcome.metrics.testAccuracy}`);
  assert.equal(outcome.architecture, 'imported');
});

test('models that cannot serve digits are refused with 400 and the reason', async () => {
  const before = (await api.app.inject({ url: '/v1/models' })).json().items.length;
  const cases: [string, Promise<{ statusCode: number; json: () => { message: string } }>, RegExp][] = [
    ['5 outputs', upload(mlp(5)), /10 values/],
    ['a 32×32×3 input', upload(tfl.sequential({ layers: [tfl.layers.flatten({ inputShape: [32, 32, 3] }), tfl.layers.dense({ units: 10 })] })), /\[null,28,28,1\] or \[null,784\]/],
    ['missing weights', upload(mlp(), (json) => [{ name: 'f', filename: 'model.json', data: JSON.stringify(json) }]), /group1-shard1of1.bin.*not uploaded/],
    ['truncated weights', upload(mlp(), (json, w) => [{ name: 'f', filename: 'model.json', data: JSON.stringify(json) }, { name: 'f', filename: 'group1-shard1of1.bin', data: w.subarray(0, 100) }]), /hold 100 bytes/],
    ['not JSON', upload(mlp(), () => [{ name: 'f', filename: 'model.json', data: '{oops' }]), /not valid JSON/],
    ['a graph model', upload(mlp(), (json) => [{ name: 'f', filename: 'model.json', data: JSON.stringify({ ...json, format: 'graph-model' }) }]), /graph-model/],
  ];
  for (const [what, pending, message] of cases) {
    const res = await pending;
    assert.equal(res.statusCode, 400, what);
    assert.match(res.json().message, message, what);
  }
  const raw = await api.app.inject({ method: 'POST', url: '/v1/models', payload: { model: 'json' } });
  assert.equal(raw.statusCode, 400);
  assert.equal((await api.app.inject({ url: '/v1/models' })).json().items.length, before, 'nothing was stored');
});
