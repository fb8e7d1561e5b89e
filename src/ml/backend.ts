import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { registerWasmKernels } from './kernels/index.ts';

import type { BackendName, BackendPreference } from '../config.ts';

export interface BackendChoice {
  name: BackendName;
  detail: string;
}

export interface BackendLogger {
  info: (obj: object, msg: string) => void;
}

type Candidate = 'tfjs-node-gpu' | 'tfjs-node' | 'wasm' | 'cpu';

const CANDIDATES: Record<BackendPreference, Candidate[]> = {
  auto: ['tfjs-node-gpu', 'tfjs-node', 'wasm', 'cpu'],
  tensorflow: ['tfjs-node-gpu', 'tfjs-node'],
  wasm: ['wasm'],
  cpu: ['cpu'],
};

class Skipped extends Error {}

type NativeApi = Record<string, unknown>;

/**
 * Imports a native package once per thread (it loads a shared library; a failure will not heal).
 * The specifier is a variable so TypeScript and bundlers do not look for a package that is
 * optional and usually absent.
 */
const nativeLoads = new Map<string, Promise<NativeApi>>();
function loadNative(pkg: 'tfjs-node-gpu' | 'tfjs-node'): Promise<NativeApi> {
  let load = nativeLoads.get(pkg);
  if (!load) {
    load = importNative(`@tensorflow/${pkg}`);
    nativeLoads.set(pkg, load);
  }
  return load;
}

async function importNative(specifier: string): Promise<NativeApi> {
  let mod: NativeApi;
  try {
    mod = (await import(specifier)) as NativeApi;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const missing = e.code === 'ERR_MODULE_NOT_FOUND' && e.message.includes(specifier);
    throw new Skipped(missing ? 'not installed' : `failed to load: ${firstLine(e.message)}`);
  }
  // A CommonJS package: module.exports is `default`; named exports exist only where Node's lexer found them.
  const api = (mod.default ?? mod) as NativeApi;
  adoptNativeBackend(api);
  return api;
}

function describeNative(pkg: string, api: NativeApi): string {
  const version = (api.version as Record<string, string> | undefined)?.['tfjs-node'];
  const lib = (tf.backend() as unknown as { binding?: { TF_Version?: string } }).binding?.TF_Version;
  return `@tensorflow/${pkg}${version ? ` ${version}` : ''}${lib ? ` (libtensorflow ${lib})` : ''}`;
}

/**
 * tfjs-node registers 'tensorflow' through its own `@tensorflow/tfjs` → tfjs-core import. Engine
 * and kernel registry normally live on globalThis and are shared with our copy, but if its copy
 * kept a private engine (a mismatched core version), the factory and kernels are copied into ours
 * so code importing '@tensorflow/tfjs-core' really runs on the native backend.
 */
function adoptNativeBackend(api: NativeApi): void {
  if (tf.findBackendFactory('tensorflow')) return;
  const theirEngine = typeof api.engine === 'function' ? (api.engine as typeof tf.engine)() : undefined;
  const entry = theirEngine?.registryFactory.tensorflow;
  if (!entry) throw new Skipped('loaded, but registered no "tensorflow" backend');
  const kernels = typeof api.getKernelsForBackend === 'function' ? (api.getKernelsForBackend as typeof tf.getKernelsForBackend)('tensorflow') : [];
  for (const k of kernels) if (!tf.getKernel(k.kernelName, 'tensorflow')) tf.registerKernel(k);
  tf.registerBackend('tensorflow', entry.factory, entry.priority);
}

async function activate(name: string): Promise<void> {
  let ok: boolean;
  try {
    ok = await tf.setBackend(name);
  } catch (err) {
    throw new Skipped(firstLine((err as Error).message));
  }
  if (!ok) throw new Skipped(`tf.setBackend('${name}') failed to initialise it`);
  // A backend can register yet fail on first use (e.g. a CUDA build without a GPU driver).
  let probe: number;
  try {
    probe = tf.tidy(() => tf.add(tf.scalar(1), tf.scalar(2)).dataSync()[0]);
  } catch (err) {
    throw new Skipped(`initialised but cannot compute: ${firstLine((err as Error).message)}`);
  }
  if (probe !== 3) throw new Skipped(`initialised but computed 1 + 2 = ${probe}`);
}

async function tryCandidate(candidate: Candidate): Promise<BackendChoice> {
  switch (candidate) {
    case 'tfjs-node-gpu':
    case 'tfjs-node': {
      const api = await loadNative(candidate);
      await activate('tensorflow');
      return { name: 'tensorflow', detail: describeNative(candidate, api) };
    }
    case 'wasm': {
      const kernels = registerWasmKernels(); // before setBackend, which runs kernel setupFuncs
      await activate('wasm');
      const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
      return { name: 'wasm', detail: `wasm (XNNPACK, ${simd ? 'SIMD' : 'no SIMD'}, ${getThreadsCount()} thread) + project kernels ${kernels.join(', ')}` };
    }
    case 'cpu': {
      await activate('cpu');
      // The cpu backend prints a "install tfjs-node" banner on first write; the choice is logged already.
      (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
      return { name: 'cpu', detail: 'cpu (plain JavaScript, slow)' };
    }
  }
}

async function select(pref: BackendPreference, log?: BackendLogger): Promise<BackendChoice> {
  const skipped: string[] = [];
  for (const candidate of CANDIDATES[pref]) {
    try {
      const choice = await tryCandidate(candidate);
      if (skipped.length > 0) choice.detail += `; skipped ${skipped.join('; ')}`;
      log?.info({ backend: choice.name, detail: choice.detail }, 'tensorflow backend selected');
      return choice;
    } catch (err) {
      if (!(err instanceof Skipped)) throw err;
      skipped.push(`${candidate}: ${err.message}`);
      log?.info({ candidate, reason: err.message }, 'tensorflow backend candidate skipped');
    }
  }
  const hint = pref === 'tensorflow' ? ' (install @tensorflow/tfjs-node, or @tensorflow/tfjs-node-gpu with CUDA, or choose another backend)' : '';
  throw new Error(`no TensorFlow.js backend for preference '${pref}': ${skipped.join('; ')}${hint}`);
}

// Calls run one after another: two concurrent setBackend() calls could otherwise interleave.
let queue: Promise<unknown> = Promise.resolve();
let last: { pref: BackendPreference; choice: BackendChoice } | undefined;

/**
 * Chooses and activates the TensorFlow.js backend for this thread. 'auto' tries tfjs-node-gpu,
 * tfjs-node, wasm, cpu in that order; 'tensorflow' accepts only the native packages and throws if
 * neither loads. Safe to call again, with the same or another preference.
 */
export function initBackend(pref: BackendPreference, log?: BackendLogger): Promise<BackendChoice> {
  const run = queue.then(async () => {
    if (last?.pref === pref && tf.getBackend() === last.choice.name) return { ...last.choice };
    const choice = await select(pref, log);
    last = { pref, choice };
    return { ...choice };
  });
  queue = run.catch(() => undefined);
  return run;
}

/** The active backend's name, or null before any backend was initialised. */
export function currentBackendName(): BackendName | null {
  return last && tf.getBackend() === last.choice.name ? last.choice.name : null;
}

function firstLine(message: string): string {
  return message.split('\n', 1)[0];
}
