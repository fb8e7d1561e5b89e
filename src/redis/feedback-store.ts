import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { LabelledImages } from '../data/labelled-images.ts';
import { DIGIT_PIXELS } from '../schemas/digit.ts';
import type { FeedbackItem } from '../schemas/feedback.ts';

/** Bytes one correction takes against the datasets' quota: its pixels and its label, as a stored dataset counts them. */
export const CORRECTION_BYTES = DIGIT_PIXELS + 1;

export interface FeedbackKeys {
  /** Hash: id → the correction's JSON (FeedbackItem). */
  items: string;
  /** Hash: id → its 784 preprocessed pixels. */
  pixels: string;
  /** Sorted set: id scored by when its label was last set (ms), for paging and `since`. */
  byTime: string;
}

export interface NewCorrection {
  pixels: Uint8Array;
  label: number;
  source: FeedbackItem['source'];
}

export interface AddedCorrection {
  id: string;
  label: number;
  status: 'created' | 'relabelled' | 'unchanged';
  previousLabel?: number;
}

/** The same preprocessed image always has the same id, so a correction sent twice is one correction. */
export function correctionId(pixels: Uint8Array): string {
  return `fb_${createHash('sha256').update(pixels).digest('hex').slice(0, 20)}`;
}

/**
 * Corrections (`POST /v1/feedback`): labelled images kept in Redis, the state every API replica
 * and worker shares, deduplicated by their preprocessed pixels. Sending an image again with another
 * label replaces the label and records the change.
 */
export class FeedbackStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: FeedbackKeys,
  ) {}

  async count(): Promise<number> {
    return this.redis.hlen(this.keys.items);
  }

  /** Corrections whose label was set after `afterMs` (all when undefined). */
  async countSince(afterMs?: number): Promise<number> {
    return this.redis.zcount(this.keys.byTime, afterMs === undefined ? '-inf' : `(${afterMs}`, '+inf');
  }

  /**
   * In order; a later image of the same request with the same pixels wins. `reserve` is told how
   * many corrections are new, before anything is written, and may refuse them (the quota). Returns
   * what became of each, and how many corrections are kept now.
   */
  async add(
    corrections: NewCorrection[],
    opts: { reserve?: (fresh: number) => Promise<void>; now?: Date } = {},
  ): Promise<{ items: AddedCorrection[]; total: number }> {
    const now = opts.now ?? new Date();
    const at = now.toISOString();
    const ids = corrections.map((c) => correctionId(c.pixels));
    const stored = ids.length > 0 ? await this.redis.hmget(this.keys.items, ...ids) : [];
    const current = new Map<string, FeedbackItem>();
    stored.forEach((raw, i) => raw !== null && current.set(ids[i], JSON.parse(raw) as FeedbackItem));
    const fresh = new Set(ids.filter((id) => !current.has(id))).size;
    if (fresh > 0) await opts.reserve?.(fresh);
    const results: AddedCorrection[] = [];
    const tx = this.redis.multi();
    corrections.forEach((c, i) => {
      const id = ids[i];
      const before = current.get(id);
      if (before?.label === c.label) {
        results.push({ id, label: c.label, status: 'unchanged' });
        return;
      }
      const item: FeedbackItem = before
        ? { ...before, label: c.label, updatedAt: at, changes: [...before.changes, { at, from: before.label, to: c.label }] }
        : { id, label: c.label, source: c.source, createdAt: at, updatedAt: at, changes: [] };
      current.set(id, item);
      results.push(before ? { id, label: c.label, status: 'relabelled', previousLabel: before.label } : { id, label: c.label, status: 'created' });
      tx.hset(this.keys.items, id, JSON.stringify(item));
      tx.hset(this.keys.pixels, id, Buffer.from(c.pixels));
      tx.zadd(this.keys.byTime, now.getTime(), id);
    });
    const replies = (await tx.hlen(this.keys.items).exec()) ?? [];
    const [err, total] = replies.at(-1) ?? [null, 0];
    if (err) throw err;
    return { items: results, total: Number(total) };
  }

  /** Most recently labelled first. */
  async list(offset: number, limit: number): Promise<{ total: number; items: FeedbackItem[] }> {
    const [total, ids] = await Promise.all([this.count(), this.redis.zrevrange(this.keys.byTime, offset, offset + limit - 1)]);
    if (ids.length === 0) return { total, items: [] };
    const raws = await this.redis.hmget(this.keys.items, ...ids);
    return { total, items: raws.flatMap((raw) => (raw === null ? [] : [JSON.parse(raw) as FeedbackItem])) };
  }

  async delete(id: string): Promise<boolean> {
    const [[, removed]] = (await this.redis.multi().hdel(this.keys.items, id).hdel(this.keys.pixels, id).zrem(this.keys.byTime, id).exec())!;
    return removed === 1;
  }

  /**
   * Pages of corrections with their pixels, oldest label first, whose label was set in
   * (`afterMs`, `untilMs`]; for the ZIP download and for fine-tuning.
   */
  async *pages(opts: { afterMs?: number; untilMs?: number; pageSize?: number } = {}): AsyncGenerator<{ items: FeedbackItem[]; pixels: Uint8Array[] }> {
    const pageSize = opts.pageSize ?? 500;
    const min = opts.afterMs === undefined ? '-inf' : `(${opts.afterMs}`;
    const max = opts.untilMs === undefined ? '+inf' : String(opts.untilMs);
    for (let offset = 0; ; offset += pageSize) {
      const ids = await this.redis.zrangebyscore(this.keys.byTime, min, max, 'LIMIT', offset, pageSize);
      if (ids.length === 0) return;
      const [raws, pixels] = await Promise.all([this.redis.hmget(this.keys.items, ...ids), this.redis.hmgetBuffer(this.keys.pixels, ...ids)]);
      const page = { items: [] as FeedbackItem[], pixels: [] as Uint8Array[] };
      ids.forEach((_, i) => {
        const raw = raws[i];
        const px = pixels[i];
        if (raw === null || !px || px.length !== DIGIT_PIXELS) return; // deleted meanwhile
        page.items.push(JSON.parse(raw) as FeedbackItem);
        page.pixels.push(new Uint8Array(px));
      });
      yield page;
      if (ids.length < pageSize) return;
    }
  }

  /** All corrections in the range as a dataset. */
  async load(opts: { afterMs?: number; untilMs?: number } = {}): Promise<LabelledImages> {
    const images: Uint8Array[] = [];
    const labels: number[] = [];
    for await (const page of this.pages(opts)) {
      images.push(...page.pixels);
      labels.push(...page.items.map((i) => i.label));
    }
    const out = new Uint8Array(images.length * DIGIT_PIXELS);
    images.forEach((img, i) => out.set(img, i * DIGIT_PIXELS));
    return { images: out, labels: Uint8Array.from(labels), count: images.length };
  }
}
