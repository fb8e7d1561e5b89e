import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect } from 'node:net';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { deflateSync, gzipSync } from 'node:zlib';
import { ModelStore } from '../../src/store/model-store.ts';
import { processEnv, testConfig, waitFor } from '../helpers/env.ts';
import { multipart, type Part } from '../helpers/multipart.ts';
import { buildPng, encodeGrayPng, encodeRgbaPng, pngChunk, PNG_SIGNATURE } from '../helpers/png.ts';
import { freePort, startProcess, type Proc } from '../helpers/processes.ts';
import { writeUntrainedVersion } from '../helpers/serving.ts';
import { makeZip, type ZipEntry } from '../helpers/zip.ts';

/*
 * Hostile input against a real API process: random bytes, truncated and corrupt PNGs, PNGs that lie
 * about their size, wrong content types, oversized bodies and multipart parts, deeply nested JSON,
 * unknown fields — on every route that takes a body or a parameter. Every answer must be a 4xx
 * (never a 5xx, never a connection dropped without an answer), the process must stay up and keep
 * serving, and its memory must stay bounded. The cases are generated from a seeded PRNG: a failure
 * names the seed and the case, and `HOSTILE_SEED=<seed>` replays it.
 */

const SEED = Number(process.env.HOSTILE_SEED ?? 20261129);
/** Rounds of the whole set, each with its own seed (SEED, SEED + 1, …); the memory check compares the last two. */
const ROUNDS = Math.max(2, Number(process.env.HOSTILE_ROUNDS ?? 2));
const BODY_LIMIT = 1024 * 1024; // BODY_LIMIT_BYTES of the API under test
const UPLOAD_LIMIT = 2 * 1024 * 1024; // UPLOAD_MAX_BYTES
const MAX_IMAGES = 8; // MAX_IMAGES_PER_REQUEST
const MiB = 1024 * 1024;
/**
 * Growth of the API's resident memory allowed over the whole run, and in the last round. Measured
 * (2 rounds of 271 requests and 9 raw ones, ~20 MiB sent each): 295-308 MiB before, +75-115 MiB after round 1
 * (heap and allocator warm-up), +2-40 MiB in round 2; six rounds level off at ~430 MiB, with steps
 * of up to ~53 MiB as V8 resizes its heap. A leak of what the hostile requests carry would add
 * tens of MiB every round.
 */
const RSS_GROWTH_TOTAL = 200 * MiB;
const RSS_GROWTH_ROUND = 96 * MiB;

let api: Proc;
let port = 0;
let cleanup = async () => {};

before(async () => {
  const { config, cleanup: clean } = await testConfig();
  cleanup = clean;
  await writeUntrainedVersion(new ModelStore(config.modelsDir), 1); // so a good image gets a 200: the 4xx below are not "nothing works"
  port = await freePort();
  api = startProcess('src/api.ts', processEnv(config, port, { LOG_LEVEL: 'warn', MODEL_POLL_MS: '0', BODY_LIMIT_BYTES: String(BODY_LIMIT), UPLOAD_MAX_BYTES: String(UPLOAD_LIMIT), MAX_IMAGES_PER_REQUEST: String(MAX_IMAGES) }));
  await waitFor('the API to serve version 1', () => send({ path: '/readyz' }).then((r) => r.status === 200 && JSON.parse(r.body).servedVersion === 1, () => false), 60_000).catch((err) => {
    throw new Error(`${err.message}\n--- api ---\n${api.output()}`);
  });
});

after(async () => {
  await api?.stop();
  await cleanup();
});

// ---------------------------------------------------------------------------------------------
// A client that reports exactly what the server did: the status it answered, or how the
// connection ended without an answer.

interface Case {
  name: string;
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
}

interface Outcome {
  status: number | 'reset' | 'timeout';
  body: string;
  error?: string;
}

function send(c: Omit<Case, 'name'>, timeoutMs = 30_000): Promise<Outcome> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (o: Outcome) => {
      if (!settled) {
        settled = true;
        resolve(o);
      }
    };
    const body = typeof c.body === 'string' ? Buffer.from(c.body) : c.body;
    let answered: number | undefined;
    const chunks: Buffer[] = [];
    const text = () => Buffer.concat(chunks).toString('utf8').slice(0, 500);
    const req = request({ host: '127.0.0.1', port, method: c.method ?? (body ? 'POST' : 'GET'), path: c.path, headers: { ...(body && { 'content-length': String(body.length) }), ...c.headers }, agent: false, timeout: timeoutMs }, (res) => {
      answered = res.statusCode!;
      res.on('data', (d: Buffer) => chunks.length < 64 && chunks.push(d));
      res.on('close', () => done({ status: answered!, body: text() }));
      res.on('error', () => undefined);
    });
    // Once the server has answered, a write error (it stopped reading an oversized body) is fine;
    // an error with no answer at all is a dropped connection.
    req.on('error', (err) => setTimeout(() => done(answered !== undefined ? { status: answered, body: text() } : { status: 'reset', body: '', error: `${(err as NodeJS.ErrnoException).code ?? ''} ${err.message}` }), 50));
    req.on('timeout', () => {
      done({ status: 'timeout', body: '' });
      req.destroy();
    });
    if (body) req.end(body);
    else req.end();
  });
}

/** Raw bytes on a socket, for what no HTTP client would send: the server must still answer 4xx. */
function sendRaw(bytes: Buffer): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const finish = () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      resolve(m ? { status: Number(m[1]), body: text.slice(0, 200) } : { status: 'reset', body: text.slice(0, 200) });
    };
    socket.setTimeout(10_000, () => socket.destroy());
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', () => undefined);
    socket.on('close', finish);
    socket.end(bytes);
  });
}

// ---------------------------------------------------------------------------------------------
// Seeded generators.

/** mulberry32: small, fast, and the same sequence on every machine. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(0, 255)));
  const pick = <T>(xs: readonly T[]): T => xs[int(0, xs.length - 1)];
  return { next, int, bytes, pick };
}
type Rng = ReturnType<typeof prng>;

function digitPng(rng: Rng): Buffer {
  const pixels = new Uint8Array(784);
  for (let y = 6; y < 22; y++) for (let x = 12; x < 16; x++) pixels[y * 28 + x] = 200 + rng.int(0, 55);
  return encodeGrayPng(pixels);
}

function rgbaPng(rng: Rng, w: number, h: number): Buffer {
  return encodeRgbaPng(rng.bytes(w * h * 4), w, h);
}

/** An IHDR that declares `width`×`height`, with a tiny IDAT: refused before any pixel memory is allocated. */
function lyingPng(width: number, height: number, colorType = 0, bitDepth = 8): Buffer {
  return buildPng({ width, height, colorType, bitDepth, deflated: deflateSync(Buffer.alloc(64)) });
}

/** Bytes flipped anywhere between the signature and IEND (so some chunk's CRC or structure breaks). */
function corrupt(png: Buffer, rng: Rng, flips: number): Buffer {
  const out = Buffer.from(png);
  for (let i = 0; i < flips; i++) {
    const at = rng.int(8, out.length - 13);
    out[at] ^= rng.int(1, 255);
  }
  return out;
}

/** Nesting `depth` levels deep: `[[[…]]]` or `{"a":{"a":…}}`, built without recursion. */
function nested(depth: number, kind: 'array' | 'object', inner = '1'): string {
  return kind === 'array' ? '['.repeat(depth) + inner + ']'.repeat(depth) : '{"a":'.repeat(depth) + inner + '}'.repeat(depth);
}

/** A random JSON value; objects always carry a key no schema knows, so no request can turn out valid. */
function randomJson(rng: Rng, depth = 0): unknown {
  const kind = depth > 3 ? rng.int(0, 3) : rng.int(0, 5);
  switch (kind) {
    case 0:
      return rng.pick([0, -1, 1.5, 1e308, -1e-308, 2 ** 53 + 1, 42]);
    case 1:
      return rng.pick(['', 'x', '\u0000', '☃'.repeat(rng.int(1, 50)), 'latest', 'mnist', '../../etc/passwd', '%00']);
    case 2:
      return rng.pick([null, true, false]);
    case 3:
      return [];
    case 4:
      return Array.from({ length: rng.int(1, 5) }, () => randomJson(rng, depth + 1));
    default: {
      const obj: Record<string, unknown> = { [`unknown_${rng.int(0, 1e6)}`]: randomJson(rng, depth + 1) };
      for (const key of ['type', 'images', 'pixels', 'version', 'dataset', 'epochs', 'baseModel']) if (rng.next() < 0.3) obj[key] = randomJson(rng, depth + 1);
      return obj;
    }
  }
}

const json = (value: unknown) => ({ headers: { 'content-type': 'application/json' }, body: typeof value === 'string' ? value : JSON.stringify(value) });
const png = (body: Buffer, type = 'image/png') => ({ headers: { 'content-type': type }, body });
const form = (parts: Part[]) => {
  const { payload, headers } = multipart(parts);
  return { headers, body: payload };
};
const file = (name: string, data: Buffer | string, filename = 'digit.png'): Part => ({ name, filename, contentType: 'application/octet-stream', data });
const b64 = (buf: Buffer) => buf.toString('base64');

function idxHeader(dims: number[], type = 0x08): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = type;
  head[3] = dims.length;
  dims.forEach((d, i) => head.writeUInt32BE(d >>> 0, 4 + 4 * i));
  return head;
}

/** Every hostile request of one round; a different seed varies the random parts. */
function hostileCases(seed: number): Case[] {
  const rng = prng(seed);
  const cases: Case[] = [];
  const add = (name: string, c: Omit<Case, 'name'>) => cases.push({ name, ...c });
  const good = digitPng(rng);
  const colour = rgbaPng(rng, 40, 30);

  // --- POST /v1/predict, raw body
  add('predict: empty PNG body', { path: '/v1/predict', ...png(Buffer.alloc(0)) });
  for (let i = 0; i < 12; i++) add(`predict: ${i} random bytes`, { path: '/v1/predict', ...png(rng.bytes(rng.int(1, 4096)), rng.pick(['image/png', 'application/octet-stream', 'image/jpeg', 'image/gif'])) });
  for (let i = 0; i < 6; i++) add(`predict: PNG signature + random bytes ${i}`, { path: '/v1/predict', ...png(Buffer.concat([PNG_SIGNATURE, rng.bytes(rng.int(0, 2048))])) });
  for (let i = 0; i < 12; i++) {
    const src = i % 2 ? colour : good;
    const cut = rng.int(1, src.length - 13); // anywhere before IEND
    add(`predict: PNG truncated at ${cut}/${src.length}`, { path: '/v1/predict', ...png(src.subarray(0, cut)) });
  }
  for (let i = 0; i < 16; i++) add(`predict: corrupt PNG ${i}`, { path: '/v1/predict', ...png(corrupt(i % 2 ? colour : good, rng, rng.int(1, 4))) });
  for (const [w, h] of [[100000, 100000], [100000, 1], [1, 100000], [4097, 4097], [4096, 4096], [0, 0], [0xffffffff, 0xffffffff], [0x7fffffff, 2]]) {
    add(`predict: PNG declaring ${w}×${h}`, { path: '/v1/predict', ...png(lyingPng(w, h)) });
  }
  add('predict: PNG declaring RGB at 4 bits', { path: '/v1/predict', ...png(lyingPng(28, 28, 2, 4)) });
  add('predict: PNG declaring colour type 7', { path: '/v1/predict', ...png(lyingPng(28, 28, 7, 8)) });
  add('predict: palette PNG without a palette', { path: '/v1/predict', ...png(buildPng({ width: 28, height: 28, colorType: 3, raw: Buffer.alloc(29 * 28) })) });
  add('predict: PNG whose data inflates far beyond its header (zip bomb)', { path: '/v1/predict', ...png(buildPng({ width: 4096, height: 4096, deflated: deflateSync(Buffer.alloc(64 * MiB)) })) });
  add('predict: PNG with an unknown critical chunk only', { path: '/v1/predict', ...png(Buffer.concat([PNG_SIGNATURE, pngChunk('ABCD', rng.bytes(16)), pngChunk('IEND', Buffer.alloc(0))])) });
  add('predict: JPEG', { path: '/v1/predict', ...png(Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), rng.bytes(500)]), 'image/jpeg') });
  add('predict: body over the limit', { path: '/v1/predict', ...png(Buffer.concat([good, rng.bytes(BODY_LIMIT + 1024)])) });
  add('predict: ?version=0', { path: '/v1/predict?version=0', ...png(good) });
  add('predict: ?version=abc', { path: '/v1/predict?version=abc', ...png(good) });
  add('predict: ?version=999', { path: '/v1/predict?version=999', ...png(good) });
  add('predict: ?version=1e400', { path: '/v1/predict?version=1e400', ...png(good) });

  // --- POST /v1/predict, wrong content types
  for (const type of ['text/plain', 'application/xml', 'application/x-www-form-urlencoded', 'video/mp4', 'application/json; charset=utf-7', 'nonsense', '*/*', 'multipart/mixed']) {
    add(`predict: content type ${type}`, { path: '/v1/predict', headers: { 'content-type': type }, body: good });
  }
  add('predict: no content type', { path: '/v1/predict', body: good });

  // --- POST /v1/predict, JSON
  for (let i = 0; i < 6; i++) add(`predict: random bytes as JSON ${i}`, { path: '/v1/predict', ...json(rng.bytes(rng.int(1, 2000)).toString('latin1')) });
  for (let i = 0; i < 16; i++) add(`predict: random JSON ${i}`, { path: '/v1/predict', ...json(randomJson(rng)) });
  const pixels = Array.from({ length: 784 }, () => rng.int(0, 255));
  for (const [name, body] of [
    ['null', 'null'],
    ['an array', '[]'],
    ['a string', '"x"'],
    ['a number', '42'],
    ['neither images nor pixels', {}],
    ['both images and pixels', { images: [b64(good)], pixels: [pixels] }],
    ['images an object', { images: { 0: b64(good) } }],
    ['no images', { images: [] }],
    ['an image that is a number', { images: [123] }],
    ['an image that is not base64', { images: ['%%%not base64%%%'] }],
    ['a base64 image that is not a PNG', { images: [b64(rng.bytes(300))] }],
    ['a base64 corrupt PNG', { images: [b64(corrupt(good, rng, 3))] }],
    ['a base64 PNG declaring 100000×100000', { images: [`data:image/png;base64,${b64(lyingPng(100000, 100000))}`] }],
    ['a data: URL of garbage', { images: ['data:image/png;base64,'] }],
    ['too many images', { images: Array.from({ length: MAX_IMAGES + 1 }, () => b64(good)) }],
    ['783 pixels', { pixels: [pixels.slice(1)] }],
    ['785 pixels', { pixels: [[...pixels, 0]] }],
    ['pixels out of range', { pixels: [pixels.map((p, i) => (i === 400 ? 256 : p))] }],
    ['negative pixels', { pixels: [pixels.map((p, i) => (i === 0 ? -1 : p))] }],
    ['string pixels', { pixels: [pixels.map(() => 'x')] }],
    ['too many pixel arrays', { pixels: Array.from({ length: MAX_IMAGES + 1 }, () => pixels) }],
    ['an unknown field', { images: [b64(good)], extra: 1 }],
    ['__proto__', '{"images":["x"],"__proto__":{"polluted":true}}'],
    ['constructor.prototype', '{"pixels":[],"constructor":{"prototype":{"polluted":true}}}'],
    ['deeply nested arrays', nested(100_000, 'array')],
    ['deeply nested objects', nested(100_000, 'object')],
    ['deeply nested pixels', `{"pixels":${nested(50_000, 'array')}}`],
    ['deeply nested __proto__', `{"images":${nested(20_000, 'object', '{"__proto__":{"x":1}}')}}`],
    ['JSON over the limit', { images: [b64(rng.bytes(BODY_LIMIT))] }],
  ] as const) {
    add(`predict: JSON ${name}`, { path: '/v1/predict', ...json(body) });
  }

  // --- POST /v1/predict, multipart
  add('predict: multipart without a boundary', { path: '/v1/predict', headers: { 'content-type': 'multipart/form-data' }, body: good });
  add('predict: multipart with random bytes', { path: '/v1/predict', headers: { 'content-type': 'multipart/form-data; boundary=xyz' }, body: rng.bytes(2000) });
  const oneFile = form([file('images', good)]);
  add('predict: multipart cut short', { path: '/v1/predict', headers: oneFile.headers, body: oneFile.body.subarray(0, oneFile.body.length - 20) });
  add('predict: multipart with fields but no file', { path: '/v1/predict', ...form([{ name: 'a', data: 'b' }]) });
  add('predict: multipart with a corrupt PNG', { path: '/v1/predict', ...form([file('images', good), file('images', corrupt(good, rng, 2))]) });
  add('predict: multipart with a PNG declaring 100000×100000', { path: '/v1/predict', ...form([file('images', lyingPng(100000, 100000))]) });
  add('predict: multipart with random files', { path: '/v1/predict', ...form(Array.from({ length: 3 }, () => file('images', rng.bytes(rng.int(0, 500))))) });
  add('predict: multipart with too many files', { path: '/v1/predict', ...form(Array.from({ length: MAX_IMAGES + 4 }, () => file('images', good))) });
  add('predict: multipart with a part over the limit', { path: '/v1/predict', ...form([file('images', rng.bytes(BODY_LIMIT + 4096))]) });
  add('predict: multipart with a huge part (4× the limit)', { path: '/v1/predict', ...form([file('images', Buffer.alloc(4 * BODY_LIMIT, 7))]) });
  add('predict: multipart with a huge field and no file', { path: '/v1/predict', ...form([{ name: 'note', data: 'x'.repeat(2 * BODY_LIMIT) }]) });
  add('predict: multipart with 200 fields', { path: '/v1/predict', ...form(Array.from({ length: 200 }, (_, i) => ({ name: `f${i}`, data: 'v' }))) });
  add('predict: multipart with a 64 KiB header line', { path: '/v1/predict', ...form([{ name: 'x'.repeat(64 * 1024), filename: 'a.png', data: corrupt(good, rng, 2) }]) });

  // --- POST /v1/jobs and the job routes
  for (let i = 0; i < 12; i++) add(`jobs: random JSON ${i}`, { path: '/v1/jobs', ...json(randomJson(rng)) });
  for (const [name, body] of [
    ['an unknown type', { type: 'nope' }],
    ['an unknown field', { type: 'train', epoch: 3 }],
    ['epochs out of range', { type: 'train', epochs: 1e9 }],
    ['a fractional seed', { type: 'train', seed: 1.5 }],
    ['a string batch size', { type: 'train', batchSize: 'big' }],
    ['a bad augment', { type: 'train', augment: { scale: [1] } }],
    ['augment with an unknown field', { type: 'train', augment: { shear: 1 } }],
    ['a missing base model', { type: 'finetune', baseModel: 999, dataset: 'mnist' }],
    ['a missing dataset', { type: 'finetune', baseModel: 1, dataset: 'ds_000000000000' }],
    ['a traversal dataset id', { type: 'finetune', baseModel: 1, dataset: '../../../etc' }],
    ['no type', { epochs: 1 }],
    ['an array', [{ type: 'train' }]],
    ['deeply nested', nested(100_000, 'array')],
    ['deeply nested in a field', `{"type":"train","augment":${nested(50_000, 'object')}}`],
    ['__proto__', '{"type":"train","__proto__":{"epochs":1}}'],
    ['random bytes', rng.bytes(1000).toString('latin1')],
    ['over the body limit', { type: 'train', pad: 'x'.repeat(BODY_LIMIT) }],
  ] as const) {
    add(`jobs: ${name}`, { path: '/v1/jobs', ...json(body) });
  }
  for (const type of ['text/plain', 'image/png', 'application/zip', 'multipart/form-data; boundary=x']) add(`jobs: content type ${type}`, { path: '/v1/jobs', headers: { 'content-type': type }, body: '{"type":"train"}' });
  for (const q of ['limit=0', 'limit=abc', 'limit=1000', 'offset=-1', 'offset=1.5']) add(`jobs: list ?${q}`, { path: `/v1/jobs?${q}` });
  add('jobs: a job that does not exist', { path: `/v1/jobs/${rng.bytes(8).toString('hex')}` });
  add('jobs: an id of 200 characters', { path: `/v1/jobs/${'a'.repeat(200)}` });
  add('jobs: a malformed escape in the id', { path: '/v1/jobs/%E0%A4%A' });
  add('jobs: cancel a job that does not exist', { method: 'DELETE', path: `/v1/jobs/${rng.bytes(8).toString('hex')}` });
  add('jobs: events of a job that does not exist', { path: `/v1/jobs/${rng.bytes(8).toString('hex')}/events` });

  // --- POST /v1/datasets
  for (let i = 0; i < 6; i++) add(`datasets: random bytes as a ZIP ${i}`, { path: '/v1/datasets', headers: { 'content-type': 'application/zip' }, body: rng.bytes(rng.int(0, 3000)) });
  const zip = makeZip([{ name: '0/a.png', data: good }, { name: '1/b.png', data: good }]);
  for (let i = 0; i < 4; i++) add(`datasets: ZIP truncated ${i}`, { path: '/v1/datasets', headers: { 'content-type': 'application/zip' }, body: zip.subarray(0, rng.int(1, zip.length - 1)) });
  for (let i = 0; i < 4; i++) add(`datasets: corrupt ZIP ${i}`, { path: '/v1/datasets', headers: { 'content-type': 'application/zip' }, body: corrupt(Buffer.concat([Buffer.alloc(5), zip]), rng, 3).subarray(5) });
  for (const [name, entries] of [
    ['a name leaving the archive', [{ name: '../0/a.png', data: good }]],
    ['an absolute name', [{ name: '/0/a.png', data: good }]],
    ['a non-digit folder', [{ name: 'x/a.png', data: good }]],
    ['a file that is not a PNG', [{ name: '0/a.txt', data: Buffer.from('hi') }]],
    ['a corrupt PNG', [{ name: '0/a.png', data: corrupt(good, rng, 3) }]],
    ['a PNG declaring 100000×100000', [{ name: '0/a.png', data: lyingPng(100000, 100000) }]],
    ['an entry over 8 MiB uncompressed', [{ name: '0/a.png', data: Buffer.alloc(9 * MiB) }]],
    ['no images', [{ name: '0/' }]],
    ['an empty class folder', [{ name: '0/a.png', data: good }, { name: '1/' }]],
  ] as const) {
    add(`datasets: ZIP with ${name}`, { path: '/v1/datasets', headers: { 'content-type': 'application/zip' }, body: makeZip([...entries] as ZipEntry[]) });
  }
  const labels = Buffer.concat([idxHeader([2]), Buffer.from([1, 2])]);
  for (const [name, images, lab] of [
    ['random images and labels', rng.bytes(500), rng.bytes(50)],
    ['an image count of 2^32-1', idxHeader([0xffffffff, 28, 28]), labels],
    ['images of 100000×100000', Buffer.concat([idxHeader([1, 100000, 100000]), rng.bytes(100)]), labels],
    ['labels that are not digits', Buffer.concat([idxHeader([2, 28, 28]), Buffer.alloc(2 * 784)]), Buffer.concat([idxHeader([2]), Buffer.from([10, 200])])],
    ['a count mismatch', Buffer.concat([idxHeader([3, 28, 28]), Buffer.alloc(3 * 784)]), labels],
    ['a gzip bomb', deflateSync(Buffer.alloc(1)), labels],
    ['float IDX', Buffer.concat([idxHeader([2, 28, 28], 0x0d), Buffer.alloc(2 * 784 * 4)]), labels],
  ] as const) {
    add(`datasets: IDX with ${name}`, { path: '/v1/datasets', ...form([file('images', images, 'images.idx'), file('labels', lab, 'labels.idx')]) });
  }
  add('datasets: a gzip bomb as IDX images', { path: '/v1/datasets', ...form([file('images', Buffer.from(gzipBomb), 'images.gz'), file('labels', labels, 'labels.idx')]) });
  for (const path of ['/v1/datasets', '/v1/models']) {
    add(`${path}: multipart without a boundary`, { path, headers: { 'content-type': 'multipart/form-data' }, body: zip });
    const cut = form([file('images', zip)]);
    add(`${path}: multipart cut short`, { path, headers: cut.headers, body: cut.body.subarray(0, 200) });
  }
  add('datasets: multipart with three files', { path: '/v1/datasets', ...form([file('a', zip, 'a.zip'), file('b', zip, 'b.zip'), file('c', zip, 'c.zip')]) });
  add('datasets: multipart with only labels', { path: '/v1/datasets', ...form([file('labels', labels)]) });
  add('datasets: multipart with a part over the upload limit', { path: '/v1/datasets', ...form([file('file', Buffer.alloc(UPLOAD_LIMIT + 4096, 1), 'x.zip')]) });
  add('datasets: a ZIP over the upload limit', { path: '/v1/datasets', headers: { 'content-type': 'application/zip' }, body: Buffer.alloc(UPLOAD_LIMIT + 4096, 1) });
  add('datasets: text', { path: '/v1/datasets', headers: { 'content-type': 'text/plain' }, body: 'hello' });
  add('datasets: JSON', { path: '/v1/datasets', ...json({ name: 'x' }) });
  add('datasets: one that does not exist', { path: '/v1/datasets/ds_000000000000' });
  add('datasets: a traversal id', { path: '/v1/datasets/..%2F..%2Fetc%2Fpasswd' });
  add('datasets: delete one that does not exist', { method: 'DELETE', path: `/v1/datasets/${'x'.repeat(65)}` });

  // --- model import, serving, metadata, evaluation
  add('import: not multipart', { path: '/v1/models', ...json({ modelTopology: {} }) });
  add('import: random files', { path: '/v1/models', ...form([file('model.json', rng.bytes(300), 'model.json'), file('w', rng.bytes(300), 'w.bin')]) });
  add('import: no model.json', { path: '/v1/models', ...form([file('w', rng.bytes(30), 'w.bin')]) });
  for (const [name, modelJson] of [
    ['random JSON', JSON.stringify(randomJson(rng))],
    ['a manifest group without weights', JSON.stringify({ modelTopology: {}, weightsManifest: [{}] })],
    ['a manifest group whose paths are not a list', JSON.stringify({ modelTopology: {}, weightsManifest: [{ paths: 'w.bin', weights: [] }] })],
    ['a weight without a shape', JSON.stringify({ modelTopology: {}, weightsManifest: [{ paths: ['w.bin'], weights: [{ name: 'k', dtype: 'float32' }] }] })],
    ['a weight of 10^12 elements', JSON.stringify({ modelTopology: {}, weightsManifest: [{ paths: ['w.bin'], weights: [{ name: 'k', dtype: 'float32', shape: [1e6, 1e6] }] }] })],
    ['a manifest that is null inside', JSON.stringify({ modelTopology: {}, weightsManifest: [null] })],
    ['a topology that is not a model', JSON.stringify({ modelTopology: { class_name: 'Nope', config: {} }, weightsManifest: [] })],
    ['a graph model', JSON.stringify({ format: 'graph-model', modelTopology: {}, weightsManifest: [] })],
    ['deeply nested', `{"modelTopology":${nested(100_000, 'object')},"weightsManifest":[]}`],
  ] as const) {
    add(`import: model.json with ${name}`, { path: '/v1/models', ...form([file('model.json', modelJson, 'model.json'), file('w', rng.bytes(16), 'w.bin')]) });
  }
  add('import: a part over the upload limit', { path: '/v1/models', ...form([file('model.json', Buffer.alloc(UPLOAD_LIMIT + 4096, 32), 'model.json')]) });
  add('import: 40 files', { path: '/v1/models', ...form(Array.from({ length: 40 }, (_, i) => file(`f${i}`, 'x', `f${i}.bin`))) });
  for (const body of [{ version: 999 }, { version: 'x' }, {}, { version: 1, extra: true }, { version: -1 }, { version: 1.5 }, nested(100_000, 'array')]) {
    add(`serving: pin ${typeof body === 'string' ? 'deeply nested' : JSON.stringify(body)}`, { method: 'PUT', path: '/v1/models/serving', ...json(body) });
  }
  add('serving: pin as text', { method: 'PUT', path: '/v1/models/serving', headers: { 'content-type': 'text/plain' }, body: '1' });
  for (const path of ['/v1/models/0', '/v1/models/abc', '/v1/models/999', '/v1/models/1.5', '/v1/models/-1', '/v1/models/99999999999999999999999', '/v1/models/1/metadata.json', '/v1/models/1/..%2F..%2Fpackage.json', '/v1/models/1/%2e%2e', '/v1/models/999/model.json']) {
    add(`models: GET ${path}`, { path });
  }
  for (const [name, path, body] of [
    ['a missing version', '/v1/models/999/evaluate', {}],
    ['a missing dataset', '/v1/models/1/evaluate', { dataset: 'ds_000000000000' }],
    ['a traversal dataset', '/v1/models/1/evaluate', { dataset: '../../..' }],
    ['an unknown field', '/v1/models/1/evaluate', { dataset: 'mnist', x: 1 }],
    ['an empty dataset', '/v1/models/1/evaluate', { dataset: '' }],
    ['deeply nested', '/v1/models/1/evaluate', nested(100_000, 'object')],
  ] as const) {
    add(`evaluate: ${name}`, { path, ...json(body) });
  }

  // --- anything else
  for (let i = 0; i < 6; i++) {
    const path = `/${rng.bytes(rng.int(1, 40)).toString('base64url')}`;
    add(`unknown route ${path}`, { method: rng.pick(['GET', 'POST', 'PUT', 'DELETE', 'PATCH']), path, body: rng.next() < 0.5 ? rng.bytes(100) : undefined });
  }
  add('a method the route does not have', { method: 'PATCH', path: '/v1/predict', ...png(good) });
  return cases;
}

/** 128 MiB of zeros, gzipped (about 128 KiB): more than any IDX upload may expand to. Made once. */
const gzipBomb = gzipSync(Buffer.alloc(128 * MiB));

/** Raw bytes that are not (quite) HTTP. */
function rawCases(seed: number): { name: string; bytes: Buffer }[] {
  const rng = prng(seed ^ 0x5bd1e995);
  return [
    ...Array.from({ length: 4 }, (_, i) => ({ name: `raw random bytes ${i}`, bytes: Buffer.concat([rng.bytes(rng.int(1, 500)), Buffer.from('\r\n\r\n')]) })),
    { name: 'raw: bad chunked encoding', bytes: Buffer.from('POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n') },
    { name: 'raw: Content-Length and Transfer-Encoding', bytes: Buffer.from('POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n') },
    { name: 'raw: a negative Content-Length', bytes: Buffer.from('POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n') },
    { name: 'raw: a 100 KiB header', bytes: Buffer.from(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(100 * 1024)}\r\n\r\n`) },
    { name: 'raw: a header without a colon', bytes: Buffer.from('GET /healthz HTTP/1.1\r\nHost x\r\n\r\n') },
  ];
}

// ---------------------------------------------------------------------------------------------

function rssBytes(pid: number): Promise<number> {
  return readFile(`/proc/${pid}/status`, 'utf8').then((s) => Number(/VmRSS:\s+(\d+) kB/.exec(s)![1]) * 1024);
}

/** Sends every case, `concurrency` at a time, and returns those not answered with a 4xx. */
async function run(cases: Case[], concurrency = 4): Promise<string[]> {
  const failures: string[] = [];
  let next = 0;
  const lane = async () => {
    while (next < cases.length) {
      const c = cases[next++];
      const o = await send(c);
      if (process.env.HOSTILE_VERBOSE) console.log(`${o.status} ${c.name}`);
      if (typeof o.status !== 'number' || o.status < 400 || o.status > 499) failures.push(`${c.name} → ${o.status}${o.error ? ` (${o.error})` : ''} ${o.body}`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return failures;
}

async function goodPredict(): Promise<Outcome> {
  return send({ path: '/v1/predict', ...png(digitPng(prng(1))) });
}

const rss: { label: string; bytes: number }[] = [];

test('a well-formed PNG is classified: the server under test really serves', async () => {
  for (let i = 0; i < 5; i++) assert.equal((await goodPredict()).status, 200); // warm up
  rss.push({ label: 'before', bytes: await rssBytes(api.child.pid!) });
});

for (let round = 1; round <= ROUNDS; round++) {
  const seed = SEED + round - 1;
  test(`round ${round} (seed ${seed}): every hostile request gets a 4xx, none a 5xx or a dropped connection`, { timeout: 120_000 }, async () => {
    const cases = hostileCases(seed);
    const failures = await run(cases);
    const sent = cases.reduce((n, c) => n + (c.body?.length ?? 0), 0);
    console.log(`round ${round}: ${cases.length} requests + ${rawCases(seed).length} raw, ${(sent / MiB).toFixed(1)} MiB sent`);
    for (const r of rawCases(seed)) {
      const o = await sendRaw(r.bytes);
      if (typeof o.status !== 'number' || o.status < 400 || o.status > 499) failures.push(`${r.name} → ${o.status} ${o.body}`);
    }
    assert.deepEqual(failures, [], `seed ${seed}: ${failures.length} of ${cases.length} requests not answered 4xx\n${failures.join('\n')}\n--- api ---\n${api.output().slice(-4000)}`);
    assert.equal(api.child.exitCode, null, `the API exited\n${api.output()}`);
    rss.push({ label: `after round ${round}`, bytes: await rssBytes(api.child.pid!) });
  });
}

test('afterwards the process is up, healthy, still classifies, logged no server error, and its memory stayed bounded', async () => {
  assert.equal(api.child.exitCode, null);
  assert.equal(api.child.signalCode, null);
  assert.equal((await send({ path: '/healthz' })).status, 200);
  assert.equal((await goodPredict()).status, 200);
  assert.doesNotMatch(api.output(), /"level":(50|60)/, 'no error or fatal log line (a 5xx is logged at error level)');

  const [before, ...afters] = rss;
  const mib = (b: number) => `${(b / MiB).toFixed(1)} MiB`;
  const report = rss.map((r) => `${r.label}: ${mib(r.bytes)}`).join(', ');
  console.log(`API RSS ${report}`);
  assert.equal(afters.length, ROUNDS, 'every round ran');
  const [previous, last] = afters.slice(-2).map((r) => r.bytes);
  assert.ok(last - before.bytes < RSS_GROWTH_TOTAL, `RSS grew by ${mib(last - before.bytes)} (bound ${mib(RSS_GROWTH_TOTAL)}): ${report}`);
  assert.ok(last - previous < RSS_GROWTH_ROUND, `RSS grew by ${mib(last - previous)} in the last round (bound ${mib(RSS_GROWTH_ROUND)}): ${report}`);
});
