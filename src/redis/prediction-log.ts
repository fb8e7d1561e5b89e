import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

export interface PredictionLogOptions {
  /** How long an image stays retrievable by its prediction id (FEEDBACK_WINDOW_SECONDS); 0 = off. */
  windowSeconds: number;
  /** Most images kept at once, whatever their age (FEEDBACK_WINDOW_MAX_IMAGES): bounds Redis memory under load. */
  maxImages: number;
}

/** A prediction id: the Redis stream entry id of its image, `<ms>-<seq>`. */
const PREDICTION_ID = /^\d{1,15}-\d{1,15}$/;
const PIXELS_FIELD = 'p';
const FLUSH_AFTER_MS = 2;

interface Pending {
  images: Uint8Array[];
  resolve: (ids: string[] | undefined) => void;
}

/**
 * The preprocessed images of recent predictions, in a Redis stream, so that a correction can name
 * a prediction (`{"predictionId": …, "label": 7}`) on any API replica instead of sending the image
 * again. Writes of a few milliseconds go to Redis in one pipeline, beside the model call, so a
 * prediction waits for neither; the stream is trimmed by age and by count on every write. Fails
 * open: with Redis away a prediction simply has no id.
 */
export class PredictionLog {
  private pending: Pending[] = [];
  private scheduled = false;
  private failing = false;
  private trimmedAt = 0;

  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    private readonly opts: PredictionLogOptions,
    private readonly log: Logger,
  ) {}

  get enabled(): boolean {
    return this.opts.windowSeconds > 0;
  }

  /** Stores the images (784 bytes each); resolves with one id per image, or undefined if Redis did not take them. */
  record(images: Uint8Array[]): Promise<string[] | undefined> {
    if (!this.enabled || images.length === 0) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      this.pending.push({ images, resolve });
      if (!this.scheduled) {
        this.scheduled = true;
        // A few ms gathers the requests of several event-loop turns into one round trip; the
        // model call they wait for anyway takes longer.
        setTimeout(() => void this.flush(), FLUSH_AFTER_MS);
      }
    });
  }

  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    this.scheduled = false;
    const pipeline = this.redis.pipeline();
    for (const { images } of batch) {
      for (const image of images) pipeline.xadd(this.key, 'MAXLEN', '~', this.opts.maxImages, '*', PIXELS_FIELD, Buffer.from(image.buffer, image.byteOffset, image.byteLength));
    }
    // By age at most once a second: under load flushes come hundreds of times a second, and the
    // count bound (MAXLEN on every XADD) already keeps memory in check between trims.
    const now = Date.now();
    if (now - this.trimmedAt >= 1000) {
      this.trimmedAt = now;
      pipeline.xtrim(this.key, 'MINID', '~', now - this.opts.windowSeconds * 1000);
    }
    try {
      const results = (await pipeline.exec()) ?? [];
      let at = 0;
      for (const { images, resolve } of batch) {
        const ids = results.slice(at, at + images.length).map(([err, id]) => (err ? undefined : String(id)));
        at += images.length;
        resolve(ids.every((id) => id !== undefined) ? (ids as string[]) : undefined);
      }
      this.failing = false;
    } catch (err) {
      if (!this.failing) this.log.warn({ err: (err as Error).message }, 'could not keep predicted images for corrections; predictions go on without a predictionId');
      this.failing = true;
      for (const { resolve } of batch) resolve(undefined);
    }
  }

  /** The image of a prediction made within the window, or undefined (unknown, expired or trimmed). */
  async lookup(id: string): Promise<Uint8Array | undefined> {
    if (!PREDICTION_ID.test(id)) return undefined;
    const [entries, [seconds]] = await Promise.all([this.redis.xrangeBuffer(this.key, id, id), this.redis.time()]);
    const at = Number(id.split('-')[0]);
    if (entries.length === 0 || Number(seconds) * 1000 - at > this.opts.windowSeconds * 1000) return undefined;
    const fields = entries[0][1];
    for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i].toString() === PIXELS_FIELD) return new Uint8Array(fields[i + 1]);
    return undefined;
  }
}
