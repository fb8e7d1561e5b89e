import type { Logger } from 'pino';
import { VersionNotFoundError, type ModelStore } from '../store/model-store.ts';
import type { InferenceEngine, ModelHandle } from './engine.ts';
import type { InferenceEngineName } from '../schemas/inference-engine.ts';
import { MemoryPinStore, type PinStore } from '../redis/serving-pin.ts';
import { MemoryCanaryStore, type CanaryStore } from '../redis/serving-canary.ts';
import { routesToCanary } from './canary-routing.ts';
import { ServiceError } from '../errors.ts';
import type { Canary, ServingPolicy } from '../schemas/models.ts';
import { chooseServing, scoredVersion, type ScoredVersion } from './serving-policy.ts';
import { LoadedVersions, type Lease, type LoadedVersion } from './loaded-versions.ts';

export class NoModelError extends ServiceError {
  constructor() {
    super('unavailable', 'no model has been trained yet: start one with POST /v1/jobs {"type":"train"} and predict again when it has succeeded');
  }
}

export interface ServingStatus {
  servedVersion: number | null;
  pinnedVersion: number | null;
  latestVersion: number | null;
  loadedVersions: number[];
  /** The same versions, each with the engine that runs it here. */
  loaded: { version: number; engine: InferenceEngineName }[];
  canary: Canary | null;
}

export interface RegistryOptions {
  /** Most versions held in memory at once, the served one included (an LRU of the others). */
  cacheSize?: number;
  /** Where the pin lives; Redis in the service, so replicas agree. */
  pins?: PinStore;
  /** Where the canary lives; Redis in the service, so replicas route alike. */
  canaries?: CanaryStore;
  /** A version that failed to load is not tried again (by refresh or by ?version=) for this long. */
  retryFailedAfterMs?: number;
  /** Which version serves when none is pinned (see chooseServing); `best` unless told. */
  policy?: ServingPolicy;
  /** Under `best`, how much lower a new version's test accuracy may be and still serve. */
  tolerance?: number;
}

/**
 * The model versions the API serves. "Served" is the pinned version if an operator pinned one,
 * else the first version that loads of those SERVING_POLICY chooses (serving-policy.ts: by default
 * the newest whose test accuracy is at least the one served before it); beside it, a canary takes
 * its share of requests. Switching is done the way TensorFlow Serving users wish it always were:
 * - a version is loaded and warmed up (one inference) before it takes traffic, and the old one
 *   answers until that moment — no gap, no first-request latency spike;
 * - a version that fails to load or to warm up never replaces a good one (nor is it retried on
 *   every poll);
 * - a model call holds a lease on its version, so a switch or an LRU eviction never unloads a
 *   model under a running batch: every response comes whole from one version.
 * Versions asked for explicitly (`?version=N`) are loaded on demand into a small LRU, along with the
 * previously served ones, which makes a rollback instant. The loading, the LRU, the remembered
 * failures and the leases are loaded-versions.ts's; this class decides which versions serve.
 */
export class ModelRegistry {
  private served: LoadedVersion | undefined;
  private pinned: number | undefined;
  /** The canary as last read from its store, and its loaded version (undefined while it does not load). */
  private canary: Canary | undefined;
  private canaryLoaded: LoadedVersion | undefined;
  private readonly versions: LoadedVersions;
  /** Versions loaded on TF.js that were loaded again once their model.onnx appeared (once each). */
  private readonly onnxRetried = new Set<number>();
  private readonly pins: PinStore;
  private readonly canaries: CanaryStore;
  private readonly policy: ServingPolicy;
  private readonly tolerance: number;
  /** What the policy needs of each version, read once from its metadata (a written version never changes). */
  private readonly scores = new Map<number, ScoredVersion>();
  private refreshing: Promise<void> | undefined;
  private refreshAgain = false;
  private pinReadFailing = false;
  private closed = false;

  constructor(
    private readonly store: ModelStore,
    private readonly engine: InferenceEngine,
    private readonly log: Logger,
    opts: RegistryOptions = {},
  ) {
    this.versions = new LoadedVersions(store, engine, { cacheSize: Math.max(1, opts.cacheSize ?? 3), retryFailedAfterMs: opts.retryFailedAfterMs ?? 30_000 });
    this.pins = opts.pins ?? new MemoryPinStore();
    this.canaries = opts.canaries ?? new MemoryCanaryStore();
    this.policy = opts.policy ?? 'best';
    this.tolerance = opts.tolerance ?? 0;
  }

  get servedVersion(): number | undefined {
    return this.served?.version;
  }

  /** The pin as last read from the pin store. */
  get pinnedVersion(): number | undefined {
    return this.pinned;
  }

  /** The canary as last read from its store (it may not be loaded yet, or at all). */
  get canarySetting(): Canary | undefined {
    return this.canary;
  }

  /** The canary this replica routes to: set, loaded, and not the served version itself. */
  get activeCanary(): Canary | undefined {
    const { canary, canaryLoaded, served } = this;
    return canary && canaryLoaded?.version === canary.version && served?.version !== canary.version ? canary : undefined;
  }

  /** The versions this replica answers with by default: the served one and the canary. */
  get defaultVersions(): number[] {
    const canary = this.activeCanary;
    return [...(this.served ? [this.served.version] : []), ...(canary ? [canary.version] : [])];
  }

  /**
   * The version one predict request without `?version=` goes to: the canary for its share of
   * requests (see routesToCanary), else undefined, the served one.
   */
  route(key: string | undefined): number | undefined {
    const canary = this.activeCanary;
    return canary && routesToCanary(canary, key) ? canary.version : undefined;
  }

  get loadedVersions(): number[] {
    return this.versions.list.map((l) => l.version);
  }

  async status(): Promise<ServingStatus> {
    return {
      servedVersion: this.served?.version ?? null,
      pinnedVersion: this.pinned ?? null,
      latestVersion: (await this.store.latestVersion()) ?? null,
      loadedVersions: this.loadedVersions,
      loaded: this.versions.list,
      canary: this.canary ?? null,
    };
  }

  /**
   * Re-reads the pin and the store and switches to what should be served. Safe to call often and
   * concurrently: calls during a refresh coalesce into one more refresh after it.
   */
  refresh(): Promise<void> {
    if (this.refreshing) {
      this.refreshAgain = true;
      return this.refreshing;
    }
    const run = async (): Promise<void> => {
      try {
        do {
          this.refreshAgain = false;
          await this.refreshOnce().catch((err) => this.log.error({ err }, 'model refresh failed'));
        } while (this.refreshAgain && !this.closed);
      } finally {
        this.refreshing = undefined;
      }
    };
    this.refreshing = run();
    return this.refreshing;
  }

  private async refreshOnce(): Promise<void> {
    if (this.closed) return;
    await this.refreshServed();
    await this.refreshCanary();
    await this.reloadOnOnnx();
  }

  /**
   * The served version and the canary, if TF.js runs them because they had no model.onnx when they
   * were loaded and the workers' backfill has since written one (it announces the version): loaded
   * again, swapped in, the old copy unloaded after its last call. Tried once per version; whatever
   * the engine gives (ONNX Runtime, or TF.js again under INFERENCE_ENGINE=tfjs), serving goes on.
   */
  private async reloadOnOnnx(): Promise<void> {
    for (const loaded of [this.served, this.canaryLoaded]) {
      if (!loaded || loaded.handle.engine !== 'tfjs' || this.onnxRetried.has(loaded.version)) continue;
      if (!(await this.store.hasOnnx(loaded.version))) continue;
      this.onnxRetried.add(loaded.version);
      let handle: ModelHandle;
      try {
        handle = await this.engine.load(loaded.version, await this.store.readModelFiles(loaded.version));
      } catch (err) {
        this.log.warn({ err: (err as Error).message, version: loaded.version }, 'could not load the new model.onnx; serving on TF.js as before');
        continue;
      }
      if (handle.engine === 'tfjs') {
        this.engine.unload(handle);
        continue;
      }
      const next = this.versions.replace(loaded, handle);
      if (!next) continue; // evicted or closed meanwhile
      if (this.served === loaded) this.served = next;
      if (this.canaryLoaded === loaded) this.canaryLoaded = next;
      this.log.info({ version: next.version, engine: handle.engine }, 'model version now runs on ONNX Runtime (its model.onnx appeared)');
    }
  }

  private async refreshCanary(): Promise<void> {
    try {
      this.canary = await this.canaries.get();
    } catch {
      // Redis away: keep routing as last known (the pin's warning above says it once).
    }
    const canary = this.canary;
    if (!canary) {
      this.canaryLoaded = undefined; // back to an ordinary member of the LRU
      this.evict();
      return;
    }
    if (this.canaryLoaded?.version === canary.version || this.versions.failedRecently(canary.version)) return;
    try {
      const loaded = await this.versions.load(canary.version);
      if (this.canary?.version === canary.version) this.canaryLoaded = loaded;
      this.log.info({ canary: canary.version, fraction: canary.fraction, served: this.served?.version }, 'canary version loaded');
    } catch (err) {
      this.canaryLoaded = undefined;
      this.log.error({ err: (err as Error).message, canary: canary.version }, 'canary version cannot be served; every request goes to the served version');
    }
  }

  private async refreshServed(): Promise<void> {
    try {
      this.pinned = await this.pins.get();
      this.pinReadFailing = false;
    } catch (err) {
      // Keep serving what the last known pin says rather than flip to "latest" during an outage
      // (said once per outage, not at every poll).
      if (!this.pinReadFailing) this.log.warn({ err: (err as Error).message }, 'could not read the pinned version; keeping the last known pin');
      this.pinReadFailing = true;
    }
    if (this.pinned !== undefined) {
      if (this.served?.version === this.pinned) return;
      try {
        await this.switchTo(this.pinned);
      } catch (err) {
        this.log.error({ err: (err as Error).message, pinned: this.pinned, served: this.served?.version }, 'pinned version cannot be served; keeping the current one');
      }
      return;
    }
    for (const version of await this.candidates()) {
      if (this.served?.version === version) return; // the first servable candidate is already served
      if (this.versions.failedRecently(version)) continue;
      try {
        await this.switchTo(version);
        return;
      } catch (err) {
        this.log.error({ err: (err as Error).message, version, served: this.served?.version }, 'model version cannot be served; trying an older one');
      }
    }
  }

  /** The versions that may serve, in the order SERVING_POLICY tries them. */
  private async candidates(): Promise<number[]> {
    const versions = await this.store.listVersions();
    for (const v of this.scores.keys()) if (!versions.includes(v)) this.scores.delete(v);
    const scored: ScoredVersion[] = [];
    for (const version of versions) {
      let score = this.scores.get(version);
      if (score === undefined) {
        // Unreadable metadata: not a candidate this time (loading it would fail the same way).
        score = await this.store.readMetadata(version).then(scoredVersion, () => undefined);
        if (score === undefined) continue;
        this.scores.set(version, score);
      }
      scored.push(score);
    }
    return chooseServing(scored, this.policy, this.tolerance).candidates;
  }

  private async switchTo(version: number): Promise<void> {
    const next = await this.versions.load(version);
    if (this.closed) return;
    const previous = this.served;
    if (previous === next) return;
    this.served = next;
    this.versions.touch(version);
    this.log.info({ version, previous: previous?.version, pinned: this.pinned ?? null }, 'serving model version');
    this.evict();
  }

  /** The LRU's trim, which never drops the served version or the canary. */
  private evict(): void {
    this.versions.evict((loaded) => loaded === this.served || loaded === this.canaryLoaded);
  }

  /** Borrows the served version (or `version`) for one model call. */
  async acquire(version?: number): Promise<Lease> {
    for (;;) {
      let loaded: LoadedVersion;
      if (version === undefined || version === this.served?.version) {
        if (!this.served) await this.refresh();
        if (!this.served) throw new NoModelError();
        loaded = this.served;
      } else {
        if (!this.versions.has(version) && !(await this.store.exists(version))) throw new VersionNotFoundError(version);
        loaded = await this.versions.load(version);
      }
      if (loaded.retired) continue; // evicted while we waited; load it again
      const lease = this.versions.lease(loaded);
      this.evict(); // after taking the lease, so an eviction cannot unload it under us
      return lease;
    }
  }

  /**
   * Pins `version` for every replica and starts `canary` beside it, or ends any canary when none
   * is given (the request states the whole serving set-up). Both are loaded and warmed up here
   * first: a version that cannot be served is refused (409) and nothing changes.
   */
  async pin(version: number, canary?: Canary): Promise<ServingStatus> {
    if (canary?.version === version) throw new ServiceError('invalid', `canary.version: version ${version} is the one pinned; a canary is another version tried beside it`);
    for (const v of canary ? [version, canary.version] : [version]) {
      if (!(await this.store.exists(v))) throw new VersionNotFoundError(v);
      this.versions.forgetFailure(v);
    }
    await Promise.all([this.versions.load(version), canary && this.versions.load(canary.version)]);
    await this.pins.set(version);
    this.pinned = version;
    if (canary) await this.canaries.set(canary);
    else await this.canaries.clear();
    this.canary = canary;
    await this.refresh();
    return this.status();
  }

  /** Back to serving the version SERVING_POLICY chooses (a canary keeps its share). */
  async unpin(): Promise<ServingStatus> {
    await this.pins.clear();
    this.pinned = undefined;
    await this.refresh();
    return this.status();
  }

  /** Makes the canary the pinned, served version for every replica, and ends the canary. */
  async promoteCanary(): Promise<ServingStatus> {
    const canary = await this.canaries.get();
    if (!canary) throw new ServiceError('not-found', 'no canary is running: start one with PUT /v1/models/serving {"version": N, "canary": {"version": M, "fraction": 0.1}}');
    return this.pin(canary.version);
  }

  /** Ends the canary: every request goes to the served version again. */
  async endCanary(): Promise<ServingStatus> {
    await this.canaries.clear();
    this.canary = undefined;
    await this.refresh();
    return this.status();
  }

  dispose(): void {
    this.closed = true;
    this.versions.close();
    this.served = undefined;
  }
}
