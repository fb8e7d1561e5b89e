import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startApiProcess } from './api.ts';
import { loadConfigOrExit } from './config.ts';
import { createLogger } from './logger.ts';
import { ensureRedis } from './redis/private-server.ts';
import { siblingModule } from './ts-worker.ts';

// `npm start`: the API in this process and one training worker as a child process, restarted if it
// dies. In production run them separately (`start:api`, `start:worker`) and scale each on its own.
const WORKER_ENTRY = fileURLToPath(siblingModule('./worker', import.meta.url));
const RESTART_DELAY_MS = 2000;

let worker: ChildProcess | undefined;
let stopping = false;

function startWorker(): void {
  worker = fork(WORKER_ENTRY, [], { execArgv: process.execArgv, stdio: 'inherit' });
  worker.on('exit', (code, signal) => {
    worker = undefined;
    if (stopping) return;
    console.error(`worker exited (code ${code}, signal ${signal}); restarting in ${RESTART_DELAY_MS} ms`);
    setTimeout(startWorker, RESTART_DELAY_MS).unref();
  });
}

const config = loadConfigOrExit();
const redis = await ensureRedis(config.REDIS_URL, createLogger('main', config.LOG_LEVEL)).catch((err: Error) => {
  process.stderr.write(`mnist-service: ${err.message}\n`);
  process.exit(1);
});
const closeApi = await startApiProcess();
startWorker();

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    const workerExit = worker ? new Promise((r) => worker!.once('exit', r)) : Promise.resolve();
    worker?.kill('SIGTERM');
    Promise.all([closeApi(), workerExit])
      .finally(() => redis.stop())
      .then(() => process.exit(0), () => process.exit(1));
  });
}
