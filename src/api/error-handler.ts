import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { isRedisConnectionError, REDIS_RETRY_AFTER_SECONDS } from '../queue/redis.ts';

/**
 * One error handler: 4xx messages pass through (they tell the client what to fix), so do 503s the
 * service raises on purpose; any other 5xx becomes a generic message and a log line. A request that
 * failed because Redis is away (the job endpoints) is a 503 with `Retry-After`: nothing the client
 * did wrong, and it works again once the connection is back.
 */
export function errorHandler(err: FastifyError & { expose?: boolean }, req: FastifyRequest, reply: FastifyReply) {
  if (!err.validation && (err.statusCode === undefined || err.statusCode === 500) && redisIsAway(err, req)) {
    req.log.warn({ err: err.message }, 'Redis unavailable; answered 503');
    return reply
      .status(503)
      .header('retry-after', String(REDIS_RETRY_AFTER_SECONDS))
      .send({ statusCode: 503, error: STATUS_CODES[503], message: 'the job queue (Redis) is unavailable; try again shortly' });
  }
  let statusCode = err.validation ? 400 : (err.statusCode ?? 500);
  if (statusCode < 400 || statusCode > 599) statusCode = 500;
  const tellClient = statusCode < 500 || (statusCode === 503 && err.expose === true);
  if (statusCode >= 500) req.log.error({ err }, 'request failed');
  return reply.status(statusCode).send({
    statusCode,
    error: STATUS_CODES[statusCode] ?? 'Error',
    message: tellClient ? err.message : 'internal server error',
  });
}

/** The error says Redis could not be reached, or it happened while the API's Redis connection is down. */
function redisIsAway(err: Error, req: FastifyRequest): boolean {
  if (isRedisConnectionError(err)) return true;
  const status = (req.server as { services?: { redis?: { status?: string } } }).services?.redis?.status;
  return status !== undefined && status !== 'ready';
}

interface SchemaError {
  keyword: string;
  instancePath: string;
  message?: string;
  params: Record<string, unknown>;
}

/** Validation messages that name the field, including the one that should not be there. */
export function schemaErrorFormatter(errors: SchemaError[], dataVar: string): Error {
  const e = errors[0];
  const where = `${dataVar}${e.instancePath}`;
  const message =
    e.keyword === 'additionalProperties'
      ? `${where} has an unknown field '${String(e.params.additionalProperty)}'`
      : e.keyword === 'enum'
        ? `${where} must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`
        : `${where} ${e.message ?? 'is invalid'}`;
  return new Error(message);
}
