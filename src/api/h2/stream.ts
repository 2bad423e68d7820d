/**
 * One HTTP/2 stream of Concord's own server, as the gRPC server and the h2c handlers see it
 * (grpc/transport.ts's H2Stream, node's ServerHttp2Stream's shape). Not an EventEmitter: the
 * gRPC server registers the same shared functions on every stream, so each event keeps its
 * listeners in a field, and a unary call's stream costs a few fields, not an emitter.
 *
 * The stream holds the per-stream state of RFC 7540 §5.1 and §6.9: what the client may still
 * send (our receive window, returned by WINDOW_UPDATE as the application consumes data, so a
 * paused stream pushes back), what we may send (the client's window for it), the bytes written
 * and not yet sent, and whether each side has ended. The connection (connection.ts) moves its
 * bytes to the socket and tells it of frames.
 */
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { OutgoingHttpHeaders } from 'node:http2';
import { kCall, type H2Session, type H2Stream, type RespondOptions, type StreamEvent } from '../grpc/transport.js';
import { ErrorCode } from './frames.js';
import type { WriteCallback } from './output.js';

type Listener = (this: Stream, ...args: any[]) => void;
interface OnceListener extends Listener { listener?: Listener }
/**
 * An event's listeners: none, the one (the usual case: the gRPC server registers one shared
 * function per event, and an array per event per call was ~130 B of every request), or several.
 */
type Listeners = Listener | Listener[] | undefined;

/** What a stream needs of its connection. */
export interface StreamHost extends H2Session {
  /** Queues a header block (HEADERS, CONTINUATIONs as needed). */
  sendHeaders(stream: Stream, headers: OutgoingHttpHeaders, endStream: boolean, date: boolean): void;
  /** An empty DATA frame with END_STREAM (an end without trailers, as node sends it). */
  sendEndOfData(stream: Stream): void;
  /** Sends `bytes` as DATA now if the windows and the output allow all of it in one frame; false if not (nothing sent). */
  sendWhole(stream: Stream, bytes: Buffer, callback: WriteCallback | undefined): boolean;
  /** `bytes` more (or, negative, fewer) written by streams and not yet sent. */
  held(bytes: number): void;
  /** The stream has bytes to send: send what the windows allow. */
  pump(stream: Stream): void;
  sendReset(stream: Stream, code: number): void;
  /** The application took `bytes` of the stream's data: return them to the client's windows. */
  consumed(stream: Stream, bytes: number): void;
  /** The stream is closed: forget it. */
  forget(stream: Stream): void;
}

const states = {
  open: Object.freeze({ state: http2.constants.NGHTTP2_STREAM_STATE_OPEN }),
  halfClosedLocal: Object.freeze({ state: http2.constants.NGHTTP2_STREAM_STATE_HALF_CLOSED_LOCAL }),
  halfClosedRemote: Object.freeze({ state: http2.constants.NGHTTP2_STREAM_STATE_HALF_CLOSED_REMOTE }),
  closed: Object.freeze({ state: http2.constants.NGHTTP2_STREAM_STATE_CLOSED }),
};

/** Unsent bytes past which write() returns false (node's default highWaterMark). */
export const streamHighWaterBytes = 16 * 1024;

export class Stream implements H2Stream {
  headersSent = false;
  closed = false;
  destroyed = false;
  /** end() was called: no more writes. */
  writableEnded = false;
  /** END_STREAM has been queued (after the last data or with the trailers). */
  localEnded = false;
  /** END_STREAM arrived from the client. */
  remoteEnded = false;
  /** The client's window for this stream: bytes we may still send. */
  sendWindow: number;
  /** Our window: bytes the client may still send. */
  recvWindow: number;
  /** Bytes consumed and not yet returned by WINDOW_UPDATE. */
  unreturnedBytes = 0;
  /** Written and not yet sent, in order, with their callbacks (made when a write must wait). */
  unsent: Buffer[] | undefined;
  unsentCallbacks: Array<WriteCallback | undefined> | undefined;
  unsentBytes = 0;
  /** Offset into unsent[0] of the bytes not yet sent. */
  unsentOffset = 0;
  private waitForTrailers = false;
  private wantTrailersEmitted = false;
  private needDrain = false;
  private paused = false;
  /** Data received while paused, delivered on resume. */
  private held: Buffer[] | undefined;
  private endEmitted = false;
  /** @internal listeners of 'data' */
  onData: Listeners;
  /** @internal listeners of 'end' */
  onEnd: Listeners;
  /** @internal listeners of 'close' */
  onClose: Listeners;
  /** @internal listeners of 'error' */
  onError: Listeners;
  /** @internal listeners of 'drain' */
  onDrain: Listeners;
  /** @internal listeners of 'wantTrailers' */
  onWantTrailers: Listeners;
  /** @internal the gRPC call this stream carries (set by grpc/server.ts). */
  [kCall]: unknown = undefined;

  constructor(
    readonly id: number,
    private readonly host: StreamHost,
    sendWindow: number,
    recvWindow: number,
  ) {
    this.sendWindow = sendWindow;
    this.recvWindow = recvWindow;
  }

  get session(): H2Session { return this.host; }

  get state(): { readonly state?: number } {
    if (this.closed) return states.closed;
    if (this.localEnded) return states.halfClosedLocal;
    return this.remoteEnded ? states.halfClosedRemote : states.open;
  }

  // --- the application's side ---

  respond(headers: OutgoingHttpHeaders, options?: RespondOptions): void {
    assert.ok(!this.headersSent, 'respond() called twice');
    this.headersSent = true;
    if (this.closed) return;
    const endStream = options?.endStream === true;
    this.waitForTrailers = options?.waitForTrailers === true;
    if (endStream) this.writableEnded = true;
    this.host.sendHeaders(this, headers, endStream, options?.sendDate !== false);
    if (endStream) this.endLocal();
  }

  write(chunk: Buffer | string, callback?: WriteCallback): boolean {
    assert.ok(!this.writableEnded, 'write after end');
    if (!this.headersSent) this.respond({ ':status': 200 });
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (this.closed) { if (callback !== undefined) process.nextTick(callback, new Error('stream closed')); return false; }
    // Nothing waiting and the windows allow it all: straight out (a unary response's message).
    if (this.unsentBytes === 0 && this.host.sendWhole(this, bytes, callback)) return true;
    (this.unsent ??= []).push(bytes);
    (this.unsentCallbacks ??= []).push(callback);
    this.unsentBytes += bytes.length;
    this.host.held(bytes.length);
    this.host.pump(this);
    const more = this.unsentBytes < streamHighWaterBytes;
    if (!more) this.needDrain = true;
    return more;
  }

  end(chunk?: Buffer | string): this {
    if (this.writableEnded) return this;
    if (chunk !== undefined) this.write(chunk);
    else if (!this.headersSent) this.respond({ ':status': 200 });
    this.writableEnded = true;
    if (!this.closed) this.host.pump(this);
    return this;
  }

  sendTrailers(headers: OutgoingHttpHeaders): void {
    assert.ok(this.wantTrailersEmitted && !this.localEnded, 'sendTrailers() before wantTrailers');
    if (this.closed) return;
    this.host.sendHeaders(this, headers, true, false);
    this.endLocal();
  }

  close(code: number = ErrorCode.noError): void {
    if (this.closed) return;
    this.host.sendReset(this, code);
    this.closeNow();
  }

  destroy(): this {
    this.close(ErrorCode.cancel);
    this.destroyed = true;
    return this;
  }

  pause(): this { this.paused = true; return this; }

  resume(): this {
    if (!this.paused) return this;
    this.paused = false;
    const held = this.held;
    this.held = undefined;
    if (held !== undefined) for (const chunk of held) { if (this.paused || this.closed) { (this.held ??= []).push(chunk); continue; } this.deliver(chunk); }
    if (!this.paused) this.maybeEmitEnd();
    return this;
  }

  isPaused(): boolean { return this.paused; }

  on(event: StreamEvent, listener: Listener): this {
    const key = listenerKey[event];
    const list = this[key];
    if (list === undefined) this[key] = listener;
    else if (typeof list === 'function') this[key] = [list, listener];
    else list.push(listener);
    return this;
  }

  once(event: StreamEvent, listener: Listener): this {
    const stream = this;
    const wrapped: OnceListener = function (this: Stream, ...args: any[]): void {
      stream.off(event, wrapped);
      listener.apply(this, args);
    };
    wrapped.listener = listener;
    return this.on(event, wrapped);
  }

  off(event: StreamEvent, listener: Listener): this {
    const key = listenerKey[event];
    const list = this[key];
    const matches = (l: Listener): boolean => l === listener || (l as OnceListener).listener === listener;
    if (list === undefined) return this;
    if (typeof list === 'function') {
      if (matches(list)) this[key] = undefined;
      return this;
    }
    const i = list.findIndex(matches);
    if (i >= 0) list.splice(i, 1);
    return this;
  }

  // --- the connection's side ---

  /** DATA from the client (`bytes` counted against the windows already). */
  receive(data: Buffer): void {
    if (data.length === 0) return;
    if (this.paused) { (this.held ??= []).push(data); return; }
    this.deliver(data);
  }

  /** END_STREAM from the client. */
  receiveEnd(): void {
    this.remoteEnded = true;
    this.maybeEmitEnd();
    if (this.localEnded) this.closeNow();
  }

  /**
   * The connection sent all it could; called after each pump. Ends the stream once its
   * bytes are out: 'wantTrailers' for the trailers, else an empty END_STREAM.
   */
  afterPump(): void {
    if (this.needDrain && this.unsentBytes < streamHighWaterBytes) {
      this.needDrain = false;
      this.emit(this.onDrain);
    }
    if (!this.writableEnded || this.unsentBytes > 0 || this.localEnded || this.closed) return;
    if (this.waitForTrailers) {
      if (this.wantTrailersEmitted) return;
      this.wantTrailersEmitted = true;
      this.emit(this.onWantTrailers);
      return;
    }
    this.host.sendEndOfData(this);
    this.endLocal();
  }

  /** The stream is gone without a frame of ours (RST_STREAM from the client, the connection ended). */
  abort(): void {
    if (this.closed) return;
    this.destroyed = true;
    this.closeNow();
  }

  private deliver(data: Buffer): void {
    this.emit(this.onData, data);
    if (!this.closed) this.host.consumed(this, data.length);
  }

  private maybeEmitEnd(): void {
    if (!this.remoteEnded || this.endEmitted || this.paused || (this.held !== undefined && this.held.length > 0)) return;
    this.endEmitted = true;
    this.emit(this.onEnd);
  }

  private endLocal(): void {
    this.localEnded = true;
    if (this.remoteEnded) this.closeNow();
  }

  private closeNow(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsent = undefined;
    this.unsentCallbacks = undefined;
    this.host.held(-this.unsentBytes);
    this.unsentBytes = 0;
    this.host.forget(this);
    this.emit(this.onClose);
  }

  private emit(list: Listeners, arg?: unknown): void {
    if (list === undefined) return;
    if (typeof list === 'function') { list.call(this, arg); return; }
    if (list.length === 1) { list[0]!.call(this, arg); return; }
    for (const l of [...list]) l.call(this, arg);
  }
}

const listenerKey = {
  data: 'onData', end: 'onEnd', close: 'onClose', error: 'onError', drain: 'onDrain', wantTrailers: 'onWantTrailers',
} as const satisfies Record<StreamEvent, keyof Stream>;
