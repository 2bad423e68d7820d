/**
 * Writing large responses without starving the rest of the connection.
 *
 * Handing node:http2 a whole 100 MiB response at once parks it in nghttp2's per-session
 * memory until the peer's flow-control window lets it out; past maxSessionMemory nghttp2
 * then refuses every new stream of that connection (RST_STREAM ENHANCE_YOUR_CALM), so one
 * big range stalls a client's watches and small requests. grpc-go (etcd) writes a message
 * in pieces as the window allows. Here a large message goes out in chunks of
 * maxChunkBytes: the next chunk is written only once the previous one left the stream's
 * buffer ('drain'), so a stream holds at most one chunk (maxStreamBufferedBytes) and a
 * connection at most maxSessionBufferedBytes across its streams; other streams keep
 * being served meanwhile, and a slow reader only slows its own responses.
 */
import type { H2Session, H2Stream } from './transport.js';

/** Responses up to this size are written in one go; larger ones in pieces of this size. */
export const maxChunkBytes = 64 * 1024;
/** Bytes written to one connection by paced writes and not yet handed to the socket. */
export const maxSessionBufferedBytes = 8 * 1024 * 1024;

/** Per-connection count of paced bytes in flight, with the streams waiting for room. */
class SessionBudget {
  bufferedBytes = 0;
  /** Bounded by the connection's open streams: each waits for at most one chunk. */
  private readonly waiters: Array<() => void> = [];

  async reserve(bytes: number, stream: H2Stream): Promise<void> {
    while (this.bufferedBytes + bytes > maxSessionBufferedBytes && this.bufferedBytes > 0 && !stream.destroyed) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    this.bufferedBytes += bytes;
  }

  release(bytes: number): void {
    this.bufferedBytes -= bytes;
    const w = this.waiters.splice(0);
    for (const wake of w) wake();
  }
}

const budgets = new WeakMap<H2Session, SessionBudget>();

function budgetOf(session: H2Session): SessionBudget {
  let b = budgets.get(session);
  if (b === undefined) {
    b = new SessionBudget();
    budgets.set(session, b);
    // Streams waiting for room on a connection that goes away must not wait forever.
    session.once('close', () => b!.release(0));
  }
  return b;
}

/** Resolves once the stream's buffer drained or the stream is gone. */
function drained(stream: H2Stream): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => { stream.off('drain', done); stream.off('close', done); resolve(); };
    stream.on('drain', done);
    stream.on('close', done);
  });
}

/**
 * Writes `buf` to the stream in paced chunks. Resolves true once all of it is written,
 * false if the stream ended or closed first (the caller then writes nothing more).
 */
export async function writePaced(stream: H2Stream, buf: Buffer): Promise<boolean> {
  const session = stream.session;
  if (session === undefined) return false;
  const budget = budgetOf(session);
  // Our bytes still counted in the budget. Returned by each write's callback, or all at once
  // when the stream closes (a destroyed stream need not call back for data nghttp2 dropped).
  let inFlight = 0;
  const giveBack = (bytes: number): void => {
    const n = Math.min(bytes, inFlight);
    inFlight -= n;
    budget.release(n);
  };
  stream.once('close', () => giveBack(inFlight));
  for (let off = 0; off < buf.length; off += maxChunkBytes) {
    const part = buf.subarray(off, off + maxChunkBytes);
    await budget.reserve(part.length, stream);
    inFlight += part.length;
    if (stream.destroyed || stream.writableEnded) { giveBack(part.length); return false; }
    const more = stream.write(part, () => giveBack(part.length));
    if (!more) await drained(stream);
  }
  return !stream.destroyed && !stream.writableEnded;
}
