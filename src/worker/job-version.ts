import type { ModelMetadata } from '../schemas/models.ts';
import type { ModelStore } from '../store/model-store.ts';

/** Versions written more than this before their job was queued cannot be its (allows for clock skew between machines). */
const CLOCK_SKEW_MS = 10 * 60 * 1000;

/**
 * The version a job has already written, if any: an attempt that died after writing its version but
 * before BullMQ marked the job done must not lead to a second one. Looks from the newest version
 * back to those older than the job itself.
 */
export async function findVersionOfJob(store: ModelStore, jobId: string, jobCreatedAt: number): Promise<ModelMetadata | undefined> {
  for (const version of await store.listVersions()) {
    const meta = await store.readMetadata(version).catch(() => undefined); // deleted meanwhile, or not ours to judge
    if (!meta) continue;
    if (meta.jobId === jobId) return meta;
    if (Date.parse(meta.createdAt) < jobCreatedAt - CLOCK_SKEW_MS) return undefined;
  }
  return undefined;
}
