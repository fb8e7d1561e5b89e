import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeIdx, parseIdxPair } from '../data/idx.ts';
import type { LabelledImages } from '../data/labelled-images.ts';
import type { DatasetInfo } from '../schemas/datasets.ts';
import { DIGIT_SIZE, NUM_CLASSES } from '../schemas/digit.ts';
import { ServiceError } from '../errors.ts';

export class DatasetNotFoundError extends ServiceError {
  constructor(id: string) {
    super('not-found', `dataset ${id} does not exist`);
  }
}

const ID = /^ds_[0-9a-f]{12}$/;
const INFO = 'dataset.json';
const IMAGES = 'images-idx3-ubyte';
const LABELS = 'labels-idx1-ubyte';

/**
 * Uploaded datasets, already preprocessed, as an MNIST-style IDX pair plus `dataset.json`, each in
 * its own directory written under a temporary name and renamed into place (never half-written).
 */
export class DatasetStore {
  constructor(readonly root: string) {}

  async create(data: LabelledImages, meta: { name: string; format: DatasetInfo['format'] }): Promise<DatasetInfo> {
    const id = `ds_${randomBytes(6).toString('hex')}`;
    const images = encodeIdx([data.count, DIGIT_SIZE, DIGIT_SIZE], data.images);
    const labels = encodeIdx([data.count], data.labels);
    const classCounts = new Array<number>(NUM_CLASSES).fill(0);
    for (const l of data.labels) classCounts[l]++;
    const info: DatasetInfo = {
      id,
      name: meta.name,
      format: meta.format,
      createdAt: new Date().toISOString(),
      count: data.count,
      classCounts,
      sha256: createHash('sha256').update(images).update(labels).digest('hex'),
    };
    await mkdir(this.root, { recursive: true });
    const tmp = join(this.root, `.tmp-${id}`);
    try {
      await mkdir(tmp);
      await writeFile(join(tmp, IMAGES), images);
      await writeFile(join(tmp, LABELS), labels);
      await writeFile(join(tmp, INFO), JSON.stringify(info, null, 2));
      await rename(tmp, join(this.root, id));
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw err;
    }
    return info;
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
