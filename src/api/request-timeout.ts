import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyServerOptions } from 'fastify';
import { lingerThenClose, type LingeringClose } from './lingering-close.ts';

/**
 * The whole request, headers and body, must arrive within REQUEST_TIMEOUT_MS: a client trickling a
 * body otherwise holds a socket and a parser for as long as it likes. Node enforces the timeout
 * (server.requestTimeout), checking its connections every `connectionsCheckingInterval`, and
 * reports an expired one as a client error; what it, and Fastify's default handler, then do is
 * write a bare 408 and destroy the socket at once, so a client still writing is more likely to see
 * a reset than the answer. Here the 408 is an answer like the others: JSON, `Connection: close`,
 * and a lingering close within the drain bounds.
 */

/** How often Node looks for expired requests: a fraction of the timeout, so that it fires close to on time. */
export function connectionsCheckingInterval(timeoutMs: number): number {
  return Math.max(100, Math.min(1000, Math.floor(timeoutMs / 4)));
}

/** The server options for the request timeout: Fastify's own (it sets them on the server it makes) and Node's. */
export function requestTimeoutOptions(timeoutMs: number): Pick<FastifyServerOptions, 'requestTimeout'> & { http: { requestTimeout: number; headersTimeout: number; connectionsCheckingInterval: number } } {
  return {
    requestTimeout: timeoutMs,
    http: {
      requestTimeout: timeoutMs,
      // Node's own rule (and default): the headers within a minute, and never more than the whole request.
      headersTimeout: Math.min(60_000, timeoutMs),
      connectionsCheckingInterval: connectionsCheckingInterval(timeoutMs),
    },
  };
}

/** An error that fails the reading of a body past its time: readers (Fastify's parsers, busboy) pass its statusCode on. */
export class RequestTimeoutError extends Error {
  readonly statusCode = 408;
  readonly code = 'REQUEST_TIMEOUT';
  constructor(timeoutMs: number) {
    super(`the request did not arrive within ${timeoutMs} ms (REQUEST_TIMEOUT_MS); send it faster, or in smaller requests`);
  }
}

function rawAnswer(statusCode: number, message: string, close: boolean): string {
  const body = JSON.stringify({ statusCode, error: STATUS_CODES[statusCode], message });
  return `HTTP/1.1 ${statusCode} ${STATUS_CODES[statusCode]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${close ? 'Connection: close\r\n' : ''}\r\n${body}`;
}

/**
 * Fastify's `clientErrorHandler`. A request timeout whose body is being read fails that reading
 * with a 408, so the route answers it (with its request id and log line, then the lingering close
 * of any refusal); one that nothing reads (or whose headers never finished) gets a 408 written
 * here, then the lingering close. Either way the socket is gone `maxMs` after the timeout. Other
 * client errors (malformed HTTP, headers too large) are answered as Fastify does, and closed.
 */
export function clientErrorHandler(state: LingeringClose, timeoutMs: number) {
  const timedOut = new WeakSet<Socket>();
  return (err: NodeJS.ErrnoException, socket: Socket): void => {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    if (err.code !== 'ERR_HTTP_REQUEST_TIMEOUT') {
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
      if (socket.writable) socket.write(rawAnswer(status, status === 431 ? 'the request headers are too large' : 'the request is not valid HTTP', true));
      socket.destroy(err);
      return;
    }
    // Node reports an expired request on every check until the socket is gone: act once.
    if (timedOut.has(socket)) return;
    timedOut.add(socket);
    setTimeout(() => socket.destroy(), state.bounds.maxMs).unref();
    if (state.draining.has(socket) || !socket.writable) return; // answered already and draining: its own bounds apply

    // Node's own check: an answer already on its way cannot have a 408 written into it.
    if ((socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent) {
      socket.destroy();
      return;
    }
    const current = state.requestOf.get(socket);
    const req = current && !current.complete ? current : undefined;
    const error = new RequestTimeoutError(timeoutMs);
    if (req && req.listenerCount('error') > 0) {
      req.emit('error', error);
      return;
    }
    socket.write(rawAnswer(408, error.message, true));
    lingerThenClose(socket, req, state.bounds, state.draining);
  };
}
