import type { Redis } from 'ioredis';
import { Value } from 'typebox/value';
import { CanarySchema, type Canary } from '../schemas/models.ts';
import { MemorySettingStore, RedisSettingStore, type SettingFormat, type SettingStore } from './shared-setting.ts';

/**
 * The canary (`PUT /v1/models/serving {"canary": …}`), kept in Redis beside the pin so that every
 * API replica routes the same share to the same version, and so that model retention (in the
 * workers) never deletes it.
 */
export type CanaryStore = SettingStore<Canary>;

const CANARY: SettingFormat<Canary> = {
  encode: (canary) => JSON.stringify(canary),
  decode: (raw) => {
    try {
      const value: unknown = JSON.parse(raw);
      return Value.Check(CanarySchema, value) ? value : undefined;
    } catch {
      return undefined; // not ours: no canary
    }
  },
  event: (canary) => ({ canary }),
};

export class RedisCanaryStore extends RedisSettingStore<Canary> {
  constructor(redis: Redis, key: string, channel: string) {
    super(redis, key, channel, CANARY);
  }
}

export class MemoryCanaryStore extends MemorySettingStore<Canary> {}
