import { watch, type FSWatcher } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import type { Redis } from 'ioredis';
import { subscribeModelEvents } from '../redis/model-events.ts';

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
