import type { Redis } from 'ioredis';
import { publishModelEvent } from './model-events.ts';

/**
 * Which version an operator pinned (`PUT /v1/models/serving`), if any. It lives in Redis, the one
 * state API replicas share, so every replica serves the same version: the one that took the PUT
 * writes the key and announces it; the others re-read it on the announcement (or their next poll).
 */
export interface PinStore {
  get(): Promise<number | undefined>;
  set(version: number): Promise<void>;
  clear(): Promise<void>;
}

export class RedisPinStore implements PinStore {
  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    private readonly channel: string,
  ) {}

  async get(): Promise<number | undefined> {
    const raw = await this.redis.get(this.key);
    const version = raw === null ? NaN : Number(raw);
    return Number.isInteger(version) && version > 0 ? version : undefined;
  }

  async set(version: number): Promise<void> {
    await this.redis.set(this.key, String(version));
    await publishModelEvent(this.redis, this.channel, { pinned: version });
  }

  async clear(): Promise<void> {
    await this.redis.del(this.key);
    await publishModelEvent(this.redis, this.channel, { pinned: null });
  }
}

/** A pin held in memory: for a single process, and for tests of the registry alone. */
export class MemoryPinStore implements PinStore {
  private version: number | undefined;
  async get() {
    return this.version;
  }
  async set(version: number) {
    this.version = version;
  }
  async clear() {
    this.version = undefined;
  }
}
