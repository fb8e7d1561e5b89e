import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The suite runs compiled (scripts/test.ts): a process entry is then the .js beside it, run without tsx. */
const COMPILED = import.meta.url.endsWith('.js');

/** Node's arguments that run `entry` (a path like `src/api.ts`) as `npm run start:*` would. */
export function nodeArgs(entry: string): string[] {
  return COMPILED ? [entry.replace(/\.ts$/, '.js')] : ['--import', 'tsx', entry];
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export interface Proc {
  child: ChildProcess;
  output: () => string;
  stop: () => Promise<void>;
}

/** Starts `entry` as `npm run start:*` would, capturing its logs for failure messages. */
export function startProcess(entry: string, env: Record<string, string>): Proc {
  const child = spawn(process.execPath, nodeArgs(entry), { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const keep = (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-20000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  return {
    child,
    output: () => log,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
