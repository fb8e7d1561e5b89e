import { pathToFileURL } from 'node:url';
import { loadConfig } from './config.ts';
import { createApi } from './api/start-api.ts';
import { createLogger } from './logger.ts';
import { initBackend } from './ml/backend.ts';
import { assertRedisReachable } from './queue/redis.ts';

// Entry point of an API process (`npm run start:api`); `npm start` runs this plus one worker.
export async function startApiProcess(): Promise<() => Promise<void>> {
  const config = loadConfig();
  const log = createLogger('api', config.LOG_LEVEL);
  await assertRedisReachable(config.REDIS_URL, log);
  await initBackend(config.TF_BACKEND, log);
  const api = await createApi(config, log);
  await api.app.listen({ port: config.PORT, host: config.HOST });
  log.info({ docs: `http://${config.HOST}:${config.PORT}/docs` }, 'API ready');
  return api.close;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const close = await startApiProcess();
  let closing = false;
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.on(sig, () => {
      if (closing) return;
      closing = true;
      close().then(() => process.exit(0), () => process.exit(1));
    });
  }
}
