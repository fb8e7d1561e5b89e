import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { parseModelEvent, type ModelEvent } from '../../src/redis/model-events.ts';
import { RedisCanaryStore } from '../../src/redis/serving-canary.ts';
import { RedisPinStore } from '../../src/redis/serving-pin.ts';
import { REDIS_URL, waitFor } from '../helpers/env.ts';

// The pin and the canary as replicas share them: a key each, and an announcement on the model channel.
const prefix = `test-settings-${randomUUID().slice(0, 8)}`;
const [pinKey, canaryKey, channel] = [`${prefix}:pin`, `${prefix}:canary`, `${prefix}:events`];
let redis: Redis;
let other: Redis; // another replica's connection
let subscriber: Redis;
const heard: ModelEvent[] = [];

before(async () => {
  redis = new Redis(REDIS_URL);
  other = new Redis(REDIS_URL);
  subscriber = new Redis(REDIS_URL);
  subscriber.on('message', (_ch: string, message: string) => heard.push(parseModelEvent(message)!));
  await subscriber.subscribe(channel);
});
after(async () => {
  await redis.del(pinKey, canaryKey);
  redis.disconnect();
  other.disconnect();
  subscriber.disconnect();
});

test('a pin and a canary written by one replica are read by another, and each change is announced', async () => {
  const [pins, canaries] = [new RedisPinStore(redis, pinKey, channel), new RedisCanaryStore(redis, canaryKey, channel)];
  const [otherPins, otherCanaries] = [new RedisPinStore(other, pinKey, channel), new RedisCanaryStore(other, canaryKey, channel)];
  assert.equal(await otherPins.get(), undefined);
  await pins.set(3);
  await canaries.set({ version: 4, fraction: 0.25 });
  assert.equal(await otherPins.get(), 3);
  assert.deepEqual(await otherCanaries.get(), { version: 4, fraction: 0.25 });
  await pins.clear();
  await canaries.clear();
  assert.equal(await otherPins.get(), undefined);
  assert.equal(await otherCanaries.get(), undefined);
  await waitFor('the four announcements', async () => heard.length === 4, 5000, 20);
  assert.deepEqual(heard, [{ pinned: 3 }, { canary: { version: 4, fraction: 0.25 } }, { pinned: null }, { canary: null }]);
});

test('a key holding something else counts as no pin and no canary, not as an error', async () => {
  const [pins, canaries] = [new RedisPinStore(redis, pinKey, channel), new RedisCanaryStore(redis, canaryKey, channel)];
  for (const raw of ['0', '-2', '1.5', 'seven', '']) {
    await redis.set(pinKey, raw);
    assert.equal(await pins.get(), undefined, `pin ${JSON.stringify(raw)}`);
  }
  for (const raw of ['{', '3', '{"version": 2}', '{"version": 2, "fraction": 7}']) {
    await redis.set(canaryKey, raw);
    assert.equal(await canaries.get(), undefined, `canary ${raw}`);
  }
});
