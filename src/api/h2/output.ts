/**
 * A connection's outgoing frames, gathered through a turn and written to the socket in one
 * write (a unary response's HEADERS, DATA and trailers, and every other response made in the
 * same turn, leave together), with a bound in bytes on what the connection may hold.
 *
 * The bound counts our queue and the socket's unwritten bytes. DATA is flow-controlled and the
 * connection stops moving it here past `dataHighWaterBytes` (see `hasRoomForData`); what is
 * not flow-controlled (HEADERS, RST_STREAM, PING and SETTINGS ACKs) grows only with what the
 * client asks for, so past `maxBytes` the client is not reading and the connection is ended.
 */
import type { Socket } from 'node:net';

/** Frames up to this many bytes in a flush are joined into one buffer; larger flushes go out corked. */
const joinMaxBytes = 64 * 1024;

export type WriteCallback = (error?: Error | null) => void;

export class OutputQueue {
  private chunks: Buffer[] = [];
  private callbacks: WriteCallback[] = [];
  /** Bytes in `chunks`. */
  private bytes = 0;
  private flushScheduled = false;
  private readonly flushNow = (): void => this.flush();

  constructor(
    private readonly socket: Socket,
    /** Bytes queued here and in the socket past which the connection is ended. */
    readonly maxBytes: number,
    /** DATA is moved here only while fewer bytes than this are queued. */
    readonly dataHighWaterBytes: number,
    /** The queue is over maxBytes: end the connection. */
    private readonly onOverflow: () => void,
    /** A flush went out (room for DATA may have opened). */
    private readonly onFlushed: () => void,
  ) {}

  /** Bytes queued here and in the socket. */
  get queuedBytes(): number { return this.bytes + this.socket.writableLength; }

  get hasRoomForData(): boolean { return this.queuedBytes < this.dataHighWaterBytes; }

  /** Queues bytes; `callback` runs once the socket has written them (or failed to). */
  push(bytes: Buffer, callback?: WriteCallback): void {
    this.chunks.push(bytes);
    this.bytes += bytes.length;
    if (callback !== undefined) this.callbacks.push(callback);
    if (this.queuedBytes > this.maxBytes) { this.onOverflow(); return; }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(this.flushNow);
    }
  }

  /** Writes what is queued now (also called before the connection ends). */
  flush(): void {
    this.flushScheduled = false;
    const chunks = this.chunks;
    if (chunks.length === 0) return;
    const socket = this.socket;
    const callbacks = this.callbacks;
    const bytes = this.bytes;
    this.chunks = [];
    this.bytes = 0;
    if (callbacks.length > 0) this.callbacks = [];
    if (socket.destroyed || socket.writableEnded) { for (const cb of callbacks) cb(new Error('connection closed')); return; }
    const done = callbacks.length === 0 ? undefined : (e?: Error | null): void => { for (const cb of callbacks) cb(e); };
    if (chunks.length === 1) socket.write(chunks[0]!, done);
    else if (bytes <= joinMaxBytes) socket.write(Buffer.concat(chunks, bytes), done);
    else {
      socket.cork();
      const last = chunks.length - 1;
      for (let i = 0; i < last; i++) socket.write(chunks[i]!);
      socket.write(chunks[last]!, done);
      socket.uncork();
    }
    this.onFlushed();
  }

  /** Drops what is queued (the connection is being destroyed); callbacks hear of it. */
  discard(): void {
    const callbacks = this.callbacks;
    this.chunks = [];
    this.callbacks = [];
    this.bytes = 0;
    for (const cb of callbacks) cb(new Error('connection closed'));
  }
}
