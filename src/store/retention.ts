import type { ModelStore } from './model-store.ts';

export interface RetentionPolicy {
  /** Keep the newest N versions (`MODEL_KEEP_LAST`); 0 keeps every version. */
  keepLast: number;
  /** Versions kept whatever their age: the pinned one, those API replicas serve, bases of queued fine-tunes. */
  protect: Iterable<number>;
}

/**
 * The versions retention deletes, oldest first: all but the newest `keepLast` and the protected
 * ones. Pure. The newest version is never among them, so a version number is never handed out
 * twice (the store numbers a new version after the newest on disk).
 */
export function selectVersionsToDelete(versions: Iterable<number>, policy: RetentionPolicy): number[] {
  const { keepLast } = policy;
  if (!Number.isInteger(keepLast) || keepLast < 0) throw new RangeError(`keepLast must be a whole number ≥ 0, got ${keepLast}`);
  if (keepLast === 0) return [];
  const newestFirst = [...new Set(versions)].sort((a, b) => b - a);
  const keep = new Set([...newestFirst.slice(0, keepLast), ...policy.protect]);
  return newestFirst.filter((v) => !keep.has(v)).reverse();
}

/**
 * Applies the policy to the store: each chosen version is renamed out of the listing, then removed
 * (see ModelStore.deleteVersion). Returns the versions this call deleted.
 */
export async function pruneModelVersions(store: ModelStore, policy: RetentionPolicy): Promise<number[]> {
  const deleted: number[] = [];
  for (const version of selectVersionsToDelete(await store.listVersions(), policy)) {
    if (await store.deleteVersion(version)) deleted.push(version);
  }
  return deleted;
}
