import { pathToFileURL } from 'node:url';
import type { Logger } from 'pino';
import { loadConfigOrExit } from './config.ts';
import { createApi, type RunningApi } from './api/start-api.ts';
import { createLogger } from './logger.ts';
import { assertRedisReachable } from './redis/connection.ts';

// Entry point of an API process (`npm run start:api`); `npm start` runs this plus one worker.
export async function startApiProcess(): Promise<() => Promise<void>> {
  const config = loadConfigOrExit();
  const log = createLogger('api', config.LOG_LEVEL);
  await assertRedisReachable(config.REDIS_URL, log);
  const api = await createApi(config, log);
  await api.app.listen({ port: config.PORT, host: config.HOST });
  log.info({ docs: `http://${config.HOST}:${config.PORT}/docs` }, 'API ready');
  return () => drain(api, config.API_SHUTDOWN_TIMEOUT_MS, log);
}

/** How often, while draining, connections whose last request has finished are closed. */
const REAP_IDLE_MS = 100;

/**
 * Graceful stop (SIGTERM): no new connections; requests in flight finish, while a new request on a
 * kept-alive connection gets 503 with `Connection: close` (Fastify's return503OnClosing), so a load
 * balancer retries it elsewhere; event streams are closed without their `end` event, so EventSource
 * reconnects (to another replica); then Redis and the inference threads. Rejects after `timeoutMs`.
 */
async function drain(api: RunningApi, timeoutMs: number, log: Logger): Promise<void> {
  log.info({ timeoutMs }, 'API shutting down: no new connections; finishing the requests in flight');
  // Node closes the connections idle when the server closes; a kept-alive one whose request finishes
  // later would otherwise hold close() open until its keep-alive timeout.
  const reap = setInterval(() => api.app.server.closeIdleConnections(), REAP_IDLE_MS);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`requests still in flight after API_SHUTDOWN_TIMEOUT_MS=${timeoutMs}`)), timeoutMs);
  });
  try {
    await Promise.race([api.close(), timedOut]);
    log.info('API stopped');
  } catch (err) {
    log.error({ err: (err as Error).message }, 'API shutdown did not finish; exiting anyway');
    throw err;
  } finally {
    clearInterval(reap);
    clearTimeout(timer);
  }
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
