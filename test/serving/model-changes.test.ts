import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { parseModelEvent, publishModelEvent, publishVersion } from '../../src/redis/model-events.ts';
import { followModelChanges } from '../../src/serving/model-changes.ts';
import { REDIS_URL, waitFor } from '../helpers/env.ts';

const silent = { warn: () => undefined };
let base: string;
before(async () => {
  base = await mkdtemp(join(tmpdir(), 'mnist-events-'));
});
after(() => rm(base, { recursive: true, force: true }));

test('events are parsed strictly: versions, pins and unpins; anything else is ignored', () => {
  assert.deepEqual(parseModelEvent('{"version":3}'), { version: 3 });
  assert.deepEqual(parseModelEvent('{"pinned":2}'), { pinned: 2 });
  assert.deepEqual(parseModelEvent('{"pinned":null}'), { pinned: null });
  for (const junk of ['', 'nope', '{"version":0}', '{"version":"3"}', '{"pinned":-1}', '[]', 'null']) assert.equal(parseModelEvent(junk), undefined, junk);
});

test('a version renamed into the models directory is noticed by the watch; temporary directories are not', async () => {
  const dir = join(base, 'watched');
  const reasons: string[] = [];
  const stop = await followModelChanges({ channel: 'unused', dir, pollMs: 0, onChange: (r) => reasons.push(r), log: silent });
  try {
    await mkdir(join(dir, '.tmp-abc'));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(reasons.length, 0, 'a writer starting is not a change');
    await rename(join(dir, '.tmp-abc'), join(dir, '7'));
    await waitFor('the watch to fire', async () => reasons.includes('watch'), 1000, 10);
  } finally {
    await stop();
  }
});

test('the poll fires on its interval, and stops when asked', async () => {
  const reasons: string[] = [];
  const stop = await followModelChanges({ channel: 'unused', dir: join(base, 'polled'), pollMs: 30, onChange: (r) => reasons.push(r), log: silent });
  await waitFor('two polls', async () => reasons.filter((r) => r === 'poll').length >= 2, 1000, 10);
  await stop();
  const count = reasons.length;
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(reasons.length, count);
});

test('a version or pin published on Redis reaches the subscriber', async () => {
  const channel = `test-model-events-${process.pid}-${Date.now()}`;
  const publisher = new Redis(REDIS_URL);
  const subscriber = new Redis(REDIS_URL);
  const reasons: string[] = [];
  const stop = await followModelChanges({ subscriber, channel, dir: join(base, 'pubsub'), pollMs: 0, onChange: (r) => reasons.push(r), log: silent });
  try {
    await publishVersion(publisher, channel, 4);
    await publishModelEvent(publisher, channel, { pinned: null });
    await publisher.publish(channel, 'garbage');
    await publisher.publish(`${channel}-other`, '{"version":5}');
    await waitFor('two events', async () => reasons.length >= 2, 1000, 10);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(reasons, ['event', 'event']);
  } finally {
    await stop();
    publisher.disconnect();
    subscriber.disconnect();
  }
});
