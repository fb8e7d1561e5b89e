/**
 * What went wrong, in the service's own terms. Code below the API says which kind of failure it
 * is; the API answers each kind with one HTTP status (api/error-handler.ts) and passes the message
 * on, so a message must say what to send instead.
 */
export type ErrorKind =
  /** The input cannot be used: a malformed value, a reference to something that cannot serve. */
  | 'invalid'
  /** The input is of a kind the service does not read at all (not a PNG, another content type). */
  | 'unsupported'
  /** The input is over a documented limit. */
  | 'too-large'
  | 'not-found'
  /** The request contradicts the current state (a job that has already ended). */
  | 'conflict'
  /** Not now, but the same request will work later (no model yet, too many streams). */
  | 'unavailable'
  /** The service has more of this work waiting than it takes: come back later (Retry-After). */
  | 'busy'
  /** The service has no room to store what was sent (a storage quota is full): freeing space makes it work. */
  | 'insufficient-storage';

export class ServiceError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
    /** When the same request is worth sending again (the API's `Retry-After`), for kinds that say "later". */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = new.target.name;
  }
}
