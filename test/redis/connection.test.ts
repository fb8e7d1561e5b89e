import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ReplyError } from 'ioredis';
import { createRedis, isRedisConnectionError } from '../../src/redis/connection.ts';
import { freePort } from '../helpers/processes.ts';

test('connection failures count as "Redis is away"; other errors do not', () => {
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' });
  for (const err of [
    refused,
    new Error("Stream isn't writeable and enableOfflineQueue options is false"),
    new Error('Connection is closed.'),
    new Error('Command timed out'),
    Object.assign(new Error('Reached the max retries per request limit (which is 2).'), { name: 'MaxRetriesPerRequestError' }),
    new ReplyError('LOADING Redis is loading the dataset in memory'),
  ]) {
    assert.equal(isRedisConnectionError(err), true, err.message);
  }
  for (const err of [new Error('job abc does not exist'), new TypeError("Cannot read properties of undefined (reading 'x')"), new ReplyError('WRONGTYPE Operation against a key holding the wrong kind of value'), 'ECONNREFUSED', undefined]) {
    assert.equal(isRedisConnectionError(err), false, String(err));
  }
});

test('a client connection that was up fails a command at once while Redis is away, instead of queueing it', async () => {
  // Nothing listens on this port: the connection never becomes ready, so commands would wait for it…
  const port = await freePort();
  const redis = createRedis(`redis://127.0.0.1:${port}`, 'client');
  redis.on('error', () => undefined);
  try {
    const started = Date.now();
    await assert.rejects(redis.get('k'), (err: Error) => isRedisConnectionError(err));
    assert.ok(Date.now() - started < 4000, `failed after ${Date.now() - started} ms (the command timeout bounds it)`);
    // …and once it has been up (the offline queue is switched off at the first 'ready'), they fail at once.
    redis.emit('ready');
    const again = Date.now();
    await assert.rejects(redis.get('k'), /enableOfflineQueue/);
    assert.ok(Date.now() - again < 100);
  } finally {
    redis.disconnect();
  }
});
