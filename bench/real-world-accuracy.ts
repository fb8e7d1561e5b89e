/**
 * The acceptance check for preprocessing: a default-trained model classifies MNIST test
 * digits re-rendered as people send them — canvas exports (280×280 RGBA, transparent, dark ink,
 * off-centre) and photos of paper (dark ink on light, uneven light, noise) — at least 97% right.
 *
 *   node --import tsx bench/real-world-accuracy.ts [--models-dir DIR] [--version N] [--count 2000] [--offset 0]
 *
 * DIR holds model versions as the service writes them (default: $MODELS_DIR or ./models); the
 * newest is used unless --version is given. Every image goes through the same decoding and
 * preprocessing as POST /v1/predict. Exits 1 below 97% on either kind. Takes about a minute.
 */
import { parseArgs } from 'node:util';
import { loadMnist } from '../src/data/mnist.ts';
import { initBackend } from '../src/ml/backend.ts';
import { imageToMnistPixels } from '../src/image/preprocess.ts';
import { LocalEngine } from '../src/serving/inference.ts';
import { ModelStore } from '../src/store/model-store.ts';
import { renderDigits } from '../test/helpers/real-world-digits.ts';

const TARGET = 0.97;
const { values: args } = parseArgs({
  options: {
    'models-dir': { type: 'string', default: process.env.MODELS_DIR ?? './models' },
    version: { type: 'string' },
    count: { type: 'string', default: '2000' },
    offset: { type: 'string', default: '0' },
  },
});

await initBackend((process.env.TF_BACKEND as 'auto' | undefined) ?? 'auto');
const store = new ModelStore(args['models-dir']!);
const version = args.version ? Number(args.version) : await store.latestVersion();
if (!version) throw new Error(`no model version in ${store.root}`);
const meta = await store.readMetadata(version);
const engine = new LocalEngine();
const handle = await engine.load(version, await store.readModelFiles(version));

const count = Number(args.count);
const offset = Number(args.offset);
const test = await loadMnist('test');
console.log(`version ${version} (${meta.architecture}, ${meta.dataset.trainCount} training images, MNIST test accuracy ${(100 * meta.metrics.testAccuracy).toFixed(2)}%)`);
console.log(`rendering MNIST test digits ${offset}…${offset + count - 1} as canvas exports and paper photos…`);
const digits = renderDigits(test.images, test.labels, count, offset, 2024);

async function accuracy(inputs: Uint8Array[]): Promise<number> {
  let correct = 0;
  for (let at = 0; at < inputs.length; at += 64) {
    const batch = inputs.slice(at, at + 64);
    const pixels = new Uint8Array(batch.length * 784);
    batch.forEach((img, i) => pixels.set(img, i * 784));
    const { probabilities: probs } = await engine.predict(handle, pixels, batch.length);
    batch.forEach((_, i) => {
      let digit = 0;
      for (let c = 1; c < 10; c++) if (probs[i * 10 + c] > probs[i * 10 + digit]) digit = c;
      if (digit === digits[at + i].label) correct++;
    });
  }
  return correct / inputs.length;
}

const results = {
  'MNIST originals': await accuracy(digits.map((d) => d.original)),
  'canvas exports': await accuracy(digits.map((d) => imageToMnistPixels(d.canvas))),
  'paper photos': await accuracy(digits.map((d) => imageToMnistPixels(d.photo))),
};
for (const [kind, acc] of Object.entries(results)) console.log(`${kind.padEnd(16)} ${(100 * acc).toFixed(2)}%`);
const pass = results['canvas exports'] >= TARGET && results['paper photos'] >= TARGET;
console.log(pass ? `PASS: both ≥ ${100 * TARGET}%` : `FAIL: below ${100 * TARGET}%`);
await engine.close();
process.exit(pass ? 0 : 1);
