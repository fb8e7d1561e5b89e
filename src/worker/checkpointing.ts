import { join, resolve } from 'node:path';
import type { Config } from '../config.ts';
import { CheckpointError, encodeCheckpoint, restoreCheckpoint, type Checkpointer } from '../ml/checkpoint.ts';
import type { TrainPosition } from '../ml/train.ts';
import type { JobData } from '../queue/job-data.ts';
import { CheckpointStore } from '../store/checkpoint-store.ts';

/** `CHECKPOINTS_DIR`, or `.checkpoints` in the models volume (shared by every worker, so any can resume a job). */
export function checkpointsDir(config: Pick<Config, 'CHECKPOINTS_DIR' | 'modelsDir'>): string {
  return config.CHECKPOINTS_DIR ? resolve(config.CHECKPOINTS_DIR) : join(config.modelsDir, '.checkpoints');
}

/** A checkpoint fits a job only if it was taken for the very same parameters. */
export function checkpointTag(params: JobData): string {
  return JSON.stringify(params);
}

/**
 * The checkpoints of one job, in its file of the store. A checkpoint that cannot be used (another
 * job's, a different model, a damaged file) is reported and ignored: the job starts afresh.
 */
export function jobCheckpointer(
  store: CheckpointStore,
  jobId: string,
  params: JobData,
  events: { onResume?: (position: TrainPosition) => void; onUnusable?: (reason: string) => void } = {},
): Checkpointer {
  const tag = checkpointTag(params);
  return {
    async restore(model) {
      const bytes = await store.read(jobId);
      if (!bytes) return undefined;
      try {
        const position = await restoreCheckpoint(model, bytes, tag);
        events.onResume?.(position);
        return position;
      } catch (err) {
        if (!(err instanceof CheckpointError)) throw err;
        events.onUnusable?.(err.message);
        return undefined;
      }
    },
    async save(model, position) {
      await store.write(jobId, await encodeCheckpoint(model, position, tag));
    },
  };
}

/** Job states after which a checkpoint is of no more use ('unknown': the job is gone). */
const DONE_STATES = new Set(['completed', 'failed', 'unknown']);

/**
 * Removes the checkpoints of jobs that have ended or gone (a worker died before removing one), and
 * temporary files of crashed writes. Returns the job ids whose checkpoint was removed.
 */
export async function sweepCheckpoints(store: CheckpointStore, jobState: (jobId: string) => Promise<string>): Promise<string[]> {
  await store.removeStaleTemp(60 * 60 * 1000);
  const removed: string[] = [];
  for (const jobId of await store.list()) {
    if (DONE_STATES.has(await jobState(jobId)) && (await store.remove(jobId))) removed.push(jobId);
  }
  return removed;
}
