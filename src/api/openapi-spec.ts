import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { loadConfig } from '../config.ts';
import { buildApp } from './app.ts';
import type { ApiServices } from './services.ts';

export const OPENAPI_FILE = fileURLToPath(new URL('../../openapi/openapi.json', import.meta.url));

/** The OpenAPI document the routes describe; building the app needs no Redis, model or backend. */
export async function openapiSpec(): Promise<unknown> {
  const services = { config: loadConfig({}) } as ApiServices; // routes are registered, never called
  const app = await buildApp(services, { loggerInstance: pino({ level: 'silent' }) });
  await app.ready();
  const spec = app.swagger();
  await app.close();
  return spec;
}
