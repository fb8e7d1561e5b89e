import { randomUUID } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Files being written start with this; sweeps remove old ones that a crashed writer left. */
export const TEMP_PREFIX = '.tmp-';

/** Writes a file and syncs it to disk before returning, so a rename after it publishes whole data. */
export async function writeFileSynced(path: string, data: string | Uint8Array): Promise<void> {
  const handle = await open(path, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Replaces `path` whole: written beside it under a temporary name, synced, renamed over it, so a
 * reader (maybe on another machine sharing the volume) sees the old file or the new one, never half.
 */
export async function replaceFile(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = join(dirname(path), `${TEMP_PREFIX}${randomUUID()}-${basename(path)}`);
  try {
    await writeFileSynced(tmp, data);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
