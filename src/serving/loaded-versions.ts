import { VersionNotFoundError, type ModelStore } from '../store/model-store.ts';
import { ServiceError } from '../errors.ts';
import type { InferenceEngineName } from '../schemas/inference-engine.ts';
import type { InferenceEngine, ModelHandle } from './engine.ts';

/** A version that exists but cannot be served (it fails to load or to run its warm-up). */
export class UnservableVersionError extends ServiceError {
  constructor(message: string) {
    super('conflict', message);
  }
}

/** A loaded version borrowed for one model call; it is not unloaded until every lease is released. */
export interface Lease {
  readonly version: number;
  readonly handle: ModelHandle;
  release(): void;
}

/** A version in the engine. Retired: dropped from the cache, unloaded when its last lease ends. */
export interface LoadedVersion {
  readonly version: number;
  readonly handle: ModelHandle;
  leases: number;
  retired: boolean;
}

interface CacheEntry {
  promise: Promise<LoadedVersion>;
  loaded?: LoadedVersion;
}

export interface LoadedVersionsOptions {
  /** Most versions held at once (what evict() keeps counts too). */
  cacheSize: number;
  /** A version that failed to load is not tried again for this long. */
  retryFailedAfterMs: number;
}

/**
 * The versions loaded into the inference engine: an LRU, one load per version however many ask at
 * once, a remembered failure per version (so a broken version is not reloaded on every poll or
 * request), and leases, so an eviction or a swap never unloads a model under a running batch.
 * Which versions matter (served, canary) is the registry's business: it says what evict() keeps.
 */
export class LoadedVersions {
  private readonly cache = new Map<number, CacheEntry>();
  private readonly failures = new Map<number, { at: number; message: string }>();
  private closed = false;

  constructor(
    private readonly store: ModelStore,
    private readonly engine: InferenceEngine,
    private readonly opts: LoadedVersionsOptions,
  ) {}

  /** Newest first, with the engine that runs each. */
  get list(): { version: number; engine: InferenceEngineName }[] {
    return [...this.cache.values()].flatMap((e) => (e.loaded ? [{ version: e.loaded.version, engine: e.loaded.handle.engine }] : [])).sort((a, b) => b.version - a.version);
  }

  has(version: number): boolean {
    return this.cache.has(version);
  }

  failedRecently(version: number): boolean {
    const failure = this.failures.get(version);
    return failure !== undefined && Date.now() - failure.at < this.opts.retryFailedAfterMs;
  }

  /** An operator asking for a version is a reason to try it again. */
  forgetFailure(version: number): void {
    this.failures.delete(version);
  }

  /** The loaded (and warmed-up) version, from the cache or loaded now; a cache hit counts as a use. */
  load(version: number): Promise<LoadedVersion> {
    const cached = this.cache.get(version);
    if (cached) {
      this.touch(version);
      return cached.promise;
    }
    const failure = this.failures.get(version);
    if (failure && this.failedRecently(version)) return Promise.reject(new UnservableVersionError(failure.message));
    const loading = async (): Promise<LoadedVersion> => {
      const files = await this.store.readModelFiles(version);
      const handle = await this.engine.load(version, files);
      if (this.closed) {
        this.engine.unload(handle);
        throw new Error('the registry is closed');
      }
      const loaded: LoadedVersion = { version, handle, leases: 0, retired: false };
      entry.loaded = loaded;
      this.failures.delete(version);
      return loaded;
    };
    const entry: CacheEntry = { promise: loading() };
    this.cache.set(version, entry);
    entry.promise.catch((err: Error) => {
      this.cache.delete(version);
      if (err instanceof VersionNotFoundError) return;
      this.failures.set(version, { at: Date.now(), message: `version ${version} cannot be served: ${err.message}` });
    });
    return entry.promise.catch((err: Error) => {
      throw err instanceof VersionNotFoundError ? err : new UnservableVersionError(`version ${version} cannot be served: ${err.message}`);
    });
  }

  /** Map order is recency order: move to the back. */
  touch(version: number): void {
    const entry = this.cache.get(version);
    if (!entry) return;
    this.cache.delete(version);
    this.cache.set(version, entry);
  }

  /** Drops the least recently used loaded versions beyond the cache size, except those `keep` names. */
  evict(keep: (loaded: LoadedVersion) => boolean): void {
    for (const [version, entry] of this.cache) {
      if (this.cache.size <= this.opts.cacheSize) return;
      if (!entry.loaded || keep(entry.loaded)) continue;
      this.cache.delete(version);
      this.retire(entry.loaded);
    }
  }

  /**
   * Puts `handle` (the same version, loaded again) in place of `loaded`, which is unloaded after its
   * last lease. Undefined, and `handle` unloaded, when `loaded` has left the cache meanwhile.
   */
  replace(loaded: LoadedVersion, handle: ModelHandle): LoadedVersion | undefined {
    const entry = this.cache.get(loaded.version);
    if (this.closed || entry?.loaded !== loaded) {
      this.engine.unload(handle);
      return undefined;
    }
    const next: LoadedVersion = { version: loaded.version, handle, leases: 0, retired: false };
    entry.loaded = next;
    entry.promise = Promise.resolve(next);
    this.retire(loaded);
    return next;
  }

  /** One model call's hold on `loaded` (which must not be retired). */
  lease(loaded: LoadedVersion): Lease {
    loaded.leases++;
    let released = false;
    return {
      version: loaded.version,
      handle: loaded.handle,
      release: () => {
        if (released) return;
        released = true;
        loaded.leases--;
        if (loaded.retired && loaded.leases === 0) this.engine.unload(loaded.handle);
      },
    };
  }

  /** Unloads everything (a leased version after its last lease) and loads nothing more. */
  close(): void {
    this.closed = true;
    for (const entry of this.cache.values()) if (entry.loaded) this.retire(entry.loaded);
    this.cache.clear();
  }

  private retire(loaded: LoadedVersion): void {
    loaded.retired = true;
    if (loaded.leases === 0) this.engine.unload(loaded.handle);
  }
}
