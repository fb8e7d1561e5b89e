import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { ServiceError } from '../../errors.ts';

/** The web page's files: plain HTML, CSS and ES modules, served as they are (no build step). */
export const WEB_DIR = fileURLToPath(new URL('../../../web/', import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

// Everything the page needs comes from here; nothing from elsewhere runs, even if injected.
const CSP = [
  "default-src 'self'",
  "img-src 'self'",
  "style-src 'self'",
  "script-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

/**
 * Reads the page's files once at start-up. Only names found here are ever served, so a request
 * path is a key into this map and never becomes a file path (no traversal to guard against).
 */
export async function loadWebAssets(dir = WEB_DIR): Promise<Map<string, Asset>> {
  const assets = new Map<string, Asset>();
  const entries = await readdir(dir, { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  for (const entry of entries) {
    const type = CONTENT_TYPES[extname(entry.name)];
    if (!entry.isFile() || !type || !/^\w[\w.-]*$/.test(entry.name)) continue;
    const body = await readFile(join(dir, entry.name));
    assets.set(entry.name, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` });
  }
  return assets;
}

function send(req: FastifyRequest, reply: FastifyReply, asset: Asset) {
  // Files change with a deploy but keep their names, so browsers revalidate every time (cheap: 304).
  reply.header('cache-control', 'no-cache').header('etag', asset.etag).header('x-content-type-options', 'nosniff');
  if (asset.type.startsWith('text/html')) reply.header('content-security-policy', CSP).header('referrer-policy', 'no-referrer');
  if (req.headers['if-none-match'] === asset.etag) return reply.status(304).send();
  return reply.type(asset.type).send(asset.body);
}

const notFound = (what: string) => new ServiceError('not-found', what);

export const uiRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const assets = await loadWebAssets();
  if (!assets.has('index.html')) app.log.warn({ dir: WEB_DIR }, 'web page files not found; GET / will answer 404');

  app.get('/', { schema: { hide: true } }, async (req, reply) => {
    const index = assets.get('index.html');
    if (!index) throw notFound(`the web page is not installed (no index.html in ${WEB_DIR}); the API is at /docs`);
    return send(req, reply, index);
  });

  app.get('/ui/:file', { schema: { hide: true, params: Type.Object({ file: Type.String({ maxLength: 100 }) }) } }, async (req, reply) => {
    const asset = assets.get(req.params.file);
    if (!asset) throw notFound(`no such file: /ui/${req.params.file}`);
    return send(req, reply, asset);
  });
};
