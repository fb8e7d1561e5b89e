import type { Redis } from 'ioredis';
import { Value } from 'typebox/value';
import { CanarySchema, type Canary } from '../schemas/models.ts';

/**
 * What the model channel carries: `{"version": N}` when a version has been written, `{"pinned": N}`
 * or `{"pinned": null}` when the served version was pinned or unpinned, `{"canary": {…}}` or
 * `{"canary": null}` when a canary starts or ends. Listeners treat any event as
 * "look again" (the store and the pin in Redis are the truth), so a lost or repeated event is harmless.
 */
export type ModelEvent = { version: number } | { pinned: number | null } | { canary: Canary | null };

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
    if (event.canary === null || Value.Check(CanarySchema, event.canary)) return { canary: event.canary as Canary | null };
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
