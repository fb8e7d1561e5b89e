import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { startTestApi, type TestApi } from '../helpers/api.ts';
import { writeFixtureVersion } from '../helpers/fixture-model.ts';
import { healthProbe } from '../helpers/health-probe.ts';
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

test('/healthz answers within 100 ms (p90) while large PNGs are decoded for predictions and a dataset upload', async (t) => {
  const png = photoOfDigit(2000);
  const zip = makeZip([0, 1, 2, 3].map((d) => ({ name: `${d}/photo.png`, data: png })));
  const post = (url: string, type: string, body: Buffer | string) =>
    fetch(`${origin}${url}`, { method: 'POST', headers: { 'content-type': type }, body: typeof body === 'string' ? body : new Uint8Array(body) });

  const healthz = healthProbe(`${origin}/healthz`);
  await healthz.ready;
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
  t.diagnostic(`${latencies.length} /healthz answers while 9 PNGs of 2000×2000 were decoded (${Math.round(elapsed)} ms); p90 ${p90.toFixed(1)} ms, slowest ${slowest.toFixed(1)} ms`);
  assert.ok(elapsed > 500 && latencies.length >= 10, `the decoding took long enough to matter: ${Math.round(elapsed)} ms, ${latencies.length} answers`);
  // Decoding on the event loop would hold most answers for a whole image's decode. The bound is on the
  // 90th percentile because the other test files running beside this one take the cores at random
  // moments; bench:hostile measures the p99 on a quiet machine.
  assert.ok(p90 < 100, `90th percentile of /healthz answers: ${p90.toFixed(1)} ms`);
  assert.ok(slowest < perImage, `slowest /healthz answer ${slowest.toFixed(1)} ms is less than one image's decoding (${perImage.toFixed(0)} ms)`);
});
