import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/**
 * A refusal the client can read. When the API answers before it has read the body (401, 403, 413,
 * 415, 429, any early answer), the answer goes out at once with `Connection: close`; Node would
 * then close the socket while the client is still writing its body, the kernel answers the unread
 * bytes with a reset, and a client that writes its whole body before reading (Python's urllib and
 * requests, curl without Expect) sees "connection reset" instead of the answer. As nginx's
 * lingering close does, the socket is instead half-closed (our side ends, the answer is complete)
 * and the rest of the body read and thrown away, until the client has sent it all, or `maxBytes`
 * more have arrived, or `maxMs` have passed; then the socket is destroyed. Nothing is buffered.
 */
export interface DrainBounds {
  /** The most bytes of a refused body read and discarded (REFUSED_BODY_DRAIN_BYTES). */
  maxBytes: number;
  /** The longest a refused body is read and discarded (REFUSED_BODY_DRAIN_MS). */
  maxMs: number;
}

/** Sockets being drained, so that closing the app does not wait for their bounds. */
type Draining = Set<Socket>;

/**
 * One refused request's drain. Discarding starts as soon as the answer is decided (`discard`):
 * Node drops, unseen, the body of a request nobody reads once its answer is out, so the bytes could
 * not be counted after it. The lingering starts once the answer is written (`linger`, in place of
 * Node's destroySoon): our side ends, and the socket is destroyed when the client has sent its whole
 * body (once the answer is flushed: no unread bytes, so no reset), or past either bound.
 */
class Drain {
  private discarded = 0;
  private discarding = false;
  private lingering = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly socket: Socket,
    private readonly req: IncomingMessage | undefined,
    private readonly bounds: DrainBounds,
    private readonly draining: Draining,
  ) {}

  /** Reads the rest of the body into nothing, counting it. Whoever was reading it (a parser, busboy) has given up. */
  discard(): void {
    const { req } = this;
    if (this.discarding || !req || req.complete) return;
    this.discarding = true;
    req.unpipe();
    req.removeAllListeners('data');
    req.on('data', (chunk: Buffer | string) => {
      this.discarded += chunk.length;
      if (this.discarded <= this.bounds.maxBytes) return;
      req.pause(); // past the byte bound: nothing more is read
      if (this.lingering) this.cutOff();
    });
    req.once('end', () => this.lingering && this.closeWhenFlushed());
    req.on('error', () => undefined); // the client going away mid-body is expected here
    req.resume();
  }

  /** Half-closes the socket now (the answer is complete), and closes it within the bounds. */
  linger(): void {
    const { socket, req } = this;
    if (this.lingering || socket.destroyed) return;
    this.lingering = true;
    this.draining.add(socket);
    this.timer = setTimeout(() => this.cutOff(), this.bounds.maxMs);
    this.timer.unref();
    socket.once('close', () => this.forget());
    if (socket.writable) socket.end(); // a FIN after the answer tells the client it is complete
    this.discard();
    if (!req || req.readableEnded || req.complete) this.closeWhenFlushed();
    else if (this.discarded > this.bounds.maxBytes) this.cutOff();
  }

  private forget(): void {
    clearTimeout(this.timer);
    this.draining.delete(this.socket);
  }

  /** Past a bound: destroy now, even with the answer unsent (a client that reads nothing must not hold the socket). */
  private cutOff(): void {
    this.forget();
    this.socket.destroy();
  }

  /** The client sent its whole body: close as Node would have, once the answer is flushed. */
  private closeWhenFlushed(): void {
    if (this.socket.writableFinished) this.cutOff();
    else this.socket.once('finish', () => this.cutOff());
  }
}

/** Half-closes `socket` now, discards what still arrives of `req`'s body within `bounds`, then destroys it. */
export function lingerThenClose(socket: Socket, req: IncomingMessage | undefined, bounds: DrainBounds, draining: Draining): void {
  new Drain(socket, req, bounds, draining).linger();
}

/** The sockets being drained, and each socket's latest request: shared by the hooks and the request timeout. */
export interface LingeringClose {
  bounds: DrainBounds;
  draining: Draining;
  requestOf: WeakMap<Socket, IncomingMessage>;
}

export function lingeringClose(bounds: DrainBounds): LingeringClose {
  return { bounds, draining: new Set(), requestOf: new WeakMap() };
}

/**
 * The hooks: an `onRequest` that remembers each socket's current request (for the request timeout,
 * which Node reports by socket), and an `onSend` that, for an answer sent while the request's body
 * is still arriving, adds `Connection: close` and makes Node's close of that socket a lingering
 * one. Node closes a `Connection: close` response's socket with `socket.destroySoon()` once the
 * response is written; that one socket's destroySoon is replaced. Sockets of `inject` (no
 * destroySoon) are left alone.
 */
export function registerLingeringClose(app: FastifyInstance, state: LingeringClose): void {
  const { bounds, draining, requestOf } = state;
  app.addHook('onRequest', async (req: FastifyRequest) => {
    const socket = req.raw.socket as Socket | null;
    if (socket) requestOf.set(socket, req.raw);
  });

  app.addHook('onSend', async (req: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    const socket = req.raw.socket as (Socket & { destroySoon?: () => void }) | null;
    if (!socket || typeof socket.destroySoon !== 'function' || req.raw.complete) return payload;
    reply.header('connection', 'close');
    const drain = new Drain(socket, req.raw, bounds, draining);
    drain.discard();
    socket.destroySoon = () => drain.linger();
    return payload;
  });

  // Closing the app (shutdown, tests) does not wait out the drains: their answers are long sent.
  app.addHook('preClose', async () => {
    for (const socket of draining) socket.destroy();
    draining.clear();
  });
}
