import { loadConfig } from './config.ts';
import { createLogger } from './logger.ts';
import { initBackend } from './ml/backend.ts';
import { startWorker } from './worker/start-worker.ts';

// Entry point of a training worker process (`npm run start:worker`).
const config = loadConfig();
const log = createLogger('worker', config.LOG_LEVEL);
const backend = await initBackend(config.TF_BACKEND, log);
const running = await startWorker(config, log, backend.name as 'tensorflow' | 'wasm' | 'cpu');

let closing = false;
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    if (closing) return;
    closing = true;
    log.info({ signal: sig }, 'worker shutting down; waiting for the running job');
    running.close().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, 'error while shutting down');
        process.exit(1);
      },
    );
  });
}
