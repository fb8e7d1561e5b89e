import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { replaceFile, TEMP_PREFIX } from './durable-file.ts';

const SUFFIX = '.ckpt';

/**
 * Training checkpoints on a volume, one file per job: `<root>/<job id>.ckpt`. A checkpoint is
 * written to a temporary file, synced and renamed over the previous one, so a reader (a worker
 * resuming the job, maybe on another machine) finds the old checkpoint or the new one, whole.
 */
export class CheckpointStore {
  constructor(readonly root: string) {}

  /** A job id → a file name: ids are the API's UUIDs, but any id a producer chose must stay in the directory. */
  private file(jobId: string): string {
    return join(this.root, `${encodeURIComponent(jobId).replace(/^\./, '%2E')}${SUFFIX}`);
  }

  async write(jobId: string, bytes: Uint8Array): Promise<void> {
    await mkdir(this.root, { recursive: true });
    await replaceFile(this.file(jobId), bytes);
  }

  /** The job's checkpoint, or undefined when it has none. */
  async read(jobId: string): Promise<Uint8Array | undefined> {
    try {
      return new Uint8Array(await readFile(this.file(jobId)));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** True if there was one to remove. */
  async remove(jobId: string): Promise<boolean> {
    const path = this.file(jobId);
    const existed = await stat(path).then(() => true, () => false);
    await rm(path, { force: true });
    return existed;
  }

  /** The ids of the jobs that have a checkpoint. */
  async list(): Promise<string[]> {
    const names = await readdir(this.root).catch(() => [] as string[]);
    return names.filter((n) => n.endsWith(SUFFIX) && !n.startsWith(TEMP_PREFIX)).map((n) => decodeURIComponent(n.slice(0, -SUFFIX.length)));
  }

  /** Removes temporary files left by writers that crashed half-way. */
  async removeStaleTemp(olderThanMs: number): Promise<string[]> {
    const removed: string[] = [];
    const names = await readdir(this.root).catch(() => [] as string[]);
    for (const name of names.filter((n) => n.startsWith(TEMP_PREFIX))) {
      const path = join(this.root, name);
      const info = await stat(path).catch(() => undefined);
      if (info && Date.now() - info.mtimeMs > olderThanMs) {
        await rm(path, { force: true });
        removed.push(name);
      }
    }
    return removed;
  }
}
