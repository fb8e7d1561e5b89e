import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { LogController, type FastifyReply, type FastifyRequest } from 'fastify';
import { redactUrl } from '../logger.ts';

export const REQUEST_ID_HEADER = 'x-request-id';
/** A caller's id is kept if it is 1–128 printable ASCII characters (no spaces); otherwise the API makes one. */
const ACCEPTABLE_ID = /^[!-~]{1,128}$/;

/**
 * Every request has an id: the caller's `X-Request-Id` (a proxy's or a client's, so one id follows a
 * request across services) or a new UUID. It is on every log line of the request (as `requestId`,
 * the same key the worker uses for the job it queued) and in the response's `X-Request-Id`.
 */
export const requestIdOptions = {
  requestIdHeader: false as const,
  // One line per request, written when it is answered (logRequest), instead of Fastify's two.
  logController: new LogController({ requestIdLogLabel: 'requestId', disableRequestLogging: true }),
  genReqId: (req: IncomingMessage): string => {
    const given = req.headers[REQUEST_ID_HEADER];
    return typeof given === 'string' && ACCEPTABLE_ID.test(given) ? given : randomUUID();
  },
};

/** onRequest hook: the id goes back to the caller, on errors too. */
export async function echoRequestId(req: FastifyRequest, reply: FastifyReply): Promise<void> {
  reply.header(REQUEST_ID_HEADER, req.id);
}

/** Routes that answer thousands of times a second: their lines are `debug`, the rest `info`. */
const HIGH_VOLUME = new Set(['POST /v1/predict', 'GET /healthz', 'GET /readyz', 'GET /metrics']);

/**
 * onResponse hook: the request's one log line. The URL is redacted here rather than left to the
 * logger's serializers: a key a client put in the query string must not reach the log whatever
 * logger the app was given.
 */
export async function logRequest(req: FastifyRequest, reply: FastifyReply): Promise<void> {
  const level = HIGH_VOLUME.has(`${req.method} ${req.routeOptions.url}`) ? 'debug' : 'info';
  req.log[level]({ method: req.method, url: redactUrl(req.url), statusCode: reply.statusCode, responseTime: Math.round(reply.elapsedTime) }, 'request completed');
}
