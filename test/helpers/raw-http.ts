import { connect, type Socket } from 'node:net';

/** What came back on a raw connection: the answer as parsed (if any), and how the connection ended. */
export interface RawOutcome {
  status?: number;
  headers: Record<string, string>;
  body: string;
  /** The socket error, if the connection ended with one (ECONNRESET, EPIPE). */
  error?: string;
  /** Whether every byte the client meant to send was handed to the kernel. */
  wroteAll: boolean;
  /** Milliseconds from the first byte of the answer to the connection's close (undefined without an answer). */
  closedAfterAnswerMs?: number;
  /** Milliseconds from the start to the close. */
  closedAfterMs: number;
}

function parse(bytes: Buffer): Pick<RawOutcome, 'status' | 'headers' | 'body'> {
  const text = bytes.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
  if (!m || end < 0) return { headers: {}, body: '' };
  const headers: Record<string, string> = {};
  for (const line of text.slice(0, end).split('\r\n').slice(1)) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(m[1]), headers, body: bytes.subarray(end + 4).toString('utf8') };
}

interface Session {
  socket: Socket;
  done: Promise<RawOutcome>;
  /** Marks the whole request as written (for `wroteAll`). */
  wrote: () => void;
}

/** Whether `bytes` hold a whole answer: its head and as much body as its Content-Length says. */
function complete(bytes: Buffer): boolean {
  const end = bytes.indexOf('\r\n\r\n');
  if (end < 0) return false;
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(bytes.subarray(0, end).toString('latin1'));
  return length !== null && bytes.length - (end + 4) >= Number(length[1]);
}

/**
 * A connection that records everything that comes back, until it closes (or `timeoutMs`); with
 * `untilAnswered`, until a whole answer has come (a kept-alive connection would stay open).
 */
function session(port: number, timeoutMs: number, { readAtOnce, untilAnswered }: { readAtOnce: boolean; untilAnswered: boolean }): Session {
  const started = Date.now();
  // Half-open allowed: a client keeps writing its body after the server's FIN, as Python's and curl's do.
  const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  if (!readAtOnce) socket.pause(); // as a client that reads nothing until it has written everything
  const chunks: Buffer[] = [];
  let answeredAt: number | undefined;
  let error: string | undefined;
  let wroteAll = false;
  socket.on('data', (d: Buffer) => {
    answeredAt ??= Date.now();
    chunks.push(d);
    if (untilAnswered && complete(Buffer.concat(chunks))) socket.destroy();
  });
  socket.on('error', (err: NodeJS.ErrnoException) => {
    error ??= err.code ?? err.message;
  });
  const timer = setTimeout(() => {
    error ??= 'client timeout';
    socket.destroy();
  }, timeoutMs);
  const done = new Promise<RawOutcome>((resolve) => {
    socket.on('close', () => {
      clearTimeout(timer);
      const closedAt = Date.now();
      resolve({ ...parse(Buffer.concat(chunks)), error, wroteAll, closedAfterMs: closedAt - started, closedAfterAnswerMs: answeredAt === undefined ? undefined : closedAt - answeredAt });
    });
  });
  return { socket, done, wrote: () => void (wroteAll = true) };
}

/**
 * Writes the whole request (`head` then `body`) before reading a byte of the answer, as Python's
 * urllib and requests do, then reads the answer.
 */
export function writeThenRead(port: number, head: string, body: Buffer, timeoutMs = 20_000): Promise<RawOutcome> {
  const s = session(port, timeoutMs, { readAtOnce: false, untilAnswered: true });
  s.socket.write(head);
  s.socket.write(body, (err) => {
    if (!err) s.wrote();
    s.socket.resume();
  });
  return s.done;
}

/** Writes `head`, then `chunk` every `everyMs` for as long as the connection lets it, reading the answer as it comes, until the server closes. */
export function trickle(port: number, head: string, chunk: Buffer, everyMs: number, timeoutMs = 20_000): Promise<RawOutcome> {
  const s = session(port, timeoutMs, { readAtOnce: true, untilAnswered: false });
  s.socket.write(head);
  const timer = setInterval(() => {
    if (s.socket.writable) s.socket.write(chunk);
  }, everyMs);
  return s.done.finally(() => clearInterval(timer));
}

/** Writes `head` (and any `body`) and reads the answer at once, without waiting for the body to be taken. */
export function sendAndRead(port: number, head: string, body?: Buffer, timeoutMs = 20_000): Promise<RawOutcome> {
  const s = session(port, timeoutMs, { readAtOnce: true, untilAnswered: true });
  s.socket.write(head);
  if (body) s.socket.write(body, () => s.wrote());
  return s.done;
}

/** A request head: the request line, Host, and `headers`. */
export function requestHead(method: string, path: string, headers: Record<string, string | number>): string {
  return `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
}
