import assert from 'node:assert/strict';
import { Agent, request, type ClientRequest, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { after, test } from 'node:test';
import { ModelStore } from '../../src/store/model-store.ts';
import { processEnv, testConfig, waitFor } from '../helpers/env.ts';
import { multipart } from '../helpers/multipart.ts';
import { encodeGrayPng } from '../helpers/png.ts';
import { freePort, startProcess, type Proc } from '../helpers/processes.ts';
import { writeUntrainedVersion } from '../helpers/serving.ts';

// SIGTERM to a real API process: it stops accepting connections, lets the request in flight
// finish, closes event streams so they cannot hold it open, and exits 0 — or 1 once
// API_SHUTDOWN_TIMEOUT_MS is up, whatever is still in flight.

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function startApi(env: Record<string, string>): Promise<{ api: Proc; port: number }> {
  const { config, cleanup } = await testConfig();
  await writeUntrainedVersion(new ModelStore(config.modelsDir), 1);
  const port = await freePort();
  const api = startProcess('src/api.ts', processEnv(config, port, env));
  cleanups.push(async () => {
    await api.stop();
    await cleanup();
  });
  await waitFor('the API to serve version 1', () => fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.json(), () => undefined).then((b) => b?.servedVersion === 1), 60_000).catch(
    (err: Error) => {
      throw new Error(`${err.message}\n${api.output()}`);
    },
  );
  return { api, port };
}

const exitOf = (api: Proc) => new Promise<number | null>((resolve) => (api.child.exitCode !== null ? resolve(api.child.exitCode) : api.child.once('exit', (code) => resolve(code))));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether a new TCP connection to the port is refused (the server no longer listens). */
const refused = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.on('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });

/** A "1": a vertical stroke in a 28×28 white-on-black image. */
const DIGIT = Array.from({ length: 784 }, (_, i) => (i % 28 >= 13 && i % 28 <= 14 && i >= 4 * 28 && i < 24 * 28 ? 255 : 0));

/** A multipart predict of three PNGs whose body is sent in two halves: in flight until `finish()`. */
function slowPredict(port: number): { req: ClientRequest; response: Promise<{ status: number; body: string }>; finish: () => void } {
  const png = encodeGrayPng(DIGIT);
  const { payload, headers } = multipart([1, 2, 3].map((i) => ({ name: 'images', filename: `${i}.png`, contentType: 'image/png', data: png })));
  const half = Math.floor(payload.length / 2);
  const agent = new Agent({ keepAlive: true, timeout: 60_000 }); // a client that keeps its connection open
  const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/v1/predict', agent, headers: { ...headers, 'content-length': String(payload.length) } });
  const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req.on('response', (res: IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
  });
  req.write(payload.subarray(0, half));
  return { req, response, finish: () => req.end(payload.subarray(half)) };
}

test('on SIGTERM the API finishes the request in flight, closes event streams, refuses new connections and exits 0', async () => {
  const { api, port } = await startApi({ API_SHUTDOWN_TIMEOUT_MS: '20000' });
  const base = `http://127.0.0.1:${port}`;

  // An event stream of a queued job (no worker here, so it would stay open for ever).
  const job = await fetch(`${base}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 'train', limit: 100, epochs: 1 }) }).then((r) => r.json());
  let streamed = '';
  const streamClosed = new Promise<void>((resolve, reject) => {
    request({ host: '127.0.0.1', port, path: `/v1/jobs/${job.id}/events`, agent: false }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (c: string) => (streamed += c));
      res.on('end', resolve);
      res.on('close', resolve);
    })
      .on('error', reject)
      .end();
  });
  await waitFor('the job snapshot on the stream', async () => streamed.includes('event: job'), 5000);

  const predict = slowPredict(port);
  await sleep(500); // the API has the request's headers and part of its body: it is in flight

  const exited = exitOf(api);
  const signalledAt = Date.now();
  api.child.kill('SIGTERM');

  await Promise.race([streamClosed, sleep(3000).then(() => assert.fail(`the event stream is still open 3 s after SIGTERM\n${api.output()}`))]);
  assert.doesNotMatch(streamed, /event: end/, 'closed without `end`, so an EventSource reconnects (to another replica)');
  await waitFor('new connections to be refused', () => refused(port), 3000);
  assert.equal(api.child.exitCode, null, 'still running: a request is in flight');

  predict.finish();
  const res = await predict.response;
  assert.equal(res.status, 200, res.body);
  const body = JSON.parse(res.body) as { modelVersion: number; predictions: unknown[] };
  assert.equal(body.modelVersion, 1);
  assert.equal(body.predictions.length, 3);

  // The client keeps its connection alive; the API closes it as soon as the response is done.
  const answeredAt = Date.now();
  const code = await Promise.race([exited, sleep(10_000).then(() => 'still running')]);
  assert.equal(code, 0, api.output());
  assert.ok(Date.now() - answeredAt < 3000, `exited ${Date.now() - answeredAt} ms after the last response`);
  assert.ok(Date.now() - signalledAt < 10_000, `exited ${Date.now() - signalledAt} ms after SIGTERM`);
  assert.match(api.output(), /API shutting down/);
  assert.match(api.output(), /API stopped/);
});

test('a request that never finishes does not keep the API up: it exits 1 after API_SHUTDOWN_TIMEOUT_MS', async () => {
  const { api, port } = await startApi({ API_SHUTDOWN_TIMEOUT_MS: '1000' });
  const predict = slowPredict(port);
  predict.response.catch(() => undefined); // the connection dies with the process
  await sleep(500);
  const exited = exitOf(api);
  const signalledAt = Date.now();
  api.child.kill('SIGTERM');
  const code = await Promise.race([exited, sleep(8000).then(() => 'still running')]);
  const took = Date.now() - signalledAt;
  predict.req.destroy();
  assert.equal(code, 1, api.output());
  assert.ok(took >= 900 && took < 6000, `exited ${took} ms after SIGTERM`);
  assert.match(api.output(), /API_SHUTDOWN_TIMEOUT_MS=1000/);
});
