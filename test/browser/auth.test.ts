import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ModelStore } from '../../src/store/model-store.ts';
import { processEnv, testConfig, waitFor } from '../helpers/env.ts';
import { freePort, startProcess, type Proc } from '../helpers/processes.ts';
import { writeUntrainedVersion } from '../helpers/serving.ts';

// The web page against an API that requires keys: it asks for one, sends it with every call, and
// streams a job's events with it (EventSource cannot send headers; web/api.js reads the stream with fetch).
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const ADMIN = 'browser-admin-key-0123456789abcdef';

let base = '';
let browser: Browser;
let page: Page;
let api: Proc | undefined;
let cleanup = async () => {};
const exceptions: string[] = [];

before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: \`apt-get install -y chromium\` (.ci/run does it)`);
  const made = await testConfig();
  cleanup = made.cleanup;
  const { config } = made;
  await writeUntrainedVersion(new ModelStore(config.modelsDir), 1);
  const port = await freePort();
  api = startProcess('src/api.ts', processEnv(config, port, { LOG_LEVEL: 'warn', API_KEYS: `${ADMIN}:admin` }));
  base = `http://127.0.0.1:${port}`;
  const launching = chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  launching.catch(() => undefined); // awaited below
  await waitFor('the API to serve version 1', () => fetch(`${base}/readyz`).then((r) => r.json()).then((b) => b.servedVersion === 1, () => false), 60_000).catch((err) => {
    throw new Error(`${err.message}\n--- api ---\n${api?.output()}`);
  });
  browser = await launching;
  page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  page.on('pageerror', (e) => exceptions.push(e.message));
});

after(async () => {
  await browser?.close();
  await api?.stop();
  await cleanup();
});

test('the page opens its key field when the API answers 401, and works once a key is saved', async () => {
  await page.goto(base);
  await page.locator('#key-menu[open]').waitFor({ timeout: 10_000 });
  await page.locator('#served-pill', { hasText: 'API key needed' }).waitFor();

  await page.fill('#api-key', ADMIN);
  await page.click('#key-form button[type=submit]');
  await page.locator('#served-pill', { hasText: 'serving v1' }).waitFor({ timeout: 10_000 });
  assert.equal(await page.evaluate(() => localStorage.getItem('mnist-service.api-key')), ADMIN);
  assert.ok(await page.locator('#key-menu.set:not([open])').isVisible(), 'the menu closes and shows a key is set');

  // Predict with the key: a vertical stroke.
  const box = (await page.locator('#pad').boundingBox())!;
  await page.mouse.move(box.x + box.width / 2, box.y + box.height * 0.2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height * 0.8, { steps: 12 });
  await page.mouse.up();
  await page.locator('#pred-version', { hasText: 'answered by model version 1' }).waitFor({ timeout: 10_000 });
});

test("a job's events stream with the key, and cancelling it (an admin call) ends the stream", async () => {
  await page.click('#tab-train');
  await page.click('[data-preset=quick]');
  // Keep a copy of what the page reads from the event stream (a string: tsx's helpers do not exist in the page).
  await page.evaluate(`{
    window.streamText = '';
    const original = window.fetch;
    window.fetch = async (input, init) => {
      const res = await original(input, init);
      if (!String(input).includes('/events') || !res.body) return res;
      const [mine, copy] = res.body.tee();
      copy.pipeThrough(new TextDecoderStream()).pipeTo(new WritableStream({ write(text) { window.streamText += text; } })).catch(() => undefined);
      return new Response(mine, { status: res.status, headers: res.headers });
    };
  }`);
  const events = page.waitForResponse((r) => r.url().includes('/events'));
  await page.click('#train-submit');
  const response = await events;
  assert.equal(response.status(), 200);
  assert.equal(response.request().headers().authorization, `Bearer ${ADMIN}`);
  await page.locator('#watch-state .badge', { hasText: 'queued' }).waitFor({ timeout: 10_000 }); // no worker here: it stays queued
  await page.click('#watch-cancel');
  const streamText = (): Promise<string> => page.evaluate('window.streamText');
  await page.locator('#watch-state .badge', { hasText: 'cancelled' }).waitFor({ timeout: 15_000 }).catch(async (err) => {
    throw new Error(`${err.message}\nstream: ${await streamText()}\nconnection: ${await page.locator('#watch-connection').textContent()}`);
  });
  const stream = await streamText();
  assert.match(stream, /^event: job\n/m, 'the snapshot came through the stream');
  assert.match(stream, /^event: end\ndata: .*"cancelled"/m, 'and the end');
  assert.equal(await page.locator('#watch-connection').textContent(), '', 'no "lost connection"');
});

test('forgetting the key removes it from the browser', async () => {
  await page.click('#key-menu summary');
  await page.click('#key-forget');
  assert.equal(await page.evaluate(() => localStorage.getItem('mnist-service.api-key')), null);
  assert.ok(!(await page.locator('#key-menu').evaluate((el) => el.classList.contains('set'))));
  assert.deepEqual(exceptions, [], 'no uncaught exceptions');
});
