import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { startTestApi, type TestApi } from '../helpers/api.ts';
import { writeFixtureVersion } from '../helpers/fixture-model.ts';
import { buildPng } from '../helpers/png.ts';
import { makeZip } from '../helpers/zip.ts';

let api: TestApi;
let origin: string;
before(async () => {
  api = await startTestApi();
  await writeFixtureVersion(api.app.services.modelStore);
  await api.app.services.registry.refresh();
  await api.app.listen({ port: 0, host: '127.0.0.1' });
  origin = `http://127.0.0.1:${(api.app.server.address() as AddressInfo).port}`;
});
after(() => api.close());

/** A large photo of a digit: a dark ring on light paper, side×side pixels, a few kB as PNG. */
function photoOfDigit(side: number): Buffer {
  const raw = Buffer.alloc((side + 1) * side);
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const r = Math.hypot(x - side / 2, y - side / 2);
      raw[y * (side + 1) + 1 + x] = r > side / 6 && r < side / 4 ? 30 : 225;
    }
  }
  return buildPng({ width: side, height: side, raw });
}

/**
 * A client on a thread of its own, so its clock runs while the API's event loop does not: asks
 * `url` every 10 ms until told to stop, then answers with each request's time to a 200, in ms.
 */
function probe(url: string): { stop: () => Promise<number[]> } {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const latencies = [];
    let running = true;
    parentPort.once('message', () => { running = false; });
    (async () => {
      while (running) {
        const asked = performance.now();
        const res = await fetch(workerData.url);
        await res.text();
        latencies.push(res.status === 200 ? performance.now() - asked : Infinity);
        await new Promise((r) => setTimeout(r, 10));
      }
      parentPort.postMessage(latencies);
    })();`;
  const worker = new Worker(code, { eval: true, workerData: { url } });
  return {
    stop: async () => {
      const answer = new Promise<number[]>((resolve) => worker.once('message', resolve));
      worker.postMessage('stop');
      const latencies = await answer;
      await worker.terminate();
      return latencies;
    },
  };
}

test('/healthz answers within 100 ms (p90) while large PNGs are decoded for predictions and a dataset upload', async (t) => {
  const png = photoOfDigit(1600);
  const zip = makeZip([0, 1, 2, 3].map((d) => ({ name: `${d}/photo.png`, data: png })));
  const post = (url: string, type: string, body: Buffer | string) =>
    fetch(`${origin}${url}`, { method: 'POST', headers: { 'content-type': type }, body: typeof body === 'string' ? body : new Uint8Array(body) });

  const healthz = probe(`${origin}/healthz`);
  const started = performance.now();
  const answers = await Promise.all([
    post('/v1/predict', 'image/png', png),
    post('/v1/predict', 'image/png', png),
    post('/v1/predict', 'application/json', JSON.stringify({ images: [png, png, png].map((p) => p.toString('base64')) })),
    post('/v1/datasets', 'application/zip', zip),
  ]);
  const elapsed = performance.now() - started;
  const latencies = await healthz.stop();

  assert.deepEqual(answers.map((r) => r.status), [200, 200, 200, 201]);
  const sorted = [...latencies].sort((a, b) => a - b);
  const p90 = sorted[Math.floor(sorted.length * 0.9)];
  const slowest = sorted[sorted.length - 1];
  const perImage = elapsed / 9;
  t.diagnostic(`${latencies.length} /healthz answers while 9 PNGs of 1600×1600 were decoded (${Math.round(elapsed)} ms); p90 ${p90.toFixed(1)} ms, slowest ${slowest.toFixed(1)} ms`);
  assert.ok(elapsed > 1000 && latencies.length >= 20, `the decoding took long enough to matter: ${Math.round(elapsed)} ms, ${latencies.length} answers`);
  // Decoding on the event loop would hold most answers for a whole image's decode. The bound is on the
  // 90th percentile because the other test files running beside this one take the cores at random
  // moments; bench:hostile measures the p99 on a quiet machine.
  assert.ok(p90 < 100, `90th percentile of /healthz answers: ${p90.toFixed(1)} ms`);
  assert.ok(slowest < perImage, `slowest /healthz answer ${slowest.toFixed(1)} ms is less than one image's decoding (${perImage.toFixed(0)} ms)`);
});
