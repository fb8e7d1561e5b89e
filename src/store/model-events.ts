import { watch, type FSWatcher } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import type { Redis } from 'ioredis';

/**
 * What the model channel carries: `{"version": N}` when a version has been written, `{"pinned": N}`
 * or `{"pinned": null}` when the served version was pinned or unpinned. Listeners treat any event as
 * "look again" (the store and the pin in Redis are the truth), so a lost or repeated event is harmless.
 */
export type ModelEvent = { version: number } | { pinned: number | null };

export async function publishModelEvent(redis: Redis, channel: string, event: ModelEvent): Promise<void> {
  await redis.publish(channel, JSON.stringify(event));
}

/** "Version N is ready": how workers tell every API replica about a new model without polling. */
export async function publishVersion(redis: Redis, channel: string, version: number): Promise<void> {
  await publishModelEvent(redis, channel, { version });
}

export function parseModelEvent(message: string): ModelEvent | undefined {
  try {
    const event = JSON.parse(message) as Record<string, unknown>;
    if (Number.isInteger(event.version) && (event.version as number) > 0) return { version: event.version as number };
    if (event.pinned === null || (Number.isInteger(event.pinned) && (event.pinned as number) > 0)) return { pinned: event.pinned as number | null };
  } catch {
    // not ours
  }
  return undefined;
}

export async function subscribeModelEvents(subscriber: Redis, channel: string, onEvent: (event: ModelEvent) => void): Promise<void> {
  subscriber.on('message', (ch: string, message: string) => {
    if (ch !== channel) return;
    const event = parseModelEvent(message);
    if (event) onEvent(event);
  });
  await subscriber.subscribe(channel);
}

export async function subscribeVersions(subscriber: Redis, channel: string, onVersion: (version: number) => void): Promise<void> {
  await subscribeModelEvents(subscriber, channel, (event) => {
    if ('version' in event) onVersion(event.version);
  });
}

export interface ModelChangeSources {
  /** A dedicated subscriber connection, or undefined to go without pub/sub. */
  subscriber?: Redis;
  channel: string;
  /** The models directory, watched for versions renamed into place. */
  dir: string;
  /** Re-check on a timer too (0 = never): the fallback when events and the watch both miss. */
  pollMs: number;
  onChange: (reason: 'event' | 'watch' | 'poll') => void;
  log: { warn: (obj: object, msg: string) => void };
}

/**
 * Calls `onChange` whenever a model version may have appeared or the pin may have changed, from
 * three sources so that a new version is picked up within about a second even when one fails:
 * Redis pub/sub (instant, all replicas, but fire-and-forget), a file-system watch on the models
 * directory (instant on a local volume — also without Redis, or when a version is copied in by
 * hand — but not on every network file system), and a poll (always works, costs a readdir).
 */
export async function followModelChanges(src: ModelChangeSources): Promise<() => Promise<void>> {
  if (src.subscriber) await subscribeModelEvents(src.subscriber, src.channel, () => src.onChange('event'));

  let watcher: FSWatcher | undefined;
  try {
    await mkdir(src.dir, { recursive: true });
    watcher = watch(src.dir, { persistent: false }, (_type, name) => {
      // Writers create `.tmp-…` directories first; only the rename to a number matters.
      if (name === null || /^[1-9]\d*$/.test(String(name))) src.onChange('watch');
    });
    watcher.on('error', (err) => src.log.warn({ err: err.message, dir: src.dir }, 'models directory watch failed; relying on events and polling'));
  } catch (err) {
    src.log.warn({ err: (err as Error).message, dir: src.dir }, 'cannot watch the models directory; relying on events and polling');
  }

  const poll = src.pollMs > 0 ? setInterval(() => src.onChange('poll'), src.pollMs).unref() : undefined;
  return async () => {
    if (poll) clearInterval(poll);
    watcher?.close();
  };
}
