import type { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { BackendPreference, InferenceEnginePreference } from '../config.ts';
import type { ModelFiles } from '../ml/model-files.ts';
import { siblingModule, startTsWorker } from '../ts-worker.ts';
import { ModelLoadError, type InferenceEngine, type ModelCall, type ModelHandle } from './engine.ts';
import type { FromPool, ToPool } from './inference-messages.ts';

const WORKER_ENTRY = siblingModule('./inference-worker', import.meta.url);
const START_TIMEOUT_MS = 30_000;
/** How long a close waits for a thread's calls to finish and its models to be released before it terminates the thread. */
const CLOSE_TIMEOUT_MS = 10_000;

function spawn(backend: BackendPreference, engine: InferenceEnginePreference): Worker {
  return startTsWorker(WORKER_ENTRY, { workerData: { backend, engine } });
}

interface Pending {
  resolve: (msg: ToPool) => void;
  reject: (err: Error) => void;
}

class PoolThread {
  readonly pending = new Map<number, Pending>();
  ready: Promise<void>;
  alive = true;
  /** It said 'ready': before that it holds no model, and a close need not wait for it. */
  private started = false;
  /** Resolved when the thread says it has finished its calls and released its models (see close()). */
  private onClosed?: () => void;

  constructor(
    readonly worker: Worker,
    onExit: (thread: PoolThread, err: Error) => void,
  ) {
    this.ready = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`inference worker did not start within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
      worker.on('message', (msg: ToPool) => {
        if (msg.type === 'ready') {
          clearTimeout(timer);
          this.started = true;
          resolve();
          return;
        }
        if (msg.type === 'closed') {
          this.onClosed?.();
          return;
        }
        const call = this.pending.get(msg.id);
        if (!call) return;
        this.pending.delete(msg.id);
        if (msg.type === 'failed') call.reject(new Error(msg.message));
        else call.resolve(msg);
      });
      const fail = (err: Error) => {
        clearTimeout(timer);
        reject(err);
        if (!this.alive) return;
        this.alive = false;
        for (const call of this.pending.values()) call.reject(err);
        this.pending.clear();
        onExit(this, err);
      };
      worker.on('error', fail);
      worker.on('exit', (code) => {
        this.onClosed?.();
        fail(new Error(`inference worker exited with code ${code}`));
      });
    });
  }

  /**
   * Lets the thread answer what it was sent and release its models, then terminates it. Not just
   * terminate(): ONNX Runtime aborts the whole process when a thread is terminated mid-run
   * ("terminate called after throwing an instance of 'Napi::Error'").
   */
  async close(log: Logger): Promise<void> {
    if (this.alive && this.started) {
      const closed = new Promise<boolean>((resolve) => {
        this.onClosed = () => resolve(true);
        setTimeout(() => resolve(false), CLOSE_TIMEOUT_MS).unref();
      });
      this.worker.postMessage({ type: 'close' } satisfies FromPool);
      if (!(await closed)) log.warn({ timeoutMs: CLOSE_TIMEOUT_MS }, 'inference worker did not finish its calls in time; terminating it');
    }
    await this.worker.terminate();
  }
}

/**
 * Inference on worker threads, so TensorFlow.js does not hold the API's event loop while it
 * computes: the API thread parses and answers requests while a worker runs the previous batch.
 * Every thread holds its own copy of each loaded version (a few hundred kB for these models); a
 * predict goes to the thread with the fewest calls in flight. A thread that dies fails its calls
 * and is replaced, with the loaded versions reloaded into the new one.
 */
export class InferencePool implements InferenceEngine {
  private threads: PoolThread[] = [];
  private readonly loaded = new Map<number, { version: number; files: ModelFiles }>();
  private nextId = 1;
  private closing = false;

  private constructor(
    private readonly size: number,
    private readonly backend: BackendPreference,
    private readonly engine: InferenceEnginePreference,
    private readonly log: Logger,
  ) {}

  static async start(size: number, backend: BackendPreference, log: Logger, engine: InferenceEnginePreference = 'auto'): Promise<InferencePool> {
    const pool = new InferencePool(size, backend, engine, log);
    pool.threads = Array.from({ length: size }, () => pool.startThread());
    try {
      await Promise.all(pool.threads.map((t) => t.ready));
    } catch (err) {
      await pool.close();
      throw err;
    }
    return pool;
  }

  get parallelism(): number {
    return this.size;
  }

  private startThread(): PoolThread {
    return new PoolThread(spawn(this.backend, this.engine), (thread, err) => {
      if (this.closing) return;
      this.log.error({ err }, 'inference worker died; starting another');
      const replacement = this.startThread();
      this.threads = this.threads.map((t) => (t === thread ? replacement : t));
      void replacement.ready
        .then(() => Promise.all([...this.loaded].map(([handle, { version, files }]) => this.loadInto(replacement, handle, version, files))))
        .catch((e: Error) => this.log.error({ err: e }, 'replacement inference worker failed to start'));
    });
  }

  private call(thread: PoolThread, msg: FromPool, transfer: ArrayBuffer[] = []): Promise<ToPool> {
    if (!thread.alive) return Promise.reject(new Error('inference worker is not running'));
    return new Promise((resolve, reject) => {
      thread.pending.set((msg as { id: number }).id, { resolve, reject });
      thread.worker.postMessage(msg, transfer);
    });
  }

  private async loadInto(thread: PoolThread, handle: number, version: number, files: ModelFiles): Promise<Extract<ToPool, { type: 'loaded' }>> {
    // Each thread gets its own copy of the files (a transfer would leave the others none; and
    // Buffer#slice would share memory, possibly Node's buffer pool).
    const weights = new Uint8Array(files.weights).buffer as ArrayBuffer;
    const onnx = files.onnx && (new Uint8Array(files.onnx).buffer as ArrayBuffer);
    const msg: FromPool = { type: 'load', id: this.nextId++, handle, version, modelJson: files.modelJson, weights, ...(onnx && { onnx }) };
    return (await this.call(thread, msg, onnx ? [weights, onnx] : [weights])) as Extract<ToPool, { type: 'loaded' }>;
  }

  async load(version: number, files: ModelFiles): Promise<ModelHandle> {
    const id = this.nextId++;
    let replies: Extract<ToPool, { type: 'loaded' }>[];
    try {
      replies = await Promise.all(this.threads.map((t) => this.loadInto(t, id, version, files)));
    } catch (err) {
      this.unload({ id, version, engine: 'tfjs' });
      throw new ModelLoadError((err as Error).message);
    }
    // Every thread runs the same code on the same files: they agree, but a version reports the
    // slower engine if one thread fell back.
    const engine = replies.some((r) => r.engine === 'tfjs') ? 'tfjs' : 'onnxruntime';
    const fallback = replies.find((r) => r.fallback)?.fallback;
    if (fallback) this.log.warn({ version, reason: fallback }, 'version has a model.onnx but runs on TF.js');
    this.loaded.set(id, { version, files });
    return { id, version, engine };
  }

  async predict(handle: ModelHandle, pixels: Uint8Array, count: number): Promise<ModelCall> {
    if (this.closing) throw new Error('the inference pool is closing');
    const live = this.threads.filter((t) => t.alive);
    if (live.length === 0) throw new Error('no inference worker is running');
    const thread = live.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    // The batch's own buffer moves to the worker; a view into a larger one is copied first.
    const buffer = pixels.byteOffset === 0 && pixels.byteLength === pixels.buffer.byteLength ? (pixels.buffer as ArrayBuffer) : (new Uint8Array(pixels).buffer as ArrayBuffer);
    const reply = await this.call(thread, { type: 'predict', id: this.nextId++, handle: handle.id, pixels: buffer, count }, [buffer]);
    const { probabilities, seconds } = reply as Extract<ToPool, { type: 'probabilities' }>;
    return { probabilities: new Float32Array(probabilities), seconds };
  }

  unload(handle: ModelHandle): void {
    this.loaded.delete(handle.id);
    for (const t of this.threads) if (t.alive) t.worker.postMessage({ type: 'unload', handle: handle.id } satisfies FromPool);
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.threads.map((t) => t.close(this.log)));
    this.threads = [];
    this.loaded.clear();
  }
}
