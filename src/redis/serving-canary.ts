import type { Redis } from 'ioredis';
import { Value } from 'typebox/value';
import { CanarySchema, type Canary } from '../schemas/models.ts';
import { publishModelEvent } from './model-events.ts';

/**
 * The canary (`PUT /v1/models/serving {"canary": …}`), kept in Redis beside the pin so that every
 * API replica routes the same share to the same version, and so that model retention (in the
 * workers) never deletes it.
 */
export interface CanaryStore {
  get(): Promise<Canary | undefined>;
  set(canary: Canary): Promise<void>;
  clear(): Promise<void>;
}

function parseCanary(raw: string | null): Canary | undefined {
  if (raw === null) return undefined;
  try {
    const value: unknown = JSON.parse(raw);
    return Value.Check(CanarySchema, value) ? value : undefined;
  } catch {
    return undefined; // not ours: no canary
  }
}

export class RedisCanaryStore implements CanaryStore {
  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    private readonly channel: string,
  ) {}

  async get(): Promise<Canary | undefined> {
    return parseCanary(await this.redis.get(this.key));
  }

  async set(canary: Canary): Promise<void> {
    await this.redis.set(this.key, JSON.stringify(canary));
    await publishModelEvent(this.redis, this.channel, { canary });
  }

  async clear(): Promise<void> {
    await this.redis.del(this.key);
    await publishModelEvent(this.redis, this.channel, { canary: null });
  }
}

/** A canary held in memory: for a single process, and for tests of the registry alone. */
export class MemoryCanaryStore implements CanaryStore {
  private canary: Canary | undefined;
  async get() {
    return this.canary;
  }
  async set(canary: Canary) {
    this.canary = { ...canary };
  }
  async clear() {
    this.canary = undefined;
  }
}
