import type { Logger } from 'pino';
import type { OnnxExport } from '../schemas/models.ts';
import type { ModelStore } from '../store/model-store.ts';

export interface OnnxBackfillDeps {
  store: ModelStore;
  /** Exports one version in a sandboxed child (see onnx-export-job.ts). */
  exportVersion: (version: number) => Promise<{ onnx?: Uint8Array; record: OnnxExport }>;
  /** Claims a version for this worker (a Redis SET NX with expiry), so workers starting together split the work. */
  claim: (version: number) => Promise<boolean>;
  /** Tells every API replica to look again once a version's model.onnx is in place. */
  announce?: (version: number) => Promise<void>;
  log: Logger;
  /** Stop between versions (the worker is shutting down). */
  signal?: AbortSignal;
}

/** Whether a version still needs its ONNX copy: none on disk, and no record of a failure that would repeat. */
export function needsOnnx(hasFile: boolean, record: OnnxExport | undefined): boolean {
  // 'unavailable' was this machine's or another's missing runtime, not the model's: try again.
  return !hasFile && (record === undefined || record.status === 'unavailable');
}

/**
 * Gives every version written before versions had a model.onnx its ONNX copy, newest first (the
 * served one is most likely among them). Started by every worker at start-up, in the background:
 * a version exports in seconds, and until then it is served by TF.js as before. Returns the versions
 * it wrote a record for.
 */
export async function backfillOnnx({ store, exportVersion, claim, announce, log, signal }: OnnxBackfillDeps): Promise<number[]> {
  const done: number[] = [];
  for (const version of await store.listVersions()) {
    if (signal?.aborted) break;
    const record = await store.readMetadata(version).then((m) => m.onnx, () => null);
    if (record === null || !needsOnnx(await store.hasOnnx(version), record)) continue; // deleted meanwhile, or nothing to do
    if (!(await claim(version))) continue;
    try {
      const result = await exportVersion(version);
      if (await store.addOnnx(version, result.onnx, result.record)) {
        done.push(version);
        log.info({ version, status: result.record.status, reason: result.record.reason, parity: result.record.parity }, 'ONNX copy of an older version');
        if (result.onnx) await announce?.(version).catch((err: Error) => log.warn({ err: err.message, version }, 'could not announce the ONNX copy; replicas find it when they next load the version'));
      }
    } catch (err) {
      log.warn({ err: (err as Error).message, version }, 'could not export an older version to ONNX; it stays on TF.js');
    }
  }
  return done;
}
