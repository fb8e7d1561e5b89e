import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeIdx, parseIdxPair } from '../data/idx.ts';
import type { LabelledImages } from '../data/labelled-images.ts';
import type { DatasetInfo } from '../schemas/datasets.ts';
import { DIGIT_SIZE, NUM_CLASSES } from '../schemas/digit.ts';
import { ServiceError } from '../errors.ts';
import { formatCount } from '../format.ts';

export class DatasetNotFoundError extends ServiceError {
  constructor(id: string) {
    super('not-found', `dataset ${id} does not exist`);
  }
}

/** Storing a dataset would pass DATASETS_MAX_BYTES: 507, and the same upload works once space is freed. */
export class DatasetQuotaError extends ServiceError {
  constructor(message: string) {
    super('insufficient-storage', message);
  }
}

/** A dataset as it is written: its two IDX files and what dataset.json says of their content. */
export interface EncodedDataset {
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
  classCounts: number[];
  /** Of `images` then `labels`: identical content, identical digest. */
  sha256: string;
}

/**
 * Encodes and hashes a dataset for the store. Hashing 100,000 digits (78 MB) takes a few hundred
 * milliseconds, so the API does this on a decode thread, not on its event loop.
 */
export function encodeDataset(data: LabelledImages): EncodedDataset {
  const images = encodeIdx([data.count, DIGIT_SIZE, DIGIT_SIZE], data.images);
  const labels = encodeIdx([data.count], data.labels);
  const classCounts = new Array<number>(NUM_CLASSES).fill(0);
  for (const l of data.labels) classCounts[l]++;
  const sha256 = createHash('sha256').update(images).update(labels).digest('hex');
  return { images, labels, count: data.count, classCounts, sha256 };
}

const ID = /^ds_[0-9a-f]{12}$/;
const INFO = 'dataset.json';
const IMAGES = 'images-idx3-ubyte';
const LABELS = 'labels-idx1-ubyte';

/**
 * Uploaded datasets, already preprocessed, as an MNIST-style IDX pair plus `dataset.json`, each in
 * its own directory written under a temporary name and renamed into place (never half-written).
 * With `maxBytes` (DATASETS_MAX_BYTES, 0 = none) the datasets together stay within that many bytes.
 */
export class DatasetStore {
  /** Additions one at a time, so two uploads cannot both fit in the same free space or both store one content. */
  private adding: Promise<unknown> = Promise.resolve();

  constructor(
    readonly root: string,
    private readonly maxBytes = 0,
    /** Bytes kept elsewhere that count against the same quota (corrections, in Redis). */
    private readonly otherBytes: () => Promise<number> = async () => 0,
  ) {}

  async create(data: LabelledImages, meta: { name: string; format: DatasetInfo['format'] }): Promise<DatasetInfo> {
    return (await this.add(encodeDataset(data), meta)).dataset;
  }

  /**
   * Stores an encoded dataset, unless one with the same content (sha256) is stored already: then
   * that one is the answer (`created: false`) and nothing is written.
   */
  add(data: EncodedDataset, meta: { name: string; format: DatasetInfo['format'] }): Promise<{ dataset: DatasetInfo; created: boolean }> {
    const next = this.adding.then(() => this.addNow(data, meta));
    this.adding = next.catch(() => undefined);
    return next;
  }

  private async addNow(data: EncodedDataset, meta: { name: string; format: DatasetInfo['format'] }): Promise<{ dataset: DatasetInfo; created: boolean }> {
    const existing = (await this.list()).find((d) => d.sha256 === data.sha256);
    if (existing) return { dataset: existing, created: false };
    const id = `ds_${randomBytes(6).toString('hex')}`;
    const info: DatasetInfo = { id, name: meta.name, format: meta.format, createdAt: new Date().toISOString(), count: data.count, classCounts: data.classCounts, sha256: data.sha256 };
    const json = JSON.stringify(info, null, 2);
    await this.ensureSpace(data.images.byteLength + data.labels.byteLength + Buffer.byteLength(json), 'this dataset');
    await mkdir(this.root, { recursive: true });
    const tmp = join(this.root, `.tmp-${id}`);
    try {
      await mkdir(tmp);
      await writeFile(join(tmp, IMAGES), data.images);
      await writeFile(join(tmp, LABELS), data.labels);
      await writeFile(join(tmp, INFO), json);
      await rename(tmp, join(this.root, id));
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw err;
    }
    return { dataset: info, created: true };
  }

  /**
   * Throws unless `bytes` more fit in DATASETS_MAX_BYTES beside the datasets and corrections kept:
   * 413 if they alone never would, else 507. `what` names them in the message.
   */
  async ensureSpace(bytes: number, what: string): Promise<void> {
    const max = this.maxBytes;
    if (max === 0) return;
    if (bytes > max) {
      throw new ServiceError('too-large', `${what} would take ${formatCount(bytes)} bytes stored; all datasets and corrections together may take at most ${formatCount(max)} (DATASETS_MAX_BYTES): send fewer images`);
    }
    const used = (await this.usedBytes()) + (await this.otherBytes());
    if (used + bytes > max) {
      throw new DatasetQuotaError(
        `${what} would take ${formatCount(bytes)} bytes stored, but the datasets and corrections already use ${formatCount(used)} of ${formatCount(max)} bytes (DATASETS_MAX_BYTES), ` +
          `${formatCount(Math.max(0, max - used))} free: delete datasets (DELETE /v1/datasets/{id}) or corrections (DELETE /v1/feedback/{id}) you no longer need and send again`,
      );
    }
  }

  /** Bytes the stored datasets take: the sizes of their files. */
  private async usedBytes(): Promise<number> {
    const ids = (await readdir(this.root).catch(() => [] as string[])).filter((n) => ID.test(n));
    const sizes = await Promise.all(
      ids.flatMap((id) => [IMAGES, LABELS, INFO].map((file) => stat(join(this.root, id, file)).then((s) => s.size, () => 0))),
    );
    return sizes.reduce((a, b) => a + b, 0);
  }

  async list(): Promise<DatasetInfo[]> {
    const names = await readdir(this.root).catch(() => [] as string[]);
    const infos = await Promise.all(names.filter((n) => ID.test(n)).map((id) => this.get(id).catch(() => undefined)));
    return infos.filter((i): i is DatasetInfo => i !== undefined).sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  }

  async get(id: string): Promise<DatasetInfo> {
    if (!ID.test(id)) throw new DatasetNotFoundError(id);
    try {
      return JSON.parse(await readFile(join(this.root, id, INFO), 'utf8')) as DatasetInfo;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new DatasetNotFoundError(id);
      throw err;
    }
  }

  async load(id: string): Promise<LabelledImages> {
    await this.get(id);
    const [images, labels] = await Promise.all([readFile(join(this.root, id, IMAGES)), readFile(join(this.root, id, LABELS))]);
    return parseIdxPair(images, labels);
  }

  async delete(id: string): Promise<void> {
    await this.get(id);
    // Rename first, so a reader never sees a directory whose files are half gone.
    const doomed = join(this.root, `.deleting-${id}`);
    await rename(join(this.root, id), doomed);
    await rm(doomed, { recursive: true, force: true });
  }
}
