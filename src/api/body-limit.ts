import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config.ts';
import { ServiceError } from '../errors.ts';

/**
 * One limit on the whole request body, whatever its content type: the route's `bodyLimit`
 * (UPLOAD_MAX_BYTES on the upload routes), else BODY_LIMIT_BYTES. Fastify's own parsers stop at it,
 * but @fastify/multipart reads the request itself and only bounds each part, so 40 parts of 5 MB
 * made a 200 MB request; and a route that does not read its body never looked at its size at all.
 *
 * Checked right after auth: from Content-Length at once (before any byte of the body is read), and
 * for a body without one (chunked) by counting the bytes as they arrive. A body that is not read
 * at all is discarded after the answer, within the lingering close's bounds (lingering-close.ts).
 */

/** Too large for the route: a ServiceError for the error handler, with the statusCode that @fastify/multipart and Fastify's parsers pass through. */
export class BodyTooLargeError extends ServiceError {
  readonly statusCode = 413;
  constructor(message: string) {
    super('too-large', message);
  }
}

/** What the limit is called in the configuration, so a 413 names the setting as well as the number. */
function settingOf(limit: number, config: Pick<Config, 'BODY_LIMIT_BYTES' | 'UPLOAD_MAX_BYTES'>): string {
  if (limit === config.UPLOAD_MAX_BYTES && limit !== config.BODY_LIMIT_BYTES) return ' (UPLOAD_MAX_BYTES)';
  if (limit === config.BODY_LIMIT_BYTES) return ' (BODY_LIMIT_BYTES)';
  return '';
}

/** The 413 message of a request over its route's limit. */
export function bodyTooLargeMessage(req: FastifyRequest, config: Pick<Config, 'BODY_LIMIT_BYTES' | 'UPLOAD_MAX_BYTES'>, limit = req.routeOptions.bodyLimit): string {
  const route = req.routeOptions.url ? `${req.method} ${req.routeOptions.url}` : 'this route';
  return `the request body is over ${limit} bytes, the most ${route} takes${settingOf(limit, config)}; send less per request`;
}

/** onRequest: a declared Content-Length over the limit is refused before the body is read. */
function checkDeclaredLength(config: Config) {
  return async (req: FastifyRequest, reply: FastifyReply) => {
    if (req.is404) return; // no route: its 404 says more than a 413 would
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > req.routeOptions.bodyLimit) {
      return reply.status(413).send(new BodyTooLargeError(bodyTooLargeMessage(req, config)));
    }
  };
}

/**
 * preParsing: for a multipart body without Content-Length (chunked), counts its bytes as they
 * arrive, on the request stream itself (@fastify/multipart reads that, not Fastify's payload
 * stream), and fails the reading with a 413 once over: busboy's reader gets it as an 'error' of the
 * stream, and the handler's error becomes the answer. Every other content type is read by one of
 * Fastify's buffering parsers (JSON, the images, ZIP), which count against the same limit; a
 * declared length was checked in onRequest, and Node's parser holds the body to it.
 */
function countMultipartBytes(config: Config) {
  return async (req: FastifyRequest, reply: FastifyReply, payload: NodeJS.ReadableStream) => {
    if (req.is404 || req.headers['content-length'] !== undefined || !/^\s*multipart\//i.test(req.headers['content-type'] ?? '')) return payload;
    const raw: IncomingMessage = req.raw;
    const limit = req.routeOptions.bodyLimit;
    let received = 0;
    const onData = (chunk: Buffer | string) => {
      received += chunk.length;
      if (received <= limit) return;
      raw.removeListener('data', onData);
      raw.pause(); // nothing more is read until the answer is out; then the lingering close discards a bounded rest
      const err = new BodyTooLargeError(bodyTooLargeMessage(req, config, limit));
      if (raw.listenerCount('error') > 0) raw.emit('error', err);
      else if (!reply.sent) void reply.status(413).send(err);
    };
    // A 'data' listener alone would start the stream flowing before the handler reads it, and the
    // bytes would be lost: pause first, and the reader's pipe() or resume() starts it.
    if (raw.readableFlowing === null) raw.pause();
    raw.on('data', onData);
    return payload;
  };
}

/** The whole-request body limit: one onRequest hook (register right after auth) and one preParsing hook. */
export function registerBodyLimit(app: FastifyInstance, config: Config): void {
  app.addHook('onRequest', checkDeclaredLength(config));
  app.addHook('preParsing', countMultipartBytes(config));
}
