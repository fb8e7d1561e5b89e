import { writeFileSync } from 'node:fs';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * The URL of a module beside `base` (an `import.meta.url`), with base's own extension: `.ts` when
 * the service runs from source under tsx, `.js` when it runs compiled (as the test suite does). For
 * the entries of threads and child processes, which are files, not imports the compiler rewrites.
 */
export function siblingModule(relative: string, base: string): URL {
  return new URL(`${relative}${base.endsWith('.ts') ? '.ts' : '.js'}`, base);
}

/**
 * A worker thread running a TypeScript module like the rest of the service. tsx's loader hooks do
 * not reach worker threads through `--import` on Node 20, so a small bootstrap registers them in
 * the thread before importing the entry; a compiled (.js) entry starts directly.
 */
export function startTsWorker(entry: URL, options: WorkerOptions = {}): Worker {
  if (!entry.pathname.endsWith('.ts')) return new Worker(entry, options);
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); })`;
  return new Worker(boot, { ...options, eval: true });
}

/**
 * Names the calling thread (Linux keeps 15 characters in /proc/thread-self/comm), so `top -H` and
 * /proc/<pid>/task/<tid>/comm tell the API's inference and decode threads from V8's and libuv's,
 * which are all "node" on Node 20; bench:predict reads each one's CPU time by that name. A no-op
 * where there is no /proc.
 */
export function nameThisThread(name: string): void {
  try {
    writeFileSync('/proc/thread-self/comm', name.slice(0, 15));
  } catch {
    // not Linux: the thread keeps its name
  }
}
