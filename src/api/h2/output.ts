/**
 * A connection's outgoing frames, gathered through a turn and written to the socket in one
 * write (a unary response's HEADERS, DATA and trailers, and every other response made in the
 * same turn, leave together), with a bound in bytes on what the connection may hold.
 *
 * Frames are written into a staging buffer, header and payload together (payloads up to
 * copyMaxBytes are copied; larger ones follow as their own chunk, uncopied). Each flush hands
 * the socket the region written since the last one and the next turn writes on after it, so
 * a staging buffer serves many turns and no frame costs a Buffer of its own.
 *
 * The bound counts our queue and the socket's unwritten bytes. DATA is flow-controlled and the
 * connection stops moving it here past `dataHighWaterBytes` (see `hasRoomForData`); what is
 * not flow-controlled (HEADERS, RST_STREAM, PING and SETTINGS ACKs) grows only with what the
 * client asks for, so past `maxBytes` the client is not reading and the connection is ended.
 */
import type { Socket } from 'node:net';
import { loopTrace } from '../../metrics/index.js';
import { frameHeaderBytes, writeFrameHeader } from './frames.js';

/** Size of a staging buffer. */
const stageBytes = 64 * 1024;
/** Payloads up to this size are copied into the staging buffer. */
const copyMaxBytes = 4 * 1024;
/** Chunks up to this many bytes in a flush are joined into one buffer; larger flushes go out corked. */
const joinMaxBytes = 64 * 1024;

export type WriteCallback = (error?: Error | null) => void;

export class OutputQueue {
  private chunks: Buffer[] = [];
  private callbacks: WriteCallback[] = [];
  /** Bytes in `chunks`. */
  private chunkBytes = 0;
  private stage = Buffer.allocUnsafe(stageBytes);
  /** Start of the staged bytes not yet handed to the socket, and the end of what is written. */
  private regionStart = 0;
  private fill = 0;
  private flushScheduled = false;
  private overflowed = false;
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
  get queuedBytes(): number { return this.chunkBytes + (this.fill - this.regionStart) + this.socket.writableLength; }

  get hasRoomForData(): boolean { return this.queuedBytes < this.dataHighWaterBytes; }

  /** Queues one frame; `callback` runs once the socket has written it (or failed to). */
  frame(type: number, flags: number, stream: number, payload?: Buffer, callback?: WriteCallback): void {
    const length = payload === undefined ? 0 : payload.length;
    const copied = length <= copyMaxBytes;
    this.makeRoom(frameHeaderBytes + (copied ? length : 0));
    this.fill = writeFrameHeader(this.stage, this.fill, length, type, flags, stream);
    if (payload !== undefined) {
      if (copied) this.fill += payload.copy(this.stage, this.fill);
      else this.addChunk(payload);
    }
    this.queued(callback);
  }

  /** Queues a frame whose payload is one 32-bit value (WINDOW_UPDATE, RST_STREAM). */
  frameU32(type: number, stream: number, value: number): void {
    this.makeRoom(frameHeaderBytes + 4);
    this.fill = writeFrameHeader(this.stage, this.fill, 4, type, 0, stream);
    this.fill = this.stage.writeUInt32BE(value, this.fill);
    this.queued(undefined);
  }

  /** Queues bytes that are whole frames already. */
  push(bytes: Buffer): void {
    if (bytes.length <= copyMaxBytes) {
      this.makeRoom(bytes.length);
      this.fill += bytes.copy(this.stage, this.fill);
    } else this.addChunk(bytes);
    this.queued(undefined);
  }

  /** Writes what is queued now (also called before the connection ends). */
  flush(): void {
    this.flushScheduled = false;
    this.closeRegion();
    const chunks = this.chunks;
    if (chunks.length === 0) return;
    const socket = this.socket;
    const callbacks = this.callbacks;
    const bytes = this.chunkBytes;
    this.chunks = [];
    this.chunkBytes = 0;
    if (callbacks.length > 0) this.callbacks = [];
    if (socket.destroyed || socket.writableEnded) { for (const cb of callbacks) cb(new Error('connection closed')); return; }
    const t0 = loopTrace === undefined ? 0 : performance.now();
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
    if (t0 > 0) loopTrace?.span('h2.flush', t0, bytes);
    this.onFlushed();
  }

  /** Drops what is queued (the connection is being destroyed); callbacks hear of it. */
  discard(): void {
    const callbacks = this.callbacks;
    this.chunks = [];
    this.callbacks = [];
    this.chunkBytes = 0;
    this.regionStart = this.fill;
    for (const cb of callbacks) cb(new Error('connection closed'));
  }

  private queued(callback: WriteCallback | undefined): void {
    if (callback !== undefined) this.callbacks.push(callback);
    if (this.queuedBytes > this.maxBytes) {
      // Reported on the next tick, not from inside the frame a stream or the reader is writing.
      if (!this.overflowed) { this.overflowed = true; process.nextTick(this.onOverflow); }
      return;
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(this.flushNow);
    }
  }

  /** Ensures `bytes` fit in the staging buffer, starting a new one (the old one's region queued) if not. */
  private makeRoom(bytes: number): void {
    if (this.fill + bytes <= this.stage.length) return;
    this.closeRegion();
    this.stage = Buffer.allocUnsafe(Math.max(stageBytes, bytes));
    this.regionStart = 0;
    this.fill = 0;
  }

  /** Queues the staged bytes written since the last region, in order before what follows. */
  private closeRegion(): void {
    if (this.fill === this.regionStart) return;
    this.chunks.push(this.stage.subarray(this.regionStart, this.fill));
    this.chunkBytes += this.fill - this.regionStart;
    this.regionStart = this.fill;
  }

  private addChunk(bytes: Buffer): void {
    this.closeRegion();
    this.chunks.push(bytes);
    this.chunkBytes += bytes.length;
  }
}
