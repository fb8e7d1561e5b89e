import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config.ts';
import { ServiceError, type ErrorKind } from '../errors.ts';
import { bodyTooLargeMessage } from './body-limit.ts';
import { isRedisConnectionError, REDIS_RETRY_AFTER_SECONDS } from '../redis/connection.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** What a route's body may be, in words: the hint of its 415 answer (application/json when absent). */
    accepts?: string;
  }
}

/** The one place a kind of failure becomes an HTTP status. */
export const STATUS_OF_KIND: Record<ErrorKind, number> = {
  invalid: 400,
  unsupported: 415,
  'too-large': 413,
  'not-found': 404,
  conflict: 409,
  unavailable: 503,
  busy: 429,
  'insufficient-storage': 507,
};

/**
 * One error handler. The service's own errors (ServiceError) answer with their kind's status and
 * message: they say what to do instead. Fastify's (validation, body limits) keep theirs. Anything
 * else is a bug: a generic 500 and a log line. A request that failed because Redis is away (the
 * job endpoints) is a 503 with `Retry-After`: nothing the client did wrong, and it works again
 * once the connection is back.
 */
export function errorHandler(err: FastifyError, req: FastifyRequest, reply: FastifyReply) {
  const known = err instanceof ServiceError;
  if (!known && !err.validation && (err.statusCode === undefined || err.statusCode === 500) && redisIsAway(err, req)) {
    req.log.warn({ err: err.message }, 'Redis unavailable; answered 503');
    return reply
      .status(503)
      .header('retry-after', String(REDIS_RETRY_AFTER_SECONDS))
      .send({ statusCode: 503, error: STATUS_CODES[503], message: 'the job queue (Redis) is unavailable; try again shortly' });
  }
  let statusCode = known ? STATUS_OF_KIND[err.kind] : err.validation ? 400 : (err.statusCode ?? 500);
  if (statusCode < 400 || statusCode > 599) statusCode = 500;
  const tellClient = known || statusCode < 500;
  if (!tellClient) req.log.error({ err }, 'request failed');
  let message = tellClient ? err.message : 'internal server error';
  if (known && err.retryAfterSeconds !== undefined) reply.header('retry-after', String(err.retryAfterSeconds));
  // Fastify's own 413 names no number; say the limit and its setting, as the Content-Length check does.
  if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    const config = (req.server as { services?: { config?: Config } }).services?.config;
    if (config) message = bodyTooLargeMessage(req, config);
  }
  // Fastify's own 415 names only the type it got; say what the route takes instead.
  if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') message = `${req.headers['content-type'] ?? 'no content type'} is not accepted here; send ${req.routeOptions.config.accepts ?? 'application/json'}`;
  return reply.status(statusCode).send({ statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message });
}

/** The error says Redis could not be reached, or it happened while the API's Redis connection is down. */
function redisIsAway(err: Error, req: FastifyRequest): boolean {
  if (isRedisConnectionError(err)) return true;
  const status = (req.server as { services?: { redis?: { status?: string } } }).services?.redis?.status;
  return status !== undefined && status !== 'ready';
}
