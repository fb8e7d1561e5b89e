import type { Redis } from 'ioredis';
import { publishModelEvent, type ModelEvent } from './model-events.ts';

/**
 * A serving setting every API replica shares (the pin, the canary). It lives in Redis, the one
 * state replicas share: the replica that takes the change writes the key and announces it; the
 * others re-read it on the announcement (or their next poll).
 */
export interface SettingStore<T> {
  get(): Promise<T | undefined>;
  set(value: T): Promise<void>;
  clear(): Promise<void>;
}

/** How a setting is written in its key and announced on the model channel. */
export interface SettingFormat<T> {
  encode(value: T): string;
  /** The value, or undefined for what is not one (then the setting counts as unset). */
  decode(raw: string): T | undefined;
  event(value: T | null): ModelEvent;
}

export class RedisSettingStore<T> implements SettingStore<T> {
  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    private readonly channel: string,
    private readonly format: SettingFormat<T>,
  ) {}

  async get(): Promise<T | undefined> {
    const raw = await this.redis.get(this.key);
    return raw === null ? undefined : this.format.decode(raw);
  }

  async set(value: T): Promise<void> {
    await this.redis.set(this.key, this.format.encode(value));
    await publishModelEvent(this.redis, this.channel, this.format.event(value));
  }

  async clear(): Promise<void> {
    await this.redis.del(this.key);
    await publishModelEvent(this.redis, this.channel, this.format.event(null));
  }
}

/** A setting held in memory: for a single process, and for tests of the registry alone. */
export class MemorySettingStore<T> implements SettingStore<T> {
  private value: T | undefined;

  async get(): Promise<T | undefined> {
    return this.value;
  }

  async set(value: T): Promise<void> {
    this.value = structuredClone(value); // a copy, as a read from Redis would be
  }

  async clear(): Promise<void> {
    this.value = undefined;
  }
}
