import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Config } from '../config.ts';

/** Where uploaded models wait for their import job: `.imports` in the models volume, which every worker reads. */
export function importStagingDir(config: Pick<Config, 'modelsDir'>): string {
  return join(config.modelsDir, '.imports');
}

/**
 * Uploaded model files waiting for their import job, one directory per job id, in the models
 * volume so that any worker can read them. Written under a temporary name and renamed, so a
 * worker finds an upload whole or not at all; removed when its job has ended.
 */
export class ImportStaging {
  constructor(readonly root: string) {}

  private dir(jobId: string): string {
    return join(this.root, basename(jobId));
  }

  async write(jobId: string, files: Map<string, Buffer>): Promise<void> {
    const tmp = join(this.root, `.tmp-${basename(jobId)}`);
    await mkdir(tmp, { recursive: true });
    try {
      for (const [name, data] of files) await writeFile(join(tmp, basename(name)), data);
      await rename(tmp, this.dir(jobId));
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw err;
    }
  }

  async read(jobId: string, names: string[]): Promise<Map<string, Buffer>> {
    return new Map(await Promise.all(names.map(async (name) => [name, await readFile(join(this.dir(jobId), basename(name)))] as const)));
  }

  async remove(jobId: string): Promise<void> {
    await rm(this.dir(jobId), { recursive: true, force: true });
    await rm(join(this.root, `.tmp-${basename(jobId)}`), { recursive: true, force: true });
  }

  /** Job ids with an upload staged (temporary directories of interrupted writes included, by their job id). */
  async list(): Promise<string[]> {
    const names = await readdir(this.root).catch(() => [] as string[]);
    return names.map((n) => n.replace(/^\.tmp-/, ''));
  }
}
