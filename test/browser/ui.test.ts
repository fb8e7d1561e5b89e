import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { ModelStore } from '../../src/store/model-store.ts';
import { processEnv, testConfig, waitFor } from '../helpers/env.ts';
import { writeFixtureVersion } from '../helpers/fixture-model.ts';
import { mnistTestPngs } from '../helpers/mnist-pngs.ts';
import { freePort, startProcess, type Proc } from '../helpers/processes.ts';

// The page as people use it, in a real Chromium, against the real service: an API process and a
// worker process (as `npm start` runs them), with a small trained model as version 1.
const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url));
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let base = '';
let browser: Browser;
let desktop: BrowserContext;
let page: Page;
const procs: Proc[] = [];
const problems: string[] = [];
let cleanup = async () => {};

/** Requests a test makes fail on purpose: Chrome logs every 4xx answer as a console error. */
const expectedFailures = new Set<string>();

/** Every console error and uncaught exception of a page, so the last test can say there were none. */
function watchConsole(p: Page, name: string) {
  p.on('console', (m) => {
    if (m.type() !== 'error') return;
    if (m.text().startsWith('Failed to load resource') && expectedFailures.has(new URL(m.location().url).pathname)) return;
    problems.push(`${name} console: ${m.text()} (${m.location().url})`);
  });
  p.on('pageerror', (e) => problems.push(`${name} exception: ${e.message}`));
}

async function shot(p: Page, name: string) {
  await p.evaluate(() => window.scrollTo(0, 0)); // the sticky header belongs at the top of a full-page shot
  await p.screenshot({ path: `${ARTIFACTS}${name}.png`, fullPage: true, animations: 'disabled' });
}
const serverLogs = () => `\n--- worker ---\n${procs[0]?.output()}\n--- api ---\n${procs[1]?.output()}`;

before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: \`apt-get install -y chromium\` (.ci/run does it)`);
  const { config, cleanup: clean } = await testConfig();
  cleanup = clean;
  await mkdir(ARTIFACTS, { recursive: true });
  const port = await freePort();
  // SERVING_POLICY=newest: the walk-through serves the tiny version 2 it trains, whatever it scores
  // against version 1 (under the default, best, that depends on the run; test/api/models-serving.test.ts
  // covers it).
  const env = processEnv(config, port, { LOG_LEVEL: 'warn', MODEL_POLL_MS: '500', SERVING_POLICY: 'newest' });
  procs.push(startProcess('src/worker.ts', env), startProcess('src/api.ts', env));
  base = `http://127.0.0.1:${port}`;
  // While they start: train version 1 (the API finds it on its next poll) and launch the browser.
  // `launch` gives every run a fresh temporary profile (its own --user-data-dir), removed on close.
  const launching = chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  launching.catch(() => undefined); // awaited below; not an unhandled rejection meanwhile
  await writeFixtureVersion(new ModelStore(config.modelsDir));
  await waitFor('the API to serve version 1', () => fetch(`${base}/readyz`).then((r) => r.json()).then((b) => b.servedVersion === 1, () => false), 60_000).catch((err) => {
    throw new Error(`${err.message}${serverLogs()}`);
  });
  browser = await launching;
  desktop = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await desktop.newPage();
  watchConsole(page, 'desktop');
  await page.goto(base);
});

after(async () => {
  await browser?.close();
  await Promise.all(procs.map((p) => p.stop()));
  await cleanup();
});

/** Draws through the points; `beforeUp` runs once all the ink is on the pad, before the pointer lifts. */
async function strokePath(p: Page, points: [number, number][], steps = 6, beforeUp?: () => void) {
  const box = (await p.locator('#pad').boundingBox())!;
  const at = ([x, y]: [number, number]) => [box.x + x * box.width, box.y + y * box.height] as const;
  await p.mouse.move(...at(points[0]));
  await p.mouse.down();
  for (const point of points.slice(1)) await p.mouse.move(...at(point), { steps });
  beforeUp?.();
  await p.mouse.up();
}

test('drawing a digit with the mouse shows a prediction, ten probabilities and the version that answered', async () => {
  await page.locator('#served-pill', { hasText: 'serving v1' }).waitFor();
  // A "7": a bar across the top and a stroke down to the left.
  await strokePath(page, [[0.3, 0.25], [0.7, 0.25], [0.45, 0.8]]);
  await page.locator('#pred-version', { hasText: 'answered by model version 1' }).waitFor({ timeout: 10_000 });
  const digit = await page.locator('#pred-digit').textContent();
  assert.match(digit!, /^[0-9]$/);
  assert.equal(await page.locator('#probs li').count(), 10);
  assert.equal(await page.locator('#probs li.best .prob-digit').textContent(), digit);
  const shares = (await page.locator('#probs .prob-value').allTextContents()).map((t) => parseFloat(t));
  assert.ok(Math.abs(shares.reduce((a, b) => a + b, 0) - 100) < 1.5, `probabilities add up to 100 %: ${shares}`);
  await shot(page, 'draw');

  await page.click('#clear');
  assert.equal(await page.locator('#pred-digit').textContent(), '–');
});

test('an uploaded PNG is classified as it is', async () => {
  const [digit] = await mnistTestPngs(1);
  await page.setInputFiles('#upload', { name: 'digit.png', mimeType: 'image/png', buffer: digit.png });
  await page.locator('#pred-version', { hasText: 'answered by model version 1' }).waitFor({ timeout: 10_000 });
  assert.equal(await page.locator('#pred-digit').textContent(), String(digit.label));
  await page.click('#clear');
});

test('a busy API (503 with Retry-After) is shown as a moment to wait, not as "no model yet"', async () => {
  const [digit] = await mnistTestPngs(1);
  expectedFailures.add('/v1/predict');
  await page.route('**/v1/predict', (route) =>
    route.fulfill({
      status: 503,
      headers: { 'retry-after': '1' },
      contentType: 'application/json',
      body: JSON.stringify({ statusCode: 503, error: 'Service Unavailable', message: '1024 images are waiting for the model here (PREDICT_MAX_QUEUED_IMAGES 1024); try again in a second' }),
    }),
  );
  try {
    await page.setInputFiles('#upload', { name: 'digit.png', mimeType: 'image/png', buffer: digit.png });
    await page.locator('#draw-error', { hasText: 'try again in a second' }).waitFor();
    assert.doesNotMatch((await page.locator('#draw-error').textContent())!, /Train tab/);
  } finally {
    await page.unroute('**/v1/predict');
    expectedFailures.delete('/v1/predict');
  }
  await page.click('#clear');
});

test("the train form's choices and defaults are the API's own, read from its OpenAPI document", async () => {
  await page.click('#tab-train');
  const options = (name: string) => page.locator(`select[name=${name}] option`).evaluateAll((os) => os.map((o) => [(o as HTMLOptionElement).value, o.textContent]));
  await page.locator('select[name=architecture] option[value=resnet]').waitFor({ state: 'attached' });
  assert.deepEqual(await options('architecture'), [['', 'cnn (default)'], ['lenet5', 'lenet5'], ['stn', 'stn'], ['resnet', 'resnet']]);
  assert.deepEqual(await options('learningRateSchedule'), [['', 'one-cycle (default)'], ['step', 'step'], ['constant', 'constant']]);
  assert.equal(await page.getAttribute('input[name=beta1]', 'placeholder'), '0.7 (default)');
  await page.click('[data-preset=best]');
  assert.equal(await page.inputValue('select[name=architecture]'), 'resnet');
  await page.click('[data-preset=full]');
  assert.equal(await page.inputValue('select[name=architecture]'), '');
  await page.check('input[name=kind][value=finetune]');
  assert.deepEqual(await options('freeze'), [['', 'features (default)'], ['none', 'none']]);
  assert.deepEqual(await options('learningRateSchedule'), [['', 'constant (default)'], ['one-cycle', 'one-cycle'], ['step', 'step']]);
  await page.check('input[name=kind][value=train]');
  await page.click('#tab-draw');
});

test('the fine-tune form sends what it shows, and a refusal is shown next to it', async () => {
  await page.click('#tab-train');
  await page.check('input[name=kind][value=finetune]');
  assert.ok(await page.isVisible('select[name=baseModel]'));
  assert.ok(!(await page.isVisible('input[name=limit]')));
  await page.locator('select[name=baseModel] option[value="1"]').waitFor({ state: 'attached' });
  await page.selectOption('select[name=baseModel]', '1');
  await page.fill('input[name=epochs]', '3');
  await page.click('#augment summary');
  await page.fill('input[name=rotation]', '10');
  let sent: unknown;
  expectedFailures.add('/v1/jobs');
  await page.route('**/v1/jobs', (route) => {
    sent = route.request().postDataJSON();
    return route.fulfill({ status: 400, contentType: 'application/json', body: JSON.stringify({ statusCode: 400, error: 'Bad Request', message: 'body/dataset is not what we want today' }) });
  });
  try {
    await page.click('#train-submit');
    await page.locator('#train-error', { hasText: 'not what we want today' }).waitFor();
  } finally {
    await page.unroute('**/v1/jobs');
    expectedFailures.delete('/v1/jobs');
  }
  assert.deepEqual(sent, { type: 'finetune', baseModel: 1, dataset: 'mnist', epochs: 3, augment: { rotation: 10 } });
  await page.check('input[name=kind][value=train]');
  await page.fill('input[name=epochs]', '');
  await page.fill('input[name=rotation]', '');
  await page.click('#augment summary');
  await page.click('#tab-draw');
});

test('at phone width, drawing with a finger works and no tab scrolls sideways', async () => {
  // In dark mode, so the screenshots show that theme too.
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true, deviceScaleFactor: 2, colorScheme: 'dark' });
  try {
    const p = await phone.newPage();
    watchConsole(p, 'phone');
    await p.goto(base);
    const box = (await p.locator('#pad').boundingBox())!;
    const cdp = await phone.newCDPSession(p);
    const touch = (type: 'touchStart' | 'touchMove' | 'touchEnd', x?: number, y?: number) =>
      cdp.send('Input.dispatchTouchEvent', { type, touchPoints: x === undefined ? [] : [{ x: box.x + x * box.width, y: box.y + y! * box.height }] });
    await touch('touchStart', 0.5, 0.2);
    for (let i = 1; i <= 12; i++) await touch('touchMove', 0.5, 0.2 + (0.6 * i) / 12); // a "1"
    await touch('touchEnd');
    await p.locator('#pred-version', { hasText: 'answered by model version 1' }).waitFor({ timeout: 10_000 });
    // The answer to the whole stroke: on a busy machine one to its first dot may come before it.
    await p.locator('#pred-digit', { hasText: /^1$/ }).waitFor({ timeout: 10_000 }).catch(async () => {
      assert.fail(`a vertical stroke is a 1, not ${await p.locator('#pred-digit').textContent()}`);
    });
    await shot(p, 'phone-draw');

    for (const tab of ['train', 'models']) {
      await p.click(`#tab-${tab}`);
      await p.locator(`#panel-${tab}`).waitFor();
      await p.waitForTimeout(300); // lists load
      const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `the ${tab} tab is ${overflow}px wider than the phone`);
      await shot(p, `phone-${tab}`);
    }
  } finally {
    await phone.close();
  }
});

test('the tabs work from the keyboard', async () => {
  await page.focus('#tab-draw');
  await page.keyboard.press('ArrowRight');
  assert.equal(await page.getAttribute('#tab-train', 'aria-selected'), 'true');
  assert.ok(await page.isVisible('#panel-train'));
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'tab-train');
  await page.keyboard.press('End');
  assert.ok(await page.isVisible('#panel-models'));
  await page.keyboard.press('Home');
  assert.ok(await page.isVisible('#panel-draw'));
});

test('a tiny job started from the form streams its curves into the charts and finishes as version 2', async () => {
  await page.click('#tab-train');
  const emptyChart = await page.locator('#loss-chart').evaluate((c: HTMLCanvasElement) => c.toDataURL());
  // Every text the progress line shows, to prove it moved batch by batch rather than jumping to the end.
  await page.evaluate(() => {
    const seen: string[] = ((window as unknown as { progressTexts: string[] }).progressTexts = []);
    new MutationObserver(() => seen.push(document.querySelector('#watch-text')!.textContent!)).observe(document.querySelector('#watch-text')!, { childList: true, characterData: true, subtree: true });
  });
  await page.fill('input[name=epochs]', '2');
  await page.fill('input[name=limit]', '1000');
  await page.fill('input[name=batchSize]', '16');
  await page.fill('input[name=validationSplit]', '0.1');
  await page.fill('input[name=seed]', '11');
  await page.click('#train-submit');

  await page.locator('#watch-state .badge', { hasText: /succeeded|failed|cancelled/ }).waitFor({ timeout: 90_000 }).catch((err) => {
    throw new Error(`${err.message}${serverLogs()}`);
  });
  assert.equal(await page.locator('#watch-state .badge').textContent(), 'succeeded');
  assert.match((await page.locator('#watch-result').textContent())!, /Wrote model version 2: test accuracy \d+\.\d\d%/);
  const texts: string[] = await page.evaluate(() => (window as unknown as { progressTexts: string[] }).progressTexts);
  const batches = new Set(texts.filter((t) => /^Epoch \d of 2 · batch \d+ of \d+/.test(t)));
  // The worker reports at most every 0.5 s and at each epoch's end, so even a fast run shows both epochs.
  assert.ok(batches.size >= 2, `the progress line moved batch by batch: ${[...batches].join(' | ')}`);
  assert.ok([...batches].some((t) => t.startsWith('Epoch 1 of 2')));
  assert.ok([...batches].some((t) => t.startsWith('Epoch 2 of 2')));
  assert.notEqual(await page.locator('#loss-chart').evaluate((c: HTMLCanvasElement) => c.toDataURL()), emptyChart, 'the loss chart was drawn');
  await page.locator('#jobs-body tr', { hasText: 'succeeded' }).first().waitFor();
  await shot(page, 'train');
});

test('a running job can be cancelled from the page', async () => {
  await page.click('[data-preset=quick]');
  await page.fill('input[name=limit]', '20000');
  await page.click('#train-submit');
  await page.locator('#watch-text', { hasText: /batch \d+ of/ }).waitFor({ timeout: 60_000 });
  await page.click('#watch-cancel');
  await page.locator('#watch-state .badge', { hasText: 'cancelled' }).waitFor({ timeout: 15_000 });
  assert.match((await page.locator('#watch-result').textContent())!, /no model was written/);
});

test('the models tab compares versions: accuracy, confusion matrix heat map, per-digit accuracy, serving', async () => {
  await page.click('#tab-models');
  await page.locator('#versions-body tr').nth(1).waitFor();
  assert.deepEqual(await page.locator('#versions-body tr td:first-child').allTextContents(), ['v2', 'v1']);
  await page.click('#versions-body button:text("v2")');
  await page.locator('#detail-title', { hasText: 'Version 2' }).waitFor();
  assert.match((await page.locator('#detail-stats').textContent())!, /Test accuracy\d+\.\d\d%/);
  await page.locator('#detail-stats [data-stat=Weights]', { hasText: /^\d[\d,]+$/ }).waitFor();
  assert.match((await page.locator('#detail-stats [data-stat="Served by"]').textContent())!, /^ONNX Runtime \(model\.onnx, within \d\.\de[-+]\d+ of TF\.js on [\d,]+ test images\)$/);
  assert.match((await page.locator('#detail-params').textContent())!, /epochs2/);
  assert.equal(await page.locator('#per-class li').count(), 10);

  // The heat map has ink, and reads out from the keyboard.
  const painted = await page.locator('#confusion').evaluate((c: HTMLCanvasElement) => {
    const data = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n++;
    return n / (data.length / 4);
  });
  assert.ok(painted > 0.3, `heat map covers ${(painted * 100).toFixed(0)}% of its canvas`);
  await page.focus('#confusion');
  await page.keyboard.press('ArrowRight');
  assert.match((await page.locator('#confusion-readout').textContent())!, /images of a 0 were taken for a 1/);

  await page.selectOption('#compare-version', '1');
  await page.locator('#per-class-legend').waitFor();
  assert.equal(await page.locator('#per-class .prob-track.other').count(), 10);
  await shot(page, 'models');

  // Pin an older version, then go back to the newest.
  await page.locator('#served-pill', { hasText: 'serving v2' }).waitFor({ timeout: 10_000 });
  await page.locator('#versions-body .serving-reason', { hasText: 'version 2 is newer' }).waitFor({ timeout: 10_000 });
  await page.click('#versions-body button:text("Serve this")');
  await page.locator('#served-pill', { hasText: 'serving v1' }).waitFor({ timeout: 10_000 });
  await page.locator('#versions-body .badge', { hasText: 'served · pinned' }).waitFor();
  await page.click('#pin-status button:text("Unpin")');
  await page.locator('#served-pill', { hasText: 'serving v2' }).waitFor({ timeout: 10_000 });
  assert.match((await page.locator('#pin-status').textContent())!, /newest version is served/);
  assert.ok(await page.locator('#models-error').isHidden());

  // A canary started through the API is shown with its share; it can be ended, or promoted, from here.
  const startCanary = async () => {
    const res = await fetch(`${base}/v1/models/serving`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ version: 2, canary: { version: 1, fraction: 0.25 } }) });
    assert.equal(res.status, 200);
    await page.reload();
    await page.click('#tab-models');
    await page.locator('#pin-status', { hasText: 'Version 1 answers 25% of predictions as a canary.' }).waitFor({ timeout: 10_000 });
  };
  await startCanary();
  await page.locator('#versions-body .serving-reason', { hasText: 'canary · 25 %' }).waitFor();
  await page.click('#pin-status button:text("End canary")');
  await page.locator('#pin-status .canary-status').waitFor({ state: 'detached', timeout: 10_000 });
  assert.equal((await (await fetch(`${base}/v1/models/serving`)).json()).canary, null);
  await startCanary();
  await page.click('#pin-status button:text("Promote")');
  await page.locator('#served-pill', { hasText: 'serving v1' }).waitFor({ timeout: 10_000 });
  assert.match((await page.locator('#pin-status').textContent())!, /^Version 1 is pinned\. Unpin$/);
  await page.click('#pin-status button:text("Unpin")');
  await page.locator('#served-pill', { hasText: 'serving v2' }).waitFor({ timeout: 10_000 });
});

test('digits drawn and corrected on the Draw tab fine-tune a new version from the Train tab; the Models tab shows its promotion gate', async () => {
  await page.click('#tab-draw');
  // Ones, sevens and fours of varied slant and proportions: each preprocesses to another image, so none is deduplicated.
  const shapes: [number, (i: number) => [number, number][]][] = [
    [1, (i) => [[0.5 + (i % 7) * 0.02, 0.2], [0.45 - (i % 5) * 0.025, 0.8]]],
    [7, (i) => [[0.25 + (i % 4) * 0.03, 0.22], [0.75, 0.22 + (i % 3) * 0.03], [0.4 + (i % 5) * 0.04, 0.82]]],
    [4, (i) => [[0.6 + (i % 4) * 0.03, 0.15], [0.28, 0.58 + (i % 3) * 0.03], [0.78, 0.6], [0.62, 0.6], [0.62 - (i % 5) * 0.03, 0.88]]],
  ];
  let total = 0;
  for (let i = 0; total < 20 && i < 40; i++) {
    const [label, path] = shapes[i % 3];
    await page.click('#clear');
    // Waiting on the answer to the whole drawing (one to its first dot may come first on a busy machine):
    // a request sent once all the ink was drawn. Timed before the pointer lifts, since lifting it
    // sends one at once, which could start before this test saw mouse.up() return.
    let drawnAt = Infinity;
    const predicted = page.waitForResponse((r) => r.url().endsWith('/v1/predict') && r.request().timing().startTime >= drawnAt);
    await strokePath(page, path(i), 2, () => (drawnAt = Date.now()));
    const { predictions } = await (await predicted).json();
    await page.locator('#feedback').waitFor({ state: 'visible', timeout: 10_000 });
    const stored = page.waitForResponse((r) => r.url().endsWith('/v1/feedback'));
    // Right answers get "That's right", wrong ones the digit it was.
    if (predictions[0].digit === label) await page.click('#feedback-right');
    else await page.click(`#feedback-digits button:text-is("${label}")`);
    total = (await (await stored).json()).total;
  }
  assert.equal(total, 20, 'enough corrections for a fine-tune');
  await page.locator('#feedback-status', { hasText: 'Thanks: ' }).waitFor();
  await shot(page, 'draw-feedback');

  await page.click('#tab-train');
  await page.check('input[name=kind][value=finetune]');
  await page.locator('select[name=dataset] option[value=feedback]', { hasText: 'Your corrections · 20' }).waitFor({ state: 'attached' });
  await page.selectOption('select[name=dataset]', 'feedback');
  await page.fill('input[name=epochs]', '1');
  await page.click('#train-submit');
  await page.locator('#watch-title', { hasText: 'Fine-tune job' }).waitFor({ timeout: 10_000 }).catch(async (err) => {
    throw new Error(`${err.message}: ${await page.locator('#train-error').textContent()}`);
  });
  await page.locator('#watch-state .badge', { hasText: /succeeded|failed|cancelled/ }).waitFor({ timeout: 90_000 }).catch((err) => {
    throw new Error(`${err.message}${serverLogs()}`);
  });
  assert.equal(await page.locator('#watch-state .badge').textContent(), 'succeeded');
  const version = Number(/Wrote model version (\d+)/.exec((await page.locator('#watch-result').textContent())!)![1]);
  await page.fill('input[name=epochs]', '');
  await page.check('input[name=kind][value=train]');

  const { promotion } = await (await fetch(`${base}/v1/models/${version}`)).json();
  await page.click('#tab-models');
  const row = page.locator('#versions-body tr', { hasText: `v${version}` });
  await row.waitFor();
  // Under SERVING_POLICY=newest (this file's), the gate alone decides whether it serves.
  if (promotion.passed) await row.locator('.badge', { hasText: 'served' }).waitFor({ timeout: 10_000 });
  else await row.locator('.serving-reason', { hasText: 'not promoted · gate failed' }).waitFor({ timeout: 10_000 });
  assert.match((await row.locator('td[title]').getAttribute('title'))!, new RegExp(`promotion gate ${promotion.passed ? 'passed' : 'failed'}: `));
  await shot(page, 'models-feedback');
});

test('no console errors or uncaught exceptions on any page', () => {
  assert.deepEqual(problems, []);
});
