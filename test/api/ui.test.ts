import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { buildApp, type App } from '../../src/api/app.ts';
import { loadWebAssets } from '../../src/api/routes/ui.ts';
import type { ApiServices } from '../../src/api/services.ts';
import { loadConfig } from '../../src/config.ts';

// The page's files need no Redis or model: the app is built with config only, as the OpenAPI script does.
let app: App;
before(async () => {
  app = await buildApp({ config: loadConfig({}) } as ApiServices, { loggerInstance: pino({ level: 'silent' }) });
});
after(() => app.close());

test('GET / is the page, with a content security policy that allows nothing from elsewhere', async () => {
  const res = await app.inject({ url: '/' });
  assert.equal(res.statusCode, 200);
  assert.match(res.headers['content-type'] as string, /^text\/html; charset=utf-8/);
  assert.match(res.body, /<script type="module" src="ui\/app.js">/);
  const csp = res.headers['content-security-policy'] as string;
  assert.match(csp, /default-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline|https?:/);
  assert.equal(res.headers['x-content-type-options'], 'nosniff');
  assert.doesNotMatch(res.body, /(src|href)="(https?:)?\/\//, 'no asset comes from another origin');
});

test('assets come with their content type and an ETag; a matching If-None-Match is 304', async () => {
  for (const [file, type] of [['app.js', 'text/javascript'], ['style.css', 'text/css'], ['favicon.svg', 'image/svg+xml']]) {
    const res = await app.inject({ url: `/ui/${file}` });
    assert.equal(res.statusCode, 200, file);
    assert.ok((res.headers['content-type'] as string).startsWith(type), `${file}: ${res.headers['content-type']}`);
    assert.equal(res.headers['cache-control'], 'no-cache');
    const again = await app.inject({ url: `/ui/${file}`, headers: { 'if-none-match': res.headers.etag as string } });
    assert.equal(again.statusCode, 304);
    assert.equal(again.body, '');
  }
});

test('every module the page imports is served', async () => {
  const pending = ['app.js'];
  const seen = new Set<string>();
  while (pending.length) {
    const file = pending.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const res = await app.inject({ url: `/ui/${file}` });
    assert.equal(res.statusCode, 200, `${file} is served`);
    for (const m of res.body.matchAll(/from '\.\/([\w.-]+)'/g)) pending.push(m[1]);
  }
  assert.ok(seen.size >= 6, [...seen].join(', '));
});

test('unknown files and path tricks are 404 with the error shape, never a file outside web/', async () => {
  for (const url of ['/ui/nope.js', '/ui/..%2Fpackage.json', '/ui/../package.json', '/ui/%2e%2e%2f%2e%2e%2fpackage.json', '/ui/.', '/ui/', '/ui/app.js%00.txt', '/ui/APP.JS']) {
    const res = await app.inject({ url });
    assert.equal(res.statusCode, 404, url);
    assert.equal(res.json().statusCode, 404, url);
  }
});

test('only plain files with known types and simple names are picked up', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'web-'));
  try {
    await writeFile(join(dir, 'index.html'), '<!doctype html>');
    await writeFile(join(dir, 'notes.txt'), 'not served');
    await writeFile(join(dir, '.env.js'), 'not served either');
    await writeFile(join(dir, 'a b.js'), 'odd name');
    await mkdir(join(dir, 'sub.js'));
    assert.deepEqual([...(await loadWebAssets(dir)).keys()], ['index.html']);
    assert.equal((await loadWebAssets(join(dir, 'missing'))).size, 0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
