import type { Redis } from 'ioredis';

/** "Version N is ready" over Redis pub/sub: how the API hears of new models without polling. */
export async function publishVersion(redis: Redis, channel: string, version: number): Promise<void> {
  await redis.publish(channel, JSON.stringify({ version }));
}

export async function subscribeVersions(subscriber: Redis, channel: string, onVersion: (version: number) => void): Promise<void> {
  subscriber.on('message', (ch: string, message: string) => {
    if (ch !== channel) return;
    try {
      const { version } = JSON.parse(message) as { version: unknown };
      if (Number.isInteger(version) && (version as number) > 0) onVersion(version as number);
    } catch {
      // not ours; ignore
    }
  });
  await subscriber.subscribe(channel);
}
