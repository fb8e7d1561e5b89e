import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';

/** Where `npm start`'s own Redis keeps its data (append-only file), beside the code. */
export const PRIVATE_REDIS_DIR = fileURLToPath(new URL('../../.redis/', import.meta.url));
const START_TIMEOUT_MS = 5000;

interface Log {
  info: (obj: object, msg: string) => void;
}

async function answers(url: string): Promise<boolean> {
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000 });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

/**
 * For `npm start` (and `npm test`) on a fresh machine: the Redis at `url` if one answers;
 * otherwise, when the URL is on this machine and `redis-server` is installed, a private one started
 * on the URL's port with its data in `opts.dir` (default `.redis/`, AOF on so queued jobs survive a
 * restart), stopped by the returned function. Throws with what to do when neither is possible.
 */
export async function ensureRedis(url: string, log: Log, opts: { dir?: string; persist?: boolean } = {}): Promise<{ stop: () => Promise<void> }> {
  if (await answers(url)) return { stop: async () => {} };
  const { hostname, port } = new URL(url);
  const local = ['127.0.0.1', 'localhost', '::1', '[::1]'].includes(hostname);
  const installed = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
  if (!local || !installed) {
    throw new Error(
      `no Redis answers at ${url}: ${local ? 'install redis-server (e.g. `apt install redis-server`; npm start then runs its own), ' : ''}run one with \`docker compose up -d redis\`, or set REDIS_URL`,
    );
  }
  const dir = opts.dir ?? PRIVATE_REDIS_DIR;
  const persist = opts.persist ?? true;
  mkdirSync(dir, { recursive: true });
  const args = ['--port', port || '6379', '--bind', '127.0.0.1', '--dir', dir, '--appendonly', persist ? 'yes' : 'no', '--save', '', '--logfile', 'redis.log'];
  const server: ChildProcess = spawn('redis-server', args, { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!(await answers(url))) {
    if (server.exitCode !== null || Date.now() > deadline) {
      server.kill('SIGKILL');
      throw new Error(`could not start redis-server on port ${port || 6379} (see ${join(dir, 'redis.log')}); start a Redis yourself or set REDIS_URL`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  log.info({ redisUrl: url, dir, persist }, `no Redis answered, so started a private redis-server (data in ${dir}${persist ? ', AOF on' : ', kept in memory only'})`);
  return {
    stop: async () => {
      server.kill('SIGTERM'); // Redis flushes its append-only file and exits
      await exited;
    },
  };
}
