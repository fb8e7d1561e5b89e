import { loadConfigOrExit } from './config.ts';
import { createLogger } from './logger.ts';
import { initBackend } from './ml/backend.ts';
import { startWorker } from './worker/start-worker.ts';

// Entry point of a training worker process (`npm run start:worker`).
const config = loadConfigOrExit();
const log = createLogger('worker', config.LOG_LEVEL);
const backend = await initBackend(config.TF_BACKEND, log);
const running = await startWorker(config, log, backend.name);

let closing = false;
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    if (closing) return;
    closing = true;
    // Running jobs checkpoint after their current batch and go back to the queue for any worker to resume.
    log.info({ signal: sig, timeoutMs: config.WORKER_SHUTDOWN_TIMEOUT_MS }, 'worker shutting down; checkpointing the running job');
    running.shutdown(config.WORKER_SHUTDOWN_TIMEOUT_MS).then(
      (clean) => {
        if (!clean) log.error({ timeoutMs: config.WORKER_SHUTDOWN_TIMEOUT_MS }, 'shutdown took too long; exiting (the job resumes from its last epoch checkpoint)');
        process.exit(clean ? 0 : 1);
      },
      (err) => {
        log.error({ err }, 'error while shutting down');
        process.exit(1);
      },
    );
  });
}
