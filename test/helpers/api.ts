import { pino } from 'pino';
import { createApi, type RunningApi } from '../../src/api/start-api.ts';
import type { Config } from '../../src/config.ts';
import { initBackend } from '../../src/ml/backend.ts';
import { testConfig } from './env.ts';

export interface TestApi extends RunningApi {
  config: Config;
}

/** The real app (real Redis, real model store in a temp dir) for `inject`; close() removes its keys and files. */
export async function startTestApi(env: Record<string, string> = {}): Promise<TestApi> {
  await initBackend('wasm');
  const { config, cleanup } = await testConfig(env);
  const api = await createApi(config, pino({ level: 'silent' }));
  return {
    ...api,
    config,
    close: async () => {
      await api.close();
      await cleanup();
    },
  };
}
