import type { Redis } from 'ioredis';
import { MemorySettingStore, RedisSettingStore, type SettingFormat, type SettingStore } from './shared-setting.ts';

/** Which version an operator pinned (`PUT /v1/models/serving`), if any: every replica serves it. */
export type PinStore = SettingStore<number>;

const PIN: SettingFormat<number> = {
  encode: String,
  decode: (raw) => {
    const version = Number(raw);
    return Number.isInteger(version) && version > 0 ? version : undefined;
  },
  event: (pinned) => ({ pinned }),
};

export class RedisPinStore extends RedisSettingStore<number> {
  constructor(redis: Redis, key: string, channel: string) {
    super(redis, key, channel, PIN);
  }
}

export class MemoryPinStore extends MemorySettingStore<number> {}
