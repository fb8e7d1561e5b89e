import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { trainingQueue, type TrainingQueue } from '../../src/queue/queues.ts';
import { processEnv, REDIS_URL, testConfig, waitFor } from './env.ts';
import { freePort, nodeArgs, startProcess, type Proc } from './processes.ts';

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
  const child = spawn(process.execPath, nodeArgs('src/worker.ts'), { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
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
export function openQueue(prefix: string): { queue: TrainingQueue; close: () => Promise<void> } {
  const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const queue = trainingQueue(connection, prefix);
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

/** A real API process and worker processes on a fresh Redis prefix and models directory, as the e2e tests need. */
export interface Cluster {
  base: string;
  modelsDir: string;
  prefix: string;
  api: Proc;
  workers: WorkerProc[];
  /** The environment the workers were started with, to start more like them. */
  workerEnv: Record<string, string>;
  /** JSON request to the API: its status and parsed body. */
  json: (path: string, init?: RequestInit) => Promise<{ status: number; body: any }>;
  /** Every worker's output, for failure messages. */
  logs: () => string;
  close: () => Promise<void>;
}

/** Starts the API and `workerNames.length` workers (`workerEnv` added to theirs) and waits until all are ready. */
export async function startCluster(workerEnv: Record<string, string> = {}, workerNames = ['a', 'b']): Promise<Cluster> {
  const { config, cleanup } = await testConfig();
  const port = await freePort();
  const env = processEnv(config, port);
  const api = startProcess('src/api.ts', env);
  const fullWorkerEnv = { ...env, ...workerEnv };
  const workers = workerNames.map((name) => startWorkerProcess(name, fullWorkerEnv));
  const base = `http://127.0.0.1:${port}`;
  const close = async () => {
    await Promise.all([api.stop(), ...workers.map((w) => w.stop())]);
    await cleanup();
  };
  try {
    await waitFor('the API to be ready', () => fetch(`${base}/readyz`).then((r) => r.ok, () => false), 60_000).catch((err: Error) => {
      throw new Error(`${err.message}\n--- api ---\n${api.output()}`);
    });
    await Promise.all(workers.map((w) => workerReady(w)));
  } catch (err) {
    await close();
    throw err;
  }
  return {
    base,
    modelsDir: config.modelsDir,
    prefix: config.QUEUE_PREFIX,
    api,
    workers,
    workerEnv: fullWorkerEnv,
    json: async (path, init) => {
      const res = await fetch(`${base}${path}`, init);
      return { status: res.status, body: await res.json() };
    },
    logs: () => workers.map((w) => `--- worker ${w.name} ---\n${w.output()}`).join('\n'),
    close,
  };
}
