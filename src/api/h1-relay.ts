/**
 * The main thread's end of the HTTP/1.1 client connections the transport worker relays in the
 * worker-thread API mode (worker.ts sends every connection that is not HTTP/2 here whole).
 * Each becomes a Duplex fed with the client's bytes and handed to an http.Server as a
 * connection (node documents emitting 'connection' with any Duplex), so the JSON gateway, the
 * probes, /metrics and /debug/vars run here, beside the service, as in the in-thread mode.
 *
 * Flow control, both ways, at most `relayWindowBytes` unacknowledged: the worker stops reading
 * the client's socket until this side has handed bytes to the HTTP parser (M2W.h1ack), and a
 * response write here waits once the worker has not yet written that much to the socket
 * (W2M.h1ack), as a socket write waits for the kernel.
 */
import type http from 'node:http';
import { Duplex } from 'node:stream';
import { M2W, relayWindowBytes, type BatchWriter } from './bridge.js';

/** The relayed connections of one worker, by the worker's connection id. */
export class H1Relay {
  private readonly conns = new Map<number, RelayedConnection>();

  constructor(private readonly server: http.Server, private readonly out: BatchWriter) {}

  /** W2M.h1open: a new client connection. */
  open(id: number): void {
    if (this.conns.has(id)) throw new Error(`api: relayed connection ${id} opened twice`);
    const c = new RelayedConnection(id, this.out, () => this.conns.delete(id));
    this.conns.set(id, c);
    this.server.emit('connection', c);
  }

  /** W2M.h1data: the client's bytes (a view of the batch, which is ours). */
  data(id: number, payload: Buffer): void { this.conns.get(id)?.fromClient(payload); }

  /** W2M.h1end: the client ended its side. */
  end(id: number): void { this.conns.get(id)?.push(null); }

  /** W2M.h1close: the socket is gone. */
  closed(id: number): void { this.conns.get(id)?.socketGone(); }

  /** W2M.h1ack: bytes the worker has written to the socket. */
  ack(id: number, bytes: number): void { this.conns.get(id)?.acked(bytes); }

  /** Drops every connection (the API is closing). */
  destroyAll(): void { for (const c of [...this.conns.values()]) c.destroy(); }
}

/** One relayed connection, as http.Server sees its socket. */
class RelayedConnection extends Duplex {
  /** Bytes sent to the worker for the client and not yet written to its socket. */
  private unackedOutBytes = 0;
  /** The write waiting for the worker to catch up. */
  private blockedWrite: (() => void) | undefined;
  /** Bytes of the client's taken by the HTTP parser, not yet acknowledged to the worker. */
  private unackedInBytes = 0;
  private socketClosed = false;
  private idleMs = 0;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(private readonly id: number, private readonly out: BatchWriter, private readonly onGone: () => void) {
    super({ allowHalfOpen: true });
  }

  fromClient(payload: Buffer): void {
    this.touch();
    this.unackedInBytes += payload.length;
    if (this.push(payload)) this.ackIn();
  }

  override _read(): void { this.ackIn(); }

  private ackIn(): void {
    if (this.unackedInBytes === 0 || this.socketClosed) return;
    this.out.push(M2W.h1ack, this.id, this.unackedInBytes);
    this.unackedInBytes = 0;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    if (this.socketClosed) { cb(new Error('the client connection is closed')); return; }
    this.touch();
    this.out.push(M2W.h1data, this.id, 0, chunk);
    this.unackedOutBytes += chunk.length;
    if (this.unackedOutBytes < relayWindowBytes) cb();
    else this.blockedWrite = cb;
  }

  acked(bytes: number): void {
    this.unackedOutBytes -= bytes;
    const w = this.blockedWrite;
    if (w !== undefined && this.unackedOutBytes < relayWindowBytes) { this.blockedWrite = undefined; w(); }
  }

  override _final(cb: (e?: Error | null) => void): void {
    if (!this.socketClosed) this.out.push(M2W.h1end, this.id, 0);
    cb();
  }

  socketGone(): void {
    this.socketClosed = true;
    this.destroy();
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    if (!this.socketClosed) this.out.push(M2W.h1destroy, this.id, 0);
    this.socketClosed = true;
    this.blockedWrite = undefined;
    this.onGone();
    cb(err);
  }

  // --- the parts of net.Socket that http.Server calls ---

  /** An idle timeout as net.Socket's: 'timeout' after `ms` without bytes either way (keep-alive, server.timeout). */
  setTimeout(ms: number, cb?: () => void): this {
    if (cb) this.once('timeout', cb);
    if (this.idleTimer !== undefined) { clearTimeout(this.idleTimer); this.idleTimer = undefined; }
    this.idleMs = ms;
    this.touch();
    return this;
  }

  setNoDelay(): this { return this; }
  setKeepAlive(): this { return this; }

  private touch(): void {
    if (this.idleMs <= 0 || this.destroyed) {
      if (this.idleTimer !== undefined) { clearTimeout(this.idleTimer); this.idleTimer = undefined; }
      return;
    }
    if (this.idleTimer === undefined) this.idleTimer = setTimeout(() => this.emit('timeout'), this.idleMs).unref();
    else this.idleTimer.refresh();
  }
}
