import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { TRAINING_QUEUE } from '../../src/queue/names.ts';
import { REDIS_URL, waitFor } from './env.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** A worker process (`src/worker.ts`) in a process group of its own, so it dies with its training process as a machine crash would take both. */
export interface WorkerProc {
  name: string;
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Its training processes (children). */
  trainers: () => number[];
  /** SIGKILL to the worker and its training process at once. */
  crash: () => Promise<void>;
  stop: () => Promise<void>;
}

export function startWorkerProcess(name: string, env: Record<string, string>): WorkerProc {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/worker.ts'], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let log = '';
  const keep = (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-40000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const alive = () => child.exitCode === null && child.signalCode === null;
  const killGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      /* already gone */
    }
  };
  return {
    name,
    child,
    output: () => log,
    exited,
    trainers: () => childrenOf(child.pid!),
    crash: async () => {
      killGroup('SIGKILL');
      await exited;
    },
    stop: async () => {
      if (!alive()) return killGroup('SIGKILL'); // a trainer may outlive it for a moment
      child.kill('SIGTERM');
      const timer = setTimeout(() => killGroup('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
      killGroup('SIGKILL');
    },
  };
}

export function childrenOf(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  } catch {
    return []; // pgrep exits 1 when there are none
  }
}

/** Whether a process still runs (a zombie awaiting its reaper does not). */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) [ZX]/.test(stat);
  } catch {
    return false;
  }
}

/** BullMQ's own view of the jobs of a test's queue (who runs a job, how often it stalled). */
export function openQueue(prefix: string): { queue: Queue; close: () => Promise<void> } {
  const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const queue = new Queue(TRAINING_QUEUE, { connection, prefix });
  return {
    queue,
    close: async () => {
      await queue.close();
      connection.disconnect();
    },
  };
}

/** Waits until a worker process says it is ready to take jobs. */
export function workerReady(w: WorkerProc, timeoutMs = 60_000): Promise<boolean> {
  return waitFor(`worker ${w.name} to be ready`, async () => w.output().includes('worker ready'), timeoutMs).catch((err) => {
    throw new Error(`${err.message}\n--- ${w.name} ---\n${w.output()}`);
  });
}
