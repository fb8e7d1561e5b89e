import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { loadConfig } from '../config.ts';
import { buildApp } from './app.ts';
import type { ApiServices } from './services.ts';

export const OPENAPI_FILE = fileURLToPath(new URL('../../openapi/openapi.json', import.meta.url));

/** The OpenAPI document the routes describe; building the app needs no Redis, model or backend. */
export async function openapiSpec(): Promise<unknown> {
  return (await describeApi()).spec;
}

/**
 * The document (as built, and as GET /openapi.json serves it) and the routes it should describe: every route the app registers, but HEAD and the
 * ones hidden from it (the web page's files, the document itself), as `METHOD /openapi/{path}`.
 */
export async function describeApi(): Promise<{ spec: unknown; served: unknown; routes: string[] }> {
  const services = { config: loadConfig({}) } as ApiServices; // routes are registered, never called
  const app = await buildApp(services, { loggerInstance: pino({ level: 'silent' }) });
  await app.ready();
  const spec = app.swagger();
  const served: unknown = (await app.inject({ url: '/openapi.json' })).json();
  const routes = app.publicRoutes.map((r) => `${r.method} ${r.url.replace(/:(\w+)/g, '{$1}')}`);
  await app.close();
  return { spec, served, routes };
}
