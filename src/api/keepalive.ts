/**
 * gRPC keepalive on the server side, as grpc-go runs it for etcd (--grpc-keepalive-*):
 *
 * - Liveness: every `intervalMs` the server PINGs the connection; no ACK within `timeoutMs`
 *   closes it. A client that vanished (power cut, a NAT that forgot it) stops holding its
 *   watch streams and memory: without this, nothing ever reads its connection again.
 * - Enforcement: a client may PING at most once per `minTimeMs` while it has streams, and
 *   at most once per two hours while it has none (grpc-go's PermitWithoutStream=false). More
 *   than two strikes and it gets GOAWAY ENHANCE_YOUR_CALM "too_many_pings" and is closed.
 *   A response from the server forgives past strikes, as in grpc-go.
 */
import type http2 from 'node:http2';

export interface KeepaliveOptions {
  /** --grpc-keepalive-min-time: the shortest interval a client may ping at (default 5 s). */
  minTimeMs: number;
  /** --grpc-keepalive-interval: how often the server pings (default 2 h). */
  intervalMs: number;
  /** --grpc-keepalive-timeout: how long it waits for the ACK (default 20 s). */
  timeoutMs: number;
}

export const defaultKeepalive: KeepaliveOptions = { minTimeMs: 5_000, intervalMs: 7_200_000, timeoutMs: 20_000 };

/** grpc-go's maxPingStrikes and defaultPingTimeout (the allowance with no active stream). */
const maxPingStrikes = 2;
const idlePingAllowanceMs = 7_200_000;
const enhanceYourCalm = 0xb;
/** A PING frame: 9-byte header and 8 bytes of payload. */
const pingAckBytes = 17;

/** Bytes written on the session's socket, when its socket can tell (a JS stream wrapper cannot). */
function bytesWritten(session: http2.ServerHttp2Session): number | undefined {
  const n = (session.socket as { bytesWritten?: unknown } | undefined)?.bytesWritten;
  return typeof n === 'number' ? n : undefined;
}

/** Where a stream finds its session's stream count when it closes (kept on the stream: its `session` is gone by then). */
const kStreamCount = Symbol('keepalive stream count');
interface StreamCount { active: number }
type CountedStream = http2.ServerHttp2Stream & { [kStreamCount]?: StreamCount };

/** One listener shared by every stream (`this` is the stream): no closure per request. */
function onCountedStreamClose(this: CountedStream): void {
  this[kStreamCount]!.active--;
}

/**
 * grpc-go's ping enforcement: a client PING within the allowance of the previous one is a
 * strike, more than maxPingStrikes of them is too many; a response from the server forgives.
 */
export class PingStrikes {
  private strikes = 0;
  private lastPingAt = -Infinity;

  constructor(private readonly minTimeMs: number) {}

  /** The server sent headers or data: grpc-go resets the strikes. */
  forgive(): void { this.strikes = 0; }

  /**
   * A client PING at `now` (ms); `sentSomething`: the server sent headers or data since the
   * previous one. True when this one is too many (answer GOAWAY ENHANCE_YOUR_CALM "too_many_pings").
   */
  tooMany(now: number, sentSomething: boolean, activeStreams: number): boolean {
    if (sentSomething) {
      this.strikes = 0;
      this.lastPingAt = now;
      return false;
    }
    const allowance = activeStreams > 0 ? this.minTimeMs : idlePingAllowanceMs;
    if (now < this.lastPingAt + allowance) this.strikes++;
    this.lastPingAt = now;
    return this.strikes > maxPingStrikes;
  }
}

/** What serverPings needs of a connection. */
export interface Pingable {
  readonly destroyed: boolean;
  readonly closed: boolean;
  /** Sends a PING; `callback` runs on its ACK (an error if the connection ended first). Throws if closing. */
  ping(callback: (error: Error | null) => void): unknown;
  destroy(): void;
}

/** Pings `conn` every intervalMs; no ACK within timeoutMs destroys it. Returns the stopper. */
export function serverPings(conn: Pingable, opts: KeepaliveOptions): () => void {
  const timer = setInterval(() => {
    if (conn.destroyed || conn.closed) return;
    let answered = false;
    const deadline = setTimeout(() => { if (!answered && !conn.destroyed) conn.destroy(); }, opts.timeoutMs);
    deadline.unref();
    try {
      conn.ping((err) => {
        answered = true;
        clearTimeout(deadline);
        if (err && !conn.destroyed) conn.destroy();
      });
    } catch {
      clearTimeout(deadline); // the connection is closing: nothing to keep alive
    }
  }, opts.intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

/** Watches one node:http2 server session; returns a function that stops watching (also done on close). */
export function keepSessionAlive(session: http2.ServerHttp2Session, opts: KeepaliveOptions): () => void {
  const strikes = new PingStrikes(opts.minTimeMs);
  const streams: StreamCount = { active: 0 };
  let writtenAtLastPing = bytesWritten(session);

  const onPing = (): void => {
    // grpc-go forgives a client's pings whenever the server has sent headers or data since
    // (a client's BDP pings follow the data it receives: a snapshot download sends many).
    // Bytes beyond the ACK of the previous ping mean the server sent something else.
    const written = bytesWritten(session);
    const sentSomething = written === undefined || writtenAtLastPing === undefined || written - writtenAtLastPing > pingAckBytes;
    writtenAtLastPing = written;
    if (strikes.tooMany(performance.now(), sentSomething, streams.active) && !session.destroyed) {
      session.goaway(enhanceYourCalm, 0, Buffer.from('too_many_pings'));
      session.destroy();
    }
  };
  const onStream = (stream: CountedStream): void => {
    streams.active++;
    strikes.forgive(); // the server answers it: grpc-go resets strikes when it sends headers or data
    stream[kStreamCount] = streams;
    stream.on('close', onCountedStreamClose); // 'close' is emitted once
  };
  session.on('ping', onPing);
  session.on('stream', onStream);
  const stopPings = serverPings(session, opts);

  const stop = (): void => {
    stopPings();
    session.off('ping', onPing);
    session.off('stream', onStream);
  };
  session.once('close', stop);
  return stop;
}
