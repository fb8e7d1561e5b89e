import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ModelMetadata, OnnxExport } from '../schemas/models.ts';
import { MODEL_JSON, ONNX_FILE, WEIGHTS_FILE, type ModelFiles } from '../ml/model-files.ts';
import { ServiceError } from '../errors.ts';
import { replaceFile, TEMP_PREFIX, writeFileSynced } from './durable-file.ts';

/** Beside the model's files in each version's directory: how it was made and how well it does. */
export const METADATA_JSON = 'metadata.json';

export class VersionNotFoundError extends ServiceError {
  constructor(version: number) {
    super('not-found', `model version ${version} does not exist`);
  }
}

const VERSION_DIR = /^[1-9]\d*$/;
/** A deleted version is renamed to this prefix first (out of the listing at once), then removed. */
const TRASH_PREFIX = '.trash-';


/**
 * Numbered model versions on a volume: `<root>/<version>/{model.json, weights, metadata.json}`.
 * A version is written whole into a temporary directory and renamed into place, so readers see a
 * version completely or not at all; rename refuses an existing non-empty directory, which is what
 * keeps two writers (even on two machines sharing the volume) from claiming the same number.
 */
export class ModelStore {
  constructor(readonly root: string) {}

  async listVersions(): Promise<number[]> {
    let names: string[];
    try {
      names = await readdir(this.root);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    return names.filter((n) => VERSION_DIR.test(n)).map(Number).sort((a, b) => b - a);
  }

  async latestVersion(): Promise<number | undefined> {
    return (await this.listVersions())[0];
  }

  versionDir(version: number): string {
    return join(this.root, String(version));
  }

  async exists(version: number): Promise<boolean> {
    return stat(join(this.versionDir(version), METADATA_JSON)).then(
      () => true,
      () => false,
    );
  }

  async readMetadata(version: number): Promise<ModelMetadata> {
    try {
      return JSON.parse(await readFile(join(this.versionDir(version), METADATA_JSON), 'utf8')) as ModelMetadata;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new VersionNotFoundError(version);
      throw err;
    }
  }

  async readModelFiles(version: number): Promise<ModelFiles> {
    const modelJson = await this.readModelJson(version);
    const weights = await readFile(join(this.versionDir(version), WEIGHTS_FILE)).catch((err: NodeJS.ErrnoException) => {
      throw err.code === 'ENOENT' ? new VersionNotFoundError(version) : err;
    });
    const onnx = await readFile(join(this.versionDir(version), ONNX_FILE)).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined; // served by TF.js
      throw err;
    });
    return { modelJson, weights, ...(onnx && { onnx }) };
  }

  async hasOnnx(version: number): Promise<boolean> {
    return stat(join(this.versionDir(version), ONNX_FILE)).then(
      () => true,
      () => false,
    );
  }

  /**
   * Adds the ONNX copy to a version written before it had one (the backfill): model.onnx first, then
   * the metadata that records it, each written beside and renamed over, so a reader sees either the
   * old version or the new file. False if the version was deleted meanwhile.
   */
  async addOnnx(version: number, onnx: Uint8Array | undefined, record: OnnxExport): Promise<boolean> {
    const dir = this.versionDir(version);
    try {
      const metadata = await this.readMetadata(version);
      if (onnx) await replaceFile(join(dir, ONNX_FILE), onnx);
      await replaceFile(join(dir, METADATA_JSON), JSON.stringify({ ...metadata, onnx: record }, null, 2));
      return true;
    } catch (err) {
      if (err instanceof VersionNotFoundError || (err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  /** A version's `model.json` alone: its topology and weights manifest, without the weights. */
  async readModelJson(version: number): Promise<ModelFiles['modelJson']> {
    try {
      return JSON.parse(await readFile(join(this.versionDir(version), MODEL_JSON), 'utf8')) as ModelFiles['modelJson'];
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new VersionNotFoundError(version);
      throw err;
    }
  }

  /** Files a client may fetch from a version: model.json, the weight files its manifest names, and model.onnx when it has one. */
  async servableFiles(version: number): Promise<Set<string>> {
    const modelJson = await this.readModelJson(version);
    const onnx = (await this.hasOnnx(version)) ? [ONNX_FILE] : [];
    return new Set([MODEL_JSON, ...modelJson.weightsManifest.flatMap((g) => g.paths), ...onnx]);
  }

  /** Writes a new version atomically and returns its number. */
  async writeVersion(files: ModelFiles, metadata: Omit<ModelMetadata, 'version'>): Promise<number> {
    await mkdir(this.root, { recursive: true });
    const tmp = join(this.root, `${TEMP_PREFIX}${randomUUID()}`);
    await mkdir(tmp);
    try {
      await writeFileSynced(join(tmp, MODEL_JSON), JSON.stringify(files.modelJson));
      await writeFileSynced(join(tmp, WEIGHTS_FILE), files.weights);
      if (files.onnx) await writeFileSynced(join(tmp, ONNX_FILE), files.onnx);
      let version = ((await this.latestVersion()) ?? 0) + 1;
      for (;;) {
        await writeFileSynced(join(tmp, METADATA_JSON), JSON.stringify({ version, ...metadata }, null, 2));
        try {
          await rename(tmp, this.versionDir(version));
          return version;
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
          version = Math.max(version + 1, ((await this.latestVersion()) ?? 0) + 1); // another writer won it
        }
      }
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw err;
    }
  }

  /**
   * Deletes a version so that no reader sees it half-deleted: one rename takes it out of the listing
   * (a reader either read it whole already, or gets "does not exist"), then the files go. False if
   * it was already gone, say removed by another worker's retention at the same moment.
   */
  async deleteVersion(version: number): Promise<boolean> {
    const trash = join(this.root, `${TRASH_PREFIX}${version}-${randomUUID()}`);
    try {
      await rename(this.versionDir(version), trash);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
    await rm(trash, { recursive: true, force: true });
    return true;
  }

  /** Removes temporary directories left by writers (or deletions) that crashed half-way. */
  async removeStaleTemp(olderThanMs: number): Promise<string[]> {
    const removed: string[] = [];
    const sweep = async (dir: string, names: string[], prefix = '') => {
      for (const name of names.filter((n) => n.startsWith(TEMP_PREFIX) || n.startsWith(TRASH_PREFIX))) {
        const path = join(dir, name);
        const info = await stat(path).catch(() => undefined);
        if (info && Date.now() - info.mtimeMs > olderThanMs) {
          await rm(path, { recursive: true, force: true });
          removed.push(prefix + name);
        }
      }
    };
    await sweep(this.root, await readdir(this.root).catch(() => [] as string[]));
    // Inside versions too: a file addOnnx was writing when its process died.
    for (const version of await this.listVersions()) {
      await sweep(this.versionDir(version), await readdir(this.versionDir(version)).catch(() => [] as string[]), `${version}/`);
    }
    return removed;
  }
}
