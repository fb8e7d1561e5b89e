import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestApi, type TestApi } from '../helpers/api.ts';
import { multipart } from '../helpers/multipart.ts';
import { requestHead, sendAndRead, trickle, writeThenRead } from '../helpers/raw-http.ts';

/*
 * The whole-request limits of issue #9, seen from a client on a raw socket: a body over its route's
 * limit is a 413 whatever its content type (multipart included, chunked included), the client can
 * read every early refusal even when it writes its whole body first, a refused body is discarded
 * only within REFUSED_BODY_DRAIN_BYTES / REFUSED_BODY_DRAIN_MS, and a request that takes longer
 * than REQUEST_TIMEOUT_MS to arrive is a 408.
 */

const KiB = 1024;
const MiB = 1024 * KiB;
const BODY_LIMIT = 64 * KiB;
const UPLOAD_LIMIT = 256 * KiB;
const DRAIN_MS = 1500;
const ADMIN = 'admin-key-0123456789abcdef';

async function listening(api: TestApi): Promise<number> {
  await api.app.listen({ port: 0, host: '127.0.0.1' });
  return (api.app.server.address() as { port: number }).port;
}

describe('without auth: body limits', () => {
  let api: TestApi;
  let port = 0;
  before(async () => {
    api = await startTestApi({
      BODY_LIMIT_BYTES: String(BODY_LIMIT),
      UPLOAD_MAX_BYTES: String(UPLOAD_LIMIT),
      // Room to discard a whole 20 MB body: this client writes it all before it reads.
      REFUSED_BODY_DRAIN_BYTES: String(32 * MiB),
      REFUSED_BODY_DRAIN_MS: String(10_000),
    });
    port = await listening(api);
  });
  after(() => api.close());

  test('a client that writes a whole 20 MB body to /v1/predict before reading gets the 413 as JSON, not a reset', async () => {
    const body = Buffer.alloc(20 * MiB, 7);
    const res = await writeThenRead(port, requestHead('POST', '/v1/predict', { 'content-type': 'image/png', 'content-length': body.length }), body);
    assert.equal(res.error, undefined, `the connection failed: ${res.error}`);
    assert.ok(res.wroteAll, 'the whole body was taken');
    assert.equal(res.status, 413);
    assert.equal(res.headers.connection, 'close');
    assert.match(JSON.parse(res.body).message, new RegExp(`over ${BODY_LIMIT} bytes.*BODY_LIMIT_BYTES`));
  });

  test('a multipart body over the limit is refused from its Content-Length before any of it is sent', async () => {
    const head = requestHead('POST', '/v1/predict', { 'content-type': 'multipart/form-data; boundary=x', 'content-length': 10 * MiB });
    const res = await sendAndRead(port, head);
    assert.equal(res.status, 413);
    assert.match(JSON.parse(res.body).message, /over 65536 bytes/);
  });

  test('a chunked multipart body of parts each under the limit is a 413 once the whole passes it', async () => {
    // Ten files of 20 KiB: each under the per-file limit, together three times the body limit.
    const { payload, headers } = multipart(Array.from({ length: 10 }, (_, i) => ({ name: `f${i}`, filename: `${i}.png`, contentType: 'image/png', data: Buffer.alloc(20 * KiB, i) })));
    const chunked = Buffer.concat([Buffer.from(`${payload.length.toString(16)}\r\n`), payload, Buffer.from('\r\n0\r\n\r\n')]);
    const res = await writeThenRead(port, requestHead('POST', '/v1/predict', { ...headers, 'transfer-encoding': 'chunked' }), chunked);
    assert.equal(res.status, 413, res.body);
    assert.match(JSON.parse(res.body).message, /over 65536 bytes/);
  });

  test('the size is checked before the content: an oversized text/plain body is a 413, not a 415', async () => {
    const res = await api.app.inject({ method: 'POST', url: '/v1/jobs', headers: { 'content-type': 'text/plain' }, payload: Buffer.alloc(BODY_LIMIT + 1, 97) });
    assert.equal(res.statusCode, 413);
  });

  test('the upload route takes bodies up to UPLOAD_MAX_BYTES, and names it past that', async () => {
    const upload = (size: number) => {
      const { payload, headers } = multipart([{ name: 'file', filename: 'd.zip', contentType: 'application/zip', data: Buffer.alloc(size, 1) }]);
      return api.app.inject({ method: 'POST', url: '/v1/datasets', headers, payload });
    };
    const within = await upload(2 * BODY_LIMIT);
    assert.notEqual(within.statusCode, 413, 'over BODY_LIMIT_BYTES but within UPLOAD_MAX_BYTES');
    assert.ok(within.statusCode >= 400 && within.statusCode < 500, `not a ZIP: ${within.statusCode}`);
    const over = await upload(UPLOAD_LIMIT + KiB);
    assert.equal(over.statusCode, 413);
    assert.match(over.json().message, /over 262144 bytes.*UPLOAD_MAX_BYTES/);
  });
});

describe('with auth: early refusals, drain bounds, the request timeout', () => {
  let api: TestApi;
  let port = 0;
  before(async () => {
    api = await startTestApi({ API_KEYS: `${ADMIN}:admin`, REFUSED_BODY_DRAIN_BYTES: String(8 * MiB), REFUSED_BODY_DRAIN_MS: String(DRAIN_MS), REQUEST_TIMEOUT_MS: '1500' });
    port = await listening(api);
  });
  after(() => api.close());

  test('a keyless upload written whole before reading gets its 401, not a reset', async () => {
    const body = Buffer.alloc(4 * MiB, 1);
    const res = await writeThenRead(port, requestHead('POST', '/v1/datasets', { 'content-type': 'application/zip', 'content-length': body.length }), body);
    assert.equal(res.error, undefined, `the connection failed: ${res.error}`);
    assert.equal(res.status, 401);
    assert.equal(res.headers.connection, 'close');
    assert.match(JSON.parse(res.body).message, /API key/);
  });

  test('a refused body that keeps trickling is discarded for REFUSED_BODY_DRAIN_MS, then the connection is closed', async (t) => {
    const head = requestHead('POST', '/v1/jobs', { 'content-type': 'application/json', 'content-length': 10 * MiB });
    const res = await trickle(port, head, Buffer.alloc(1024, 32), 50);
    t.diagnostic(`closed ${res.closedAfterAnswerMs} ms after the 401 (REFUSED_BODY_DRAIN_MS ${DRAIN_MS})`);
    assert.equal(res.status, 401);
    assert.ok(res.closedAfterAnswerMs !== undefined);
    assert.ok(res.closedAfterAnswerMs >= DRAIN_MS - 200, `closed ${res.closedAfterAnswerMs} ms after the answer: the rest of the body was not drained`);
    assert.ok(res.closedAfterAnswerMs <= DRAIN_MS + 1500, `still open ${res.closedAfterAnswerMs} ms after the answer (bound ${DRAIN_MS} ms)`);
  });

  test('a refused body is discarded only up to REFUSED_BODY_DRAIN_BYTES: past it the connection is closed, before the time bound', async (t) => {
    // 1 MiB every 25 ms: the 8 MiB bound is passed after about 200 ms, well before DRAIN_MS.
    const head = requestHead('POST', '/v1/datasets', { 'content-type': 'application/zip', 'content-length': 256 * MiB });
    const res = await trickle(port, head, Buffer.alloc(MiB, 1), 25);
    t.diagnostic(`closed ${res.closedAfterAnswerMs} ms after the 401 (8 MiB sent by then at 1 MiB / 25 ms: about 200 ms)`);
    assert.equal(res.status, 401);
    assert.ok(res.closedAfterAnswerMs !== undefined);
    assert.ok(res.closedAfterAnswerMs >= 100, `closed ${res.closedAfterAnswerMs} ms after the answer: nothing of the body was drained`);
    assert.ok(res.closedAfterAnswerMs < DRAIN_MS - 300, `closed ${res.closedAfterAnswerMs} ms after the answer: the byte bound did not stop the drain`);
  });

  test('a request body that arrives slower than REQUEST_TIMEOUT_MS gets a 408 with its request id, and is closed', async (t) => {
    const head = requestHead('POST', '/v1/jobs', { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json', 'content-length': 4000, 'x-request-id': 'slow-body' });
    const res = await trickle(port, head, Buffer.from(' '), 100);
    t.diagnostic(`408 after ${res.closedAfterMs - (res.closedAfterAnswerMs ?? 0)} ms, closed after ${res.closedAfterMs} ms`);
    assert.equal(res.status, 408);
    assert.equal(res.headers.connection, 'close');
    assert.equal(res.headers['x-request-id'], 'slow-body');
    assert.match(JSON.parse(res.body).message, /REQUEST_TIMEOUT_MS/);
    assert.ok(res.closedAfterMs < 1500 + 1000 + DRAIN_MS + 1000, `closed after ${res.closedAfterMs} ms`);
  });

  test('request headers that never finish get a 408 as JSON, and are closed', async () => {
    const res = await trickle(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n', Buffer.from('X-Slow: 1\r\n'), 100);
    assert.equal(res.status, 408);
    assert.equal(res.headers.connection, 'close');
    assert.match(JSON.parse(res.body).message, /REQUEST_TIMEOUT_MS/);
    assert.ok(res.closedAfterMs < 1500 + 1000 + DRAIN_MS + 1000, `closed after ${res.closedAfterMs} ms`);
  });
});
