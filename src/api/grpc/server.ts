/**
 * A lean gRPC server on node:http2: unary, server-streaming and bidi-streaming methods
 * registered by full path ("/etcdserverpb.KV/Range").
 *
 * Why not grpc-js's server: a bare node:http2 server with static codecs measured ~22k req/s
 * against grpc-js's ~15.6k on the project's machines (DESIGN.md), and the front end shares
 * two cores with raft, the WAL and MVCC. So the hot unary path avoids per-request closures
 * (listeners are shared functions that find their call through a symbol on the stream),
 * reuses header objects (node copies them), frames the response without copying the
 * message, and answers with one respond + one end + one sendTrailers.
 *
 * Wire behaviour follows grpc-go (what etcd runs), including its status wording for
 * transport errors, since etcd clients and tests may match on those messages.
 */
import http2 from 'node:http2';
import { GrpcCode } from '../../errors/index.js';
import { grpcMethodMetrics, recordHandled, type GrpcMethodMetrics, type GrpcType } from '../../metrics/index.js';
import { Codec, MessageReader, MessageSink, deliverWholeMessage, frameBytes, frameMessage, framePrefixBytes, isWholeMessage } from './framing.js';
import { maxChunkBytes, writePaced } from './paced-writer.js';
import { GrpcStatusError, encodeGrpcMessage, parseGrpcTimeout, statusOf, unmarshalError } from './status.js';
import { TurnQueue } from './turns.js';
import { kCall, type H2Stream, type StreamHeaders } from './transport.js';

type Stream = H2Stream;
type Headers = StreamHeaders;

export type MethodKind = 'unary' | 'serverStream' | 'bidi';

/**
 * What a unary handler returns: its response, a promise of it, or `replyLater` when it handed
 * the call itself to whoever answers (the call's resolve/reject: a proposal's waiter).
 */
export type UnaryHandler<Req, Res> = (request: Req, call: ServerCall<Req, Res>) => Promise<Res> | Res | typeof replyLater;

/**
 * A unary handler's answer meaning "the call will be completed through call.resolve or
 * call.reject": the write path registers the call as its proposal's waiter, so a put makes no
 * promise, closure or callback record of its own to wait for its apply (issue 14).
 */
export const replyLater: unique symbol = Symbol('replyLater');
/** Sends responses with `call.write`; returning ends the call with OK, throwing with the error's status. */
export type ServerStreamHandler<Req, Res> = (request: Req, call: ServerCall<Req, Res>) => Promise<void>;
/** Reads requests from `call.messages()`, sends with `call.write`. */
export type BidiHandler<Req, Res> = (call: ServerCall<Req, Res>) => Promise<void>;

interface MethodDef {
  readonly kind: MethodKind;
  readonly path: string;
  readonly requestCodec: Codec<any>;
  readonly responseCodec: Codec<any>;
  readonly handler: (...args: any[]) => unknown;
  /** grpc_server_* series of this method (shared with the JSON gateway). */
  readonly metrics: GrpcMethodMetrics;
}

export interface GrpcServerOptions {
  /** Largest request message accepted, in bytes (etcd: max-request-bytes + 512 KiB). Default 4 MiB, grpc's default. */
  maxReceiveMessageBytes?: number;
  /** Largest response message sent, in bytes (etcd: math.MaxInt32); larger ones end the call with ResourceExhausted. */
  maxSendMessageBytes?: number;
  /** Requests a bidi call may hold unread before the stream is paused (HTTP/2 flow control then pushes back). */
  maxQueuedMessages?: number;
  /** Request bytes a bidi call may hold unread before the stream is paused (default 4 MiB; one message is always taken). */
  maxQueuedBytes?: number;
  /** Serves non-POST (plain HTTP/2, h2c) requests, e.g. GET /health. Default: 404. */
  httpHandler?: (stream: Stream, headers: Headers) => void;
  /**
   * Unary calls started per event-loop turn; the others wait for the next turn (turns.ts:
   * a socket read carrying hundreds of requests must not become one long macrotask).
   */
  unaryCallsPerTurn?: number;
  /** Unary responses sent per event-loop turn; the others wait for the next turn. */
  unaryResponsesPerTurn?: number;
}

/** About 2-3 ms of response writes on this project's machines. */
const defaultResponsesPerTurn = 64;


/**
 * Streamed messages from this size are framed into the call's reused buffer (ServerCall.write):
 * smaller ones come out of node's shared 8 KiB pool, larger ones would each be an ArrayBuffer.
 */
const reusedFrameMinBytes = 4 * 1024;
/** Spare framed buffers a streaming call keeps (ServerCall.spareFrames): 16 x 64 KiB at most. */
const maxSpareFrames = 16;

// Header objects reused by every response; node copies them before mutating. Frozen: Concord's
// own HTTP/2 server (api/h2/) encodes a frozen header object once and reuses the block.
const okHeaders = Object.freeze({ ':status': 200, 'content-type': 'application/grpc' } as const);
const okTrailers = Object.freeze({ 'grpc-status': '0' } as const);
const respondWithTrailers = { waitForTrailers: true, sendDate: false } as const;
const respondEndStream = { endStream: true, sendDate: false } as const;

/** One RPC in progress. Handlers see it as their `call` argument. */
export class ServerCall<Req = unknown, Res = unknown> implements MessageSink {
  /** Bytes of the last request message received, without the 5-byte prefix (for etcd's request-size check). */
  requestBytes = 0;
  /** True once the client cancelled, the deadline passed or the server shut the call. */
  cancelled = false;
  /** Set when a status has been sent; nothing more is written after that. */
  private ended = false;
  private received = 0;
  private inputEnded = false;
  private abortController: AbortController | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Made when a chunk is not one whole message (a unary request's usual DATA is: no reader then). */
  private reader: MessageReader | undefined;
  /** Trailers sent when node asks for them ('wantTrailers'). */
  private trailers: Record<string, string> = okTrailers;
  private resetAfterTrailers = false;
  /** A bidi call's unread requests (made on its first; unary calls never need one). */
  private inbox: Inbox<Req> | undefined;
  private wakeReader: (() => void) | undefined;
  private drainWaiter: { resolve: () => void; reject: (e: Error) => void } | undefined;

  constructor(
    /** @internal */
    readonly server: GrpcServer,
    readonly stream: Stream,
    private readonly def: MethodDef,
    /** Request headers (metadata), e.g. "authorization" for etcd's auth token. */
    readonly headers: Headers,
  ) {
  }

  get path(): string { return this.def.path; }

  /** True once a status (or the unary response) has been sent. */
  get finished(): boolean { return this.ended; }

  /** Set when the handler is invoked: grpc_server_started_total counted, handled_total will be. */
  private started = false;
  private startedAtMs = 0;

  /** @internal */
  markStarted(): void {
    this.started = true;
    this.def.metrics.started.inc();
    if (this.def.metrics.handling !== undefined) this.startedAtMs = performance.now();
  }

  /**
   * Whether the stream's 'close' is listened to. Streaming calls always listen (a gone client
   * ends their loops); a unary call only once its handler asks for `signal` (Lock, Election,
   * the worker bridge): the others finish on their own and a response to a gone client is
   * dropped, so they skip one listener and its 'newListener' event per call (issue 14).
   */
  private closeWatched = false;

  /** @internal listens for the stream's end from now on; a stream already gone counts as closed now. */
  watchClose(): void {
    if (this.closeWatched) return;
    this.closeWatched = true;
    const stream = this.stream;
    if (stream.destroyed || stream.closed) { this.onClose(); return; }
    stream.on('close', onStreamClose);
  }

  /** @internal true when the client went and nobody listened for it (a unary call that never asked for `signal`). */
  get goneUnwatched(): boolean {
    return !this.closeWatched && !this.ended && (this.stream.destroyed || this.stream.closed);
  }

  /** Aborted when the call is cancelled (client RST_STREAM, deadline, server shutdown). Created on first use. */
  get signal(): AbortSignal {
    this.watchClose();
    if (this.abortController === undefined) {
      this.abortController = new AbortController();
      if (this.cancelled) this.abortController.abort();
    }
    return this.abortController.signal;
  }

  /**
   * Framed buffers for this call's large streamed messages that the stream does not hold: a
   * write takes one and that write's callback (the socket has sent the bytes) gives it back. A
   * snapshot streams thousands of 32 KiB messages, and a new ArrayBuffer for each is an
   * external allocation rate that V8 answers with a mark-compact every few hundred ms.
   * node:http2 calls back before the next write, so one buffer circulates; Concord's own
   * HTTP/2 server calls back once the socket wrote the bytes, with up to ~270 KiB of a
   * stream's messages queued before then (h2/connection.ts), so several do. Bounded in count.
   */
  private spareFrames: Buffer[] | undefined;

  /** Sends one response message on a streaming call; resolves when the stream can take more. */
  write(message: Res): Promise<void> {
    if (this.ended || this.cancelled) return Promise.reject(new GrpcStatusError(GrpcCode.Canceled, 'context canceled'));
    const stream = this.stream;
    if (!stream.headersSent) stream.respond(okHeaders, respondWithTrailers);
    const codec = this.def.responseCodec;
    const bytes = codec.framed === true ? undefined : codec.encode(message).finish();
    if (bytes !== undefined && bytes.length >= reusedFrameMinBytes && bytes.length + framePrefixBytes <= maxChunkBytes) {
      const frame = this.takeSpareFrame(bytes.length + framePrefixBytes);
      if (stream.write(frameBytes(bytes, frame), () => { if ((this.spareFrames ??= []).length < maxSpareFrames) this.spareFrames.push(frame); })) return Promise.resolve();
      return this.drained();
    }
    const buf = bytes === undefined ? frameMessage(codec, message) : frameBytes(bytes);
    if (buf.length > maxChunkBytes) return this.writeLarge(buf);
    if (stream.write(buf)) return Promise.resolve();
    return this.drained();
  }

  private takeSpareFrame(bytes: number): Buffer {
    const spare = this.spareFrames?.pop();
    return spare === undefined || spare.length < bytes ? Buffer.allocUnsafe(bytes) : spare;
  }

  /** Resolves at the stream's next 'drain' (rejects if the call closes first). */
  private drained(): Promise<void> {
    const stream = this.stream;
    return new Promise((resolve, reject) => {
      this.drainWaiter = { resolve, reject };
      stream.once('drain', onStreamDrain);
    });
  }

  /** The request messages of a bidi call, in order, until the client half-closes or the call ends. */
  async *messages(): AsyncGenerator<Req, void, undefined> {
    for (;;) {
      const inbox = this.inbox;
      if (inbox !== undefined && inbox.messages.length > 0) {
        const m = inbox.take();
        if (inbox.messages.length === 0 && this.stream.isPaused() && !this.ended) this.stream.resume();
        yield m;
        continue;
      }
      if (this.inputEnded || this.cancelled || this.ended) return;
      await new Promise<void>((resolve) => { this.wakeReader = resolve; });
    }
  }

  /** Ends the call with a status (OK ends a streaming call normally). Idempotent. */
  finish(code: GrpcCode, message: string): void {
    if (this.ended) return;
    this.ended = true;
    if (this.started) recordHandled(this.def.metrics, code, this.startedAtMs);
    this.clearTimer();
    this.server.untrack(this);
    const stream = this.stream;
    if (stream.destroyed || stream.closed) return;
    // Is the client still sending (the rest of an oversized message, or a bidi stream the
    // handler ended)? Then, as grpc-go does, reset its side after our status so it stops.
    // Asked of nghttp2 rather than our 'end' flag: END_STREAM may have arrived unread.
    const clientSending = !this.inputEnded && stream.state.state === http2.constants.NGHTTP2_STREAM_STATE_OPEN;
    if (!stream.headersSent) {
      // Trailers-only response: status in the one HEADERS frame.
      const h: Record<string, string | number> = { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(code) };
      if (message !== '') h['grpc-message'] = encodeGrpcMessage(message);
      stream.respond(h, respondEndStream);
      // Node submits this RST_STREAM (NO_ERROR) only once the HEADERS have been written.
      if (clientSending) stream.close(http2.constants.NGHTTP2_NO_ERROR);
    } else {
      this.resetAfterTrailers = clientSending;
      this.trailers = code === GrpcCode.OK && message === ''
        ? okTrailers
        : { 'grpc-status': String(code), 'grpc-message': encodeGrpcMessage(message) };
      stream.end();
    }
    this.wake();
  }

  /**
   * Completes a unary call whose handler returned `replyLater` with its response (encoded by
   * the method's response codec when it is sent, in turn with the other responses). A call
   * that ended meanwhile (deadline, client gone) sends nothing. With reject, the call is a
   * server/wait.ts Waiter by shape.
   */
  resolve(response: Res): void {
    respondUnary(this, response);
  }

  /** Ends a unary call whose handler returned `replyLater` with the error's status (statusOf). */
  reject(err: unknown): void {
    failUnary(this, err);
  }

  /** Sends the one response of a unary call: HEADERS, DATA, then trailers. */
  sendUnary(response: Res): void {
    if (this.ended) return;
    this.ended = true;
    this.clearTimer();
    const stream = this.stream;
    if (stream.destroyed || stream.closed) return;
    let buf: Buffer;
    try {
      buf = frameMessage(this.def.responseCodec, response);
    } catch (e) {
      this.ended = false;
      this.finish(GrpcCode.Internal, `grpc: error while marshaling: ${(e as Error).message}`);
      return;
    }
    if (this.refuseOversize(buf)) return;
    if (this.started) recordHandled(this.def.metrics, GrpcCode.OK, this.startedAtMs);
    stream.respond(okHeaders, respondWithTrailers);
    if (buf.length <= maxChunkBytes) { stream.end(buf); return; }
    void writePaced(stream, buf).then((whole) => { if (whole) stream.end(); });
  }

  private async writeLarge(buf: Buffer): Promise<void> {
    if (this.refuseOversize(buf)) throw new GrpcStatusError(GrpcCode.Canceled, 'context canceled');
    if (!await writePaced(this.stream, buf)) throw new GrpcStatusError(GrpcCode.Canceled, 'context canceled');
  }

  /** Ends the call as grpc-go does when a response exceeds the send limit (etcd: math.MaxInt32). */
  private refuseOversize(framed: Buffer): boolean {
    const bytes = framed.length - 5;
    if (bytes <= this.server.maxSendMessageBytes) return false;
    this.ended = false;
    this.finish(GrpcCode.ResourceExhausted, `grpc: trying to send message larger than max (${bytes} vs. ${this.server.maxSendMessageBytes})`);
    return true;
  }

  // --- transport events (called by the shared listeners below) ---

  /** @internal */
  onData(chunk: Buffer): void {
    if (this.ended) return; // discard what a client sends after the status
    try {
      if (this.reader === undefined && isWholeMessage(chunk)) deliverWholeMessage(chunk, this, this.server.maxReceiveMessageBytes);
      else (this.reader ??= new MessageReader(this, this.server.maxReceiveMessageBytes)).push(chunk);
    } catch (e) {
      const [code, msg] = statusOf(e);
      this.finish(code, msg);
    }
  }

  /** @internal MessageSink: one whole request message. */
  onMessage(compressed: boolean, body: Buffer): void {
    if (this.ended) return;
    if (compressed) this.refuseCompressed();
    this.requestBytes = body.length;
    let req: Req;
    try {
      req = this.def.requestCodec.decode(body);
    } catch (e) {
      throw unmarshalError(e);
    }
    this.received++;
    const kind = this.def.kind;
    if (kind === 'bidi') {
      const inbox = this.inbox ??= new Inbox<Req>();
      inbox.put(req, body.length);
      if (inbox.messages.length >= this.server.maxQueuedMessages || inbox.bytes >= this.server.maxQueuedBytes) this.stream.pause();
      this.wake();
      return;
    }
    // etcd 3.4's grpc-go (1.26) reads one request message and ignores any more.
    if (this.received > 1) return;
    // Start without waiting for END_STREAM (clients send both together), at once while this
    // turn's budget lasts, else queued for the next turn. At once matters for a lone client:
    // the handler's proposal then books the raft loop's setImmediate from this poll phase, so
    // it runs in this loop iteration's check phase instead of one iteration later (one
    // epoll_wait and timers pass fewer per put). Counted as started now, as grpc-go's
    // interceptor counts it on arrival: a deadline that passes while the call waits is then
    // handled (DeadlineExceeded) as there.
    if (kind === 'unary') { this.markStarted(); this.server.unaryStarts.runOrPush(this, req); }
    else void runServerStream(this, req);
  }

  /** @internal client half-closed its side. */
  onEnd(): void {
    this.inputEnded = true;
    if (this.ended) return;
    if (this.def.kind !== 'bidi' && this.received === 0) {
      // grpc-go 1.26 reports the io error reading the message: EOF before any byte of it,
      // ErrUnexpectedEOF inside it.
      this.finish(GrpcCode.Unknown, this.reader === undefined || this.reader.idle ? 'EOF' : 'unexpected EOF');
      return;
    }
    this.wake();
  }

  /** @internal the stream is gone (finished, reset by the client, or session destroyed). */
  onClose(): void {
    this.clearTimer();
    this.server.untrack(this);
    if (!this.ended) this.cancel();
    const w = this.drainWaiter;
    if (w !== undefined) {
      this.drainWaiter = undefined;
      w.reject(new GrpcStatusError(GrpcCode.Canceled, 'context canceled'));
    }
  }

  /** @internal */
  onDrain(): void {
    const w = this.drainWaiter;
    this.drainWaiter = undefined;
    w?.resolve();
  }

  /** @internal */
  wantTrailers(): void {
    this.stream.sendTrailers(this.trailers);
    // sendTrailers writes on the next setImmediate; reset after it, never before.
    if (this.resetAfterTrailers) setImmediate(resetStream, this.stream);
  }

  /** @internal */
  setDeadline(ms: number): void {
    // Timers beyond 2^31-1 ms overflow to 1 ms in node; such deadlines are effectively none.
    if (ms > 0x7fffffff) return;
    this.timer = setTimeout(onDeadline, ms, this);
  }

  /** @internal marks the call cancelled and tells the handler. */
  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.abortController?.abort();
    this.wake();
  }

  private wake(): void {
    const w = this.wakeReader;
    if (w !== undefined) { this.wakeReader = undefined; w(); }
  }

  private clearTimer(): void {
    if (this.timer !== undefined) { clearTimeout(this.timer); this.timer = undefined; }
  }

  private refuseCompressed(): never {
    // etcd 3.4 registers no decompressor (grpc-go's gzip is not linked in), so every
    // compressed message is refused, with grpc-go's wording.
    const enc = this.headers['grpc-encoding'];
    if (enc === undefined || enc === 'identity') {
      throw new GrpcStatusError(GrpcCode.Internal, 'grpc: compressed flag set with identity or empty encoding');
    }
    throw new GrpcStatusError(GrpcCode.Unimplemented, `grpc: Decompressor is not installed for grpc-encoding "${String(enc)}"`);
  }
}

/**
 * A bidi call's requests received and not yet read, bounded by the server's maxQueuedMessages
 * and maxQueuedBytes (the stream is paused past them, so HTTP/2 flow control pushes back).
 */
class Inbox<T> {
  readonly messages: T[] = [];
  private readonly sizes: number[] = [];
  /** Request bytes held. */
  bytes = 0;

  put(message: T, bytes: number): void {
    this.messages.push(message);
    this.sizes.push(bytes);
    this.bytes += bytes;
  }

  take(): T {
    this.bytes -= this.sizes.shift()!;
    return this.messages.shift()!;
  }
}

/**
 * Runs a unary call's handler and queues its response. Not an async function: its frame, its
 * promise and the await cost a put or range more than these two callbacks (issue 14), and a
 * handler that answers at once is answered without a microtask turn.
 */
function startUnary(call: ServerCall<any, any>, req: unknown): void {
  // A deadline that passed while the call waited for its turn has already sent its status.
  if (call.finished) return;
  let res: unknown;
  try {
    res = (call as any).def.handler(req, call);
  } catch (e) {
    failUnary(call, e);
    return;
  }
  if (res === replyLater) return;
  if (res instanceof Promise) res.then((r: unknown) => respondUnary(call, r), (e: unknown) => failUnary(call, e));
  else respondUnary(call, res);
}

function respondUnary(call: ServerCall<any, any>, res: unknown): void {
  try {
    call.server.unaryResponses.runOrPush(call, res);
  } catch (e) {
    failUnary(call, e);
  }
}

function failUnary(call: ServerCall<any, any>, e: unknown): void {
  const [code, msg] = statusOf(e);
  call.finish(code, msg);
}

/**
 * The status of a stream whose handler returned: OK, unless the client went first. grpc-go's
 * handlers then return the stream context's error (etcd's Watch returns its Recv error), so
 * etcd counts such a stream as Canceled in grpc_server_handled_total (its e2e metricsTest
 * expects a killed `etcdctl watch` to count so); nothing reaches the gone client either way.
 */
function endOfStream(call: ServerCall<any, any>): [GrpcCode, string] {
  return call.cancelled ? [GrpcCode.Canceled, 'context canceled'] : [GrpcCode.OK, ''];
}

function sendUnary(call: ServerCall<any, any>, res: unknown): void { call.sendUnary(res); }

async function runServerStream(call: ServerCall<any, any>, req: unknown): Promise<void> {
  call.markStarted();
  try {
    await (call as any).def.handler(req, call);
    call.finish(...endOfStream(call));
  } catch (e) {
    const [code, msg] = statusOf(e);
    call.finish(code, msg);
  }
}

async function runBidi(call: ServerCall<any, any>): Promise<void> {
  call.markStarted();
  try {
    await (call as any).def.handler(call);
    call.finish(...endOfStream(call));
  } catch (e) {
    const [code, msg] = statusOf(e);
    call.finish(code, msg);
  }
}

// Shared listeners: `this` is the stream, the call hangs off it. No closure per request.
function onStreamData(this: Stream, chunk: Buffer): void { (this as any)[kCall].onData(chunk); }
function onStreamEnd(this: Stream): void { (this as any)[kCall].onEnd(); }
function onStreamClose(this: Stream): void { (this as any)[kCall].onClose(); }
function onStreamDrain(this: Stream): void { (this as any)[kCall].onDrain(); }
function onWantTrailers(this: Stream): void { (this as any)[kCall].wantTrailers(); }
function resetStream(stream: Stream): void { if (!stream.closed) stream.close(http2.constants.NGHTTP2_NO_ERROR); }
function onStreamError(): void { /* 'close' follows; the call is cancelled there */ }
function onDeadline(call: ServerCall): void {
  // The client went before the deadline, unheard: as if its 'close' had been listened to.
  if (call.goneUnwatched) { call.onClose(); return; }
  // grpc-go's status for a server-side deadline (status.FromContextError).
  call.finish(GrpcCode.DeadlineExceeded, 'context deadline exceeded');
  call.cancel();
}

function unknownMethod(path: string): string {
  // grpc-go's wording: "unknown service X" / "unknown method M for service X".
  const slash = path.lastIndexOf('/');
  if (slash <= 0) return `malformed method name: "${path}"`;
  return `unknown service ${path.slice(1, slash)}`;
}

/** The method table and the per-stream dispatcher. Attach to a node:http2 server or Concord's own (api/h2/). */
export class GrpcServer {
  readonly maxReceiveMessageBytes: number;
  readonly maxQueuedMessages: number;
  readonly maxQueuedBytes: number;
  readonly maxSendMessageBytes: number;
  private readonly methods = new Map<string, MethodDef>();
  private readonly services = new Set<string>();
  /** Bidi calls in progress, so shutdown can end them (unary and server-streaming calls end on their own). */
  private readonly streaming = new Set<ServerCall<any, any>>();
  private readonly httpHandler: (stream: Stream, headers: Headers) => void;
  /** @internal unary calls whose request has arrived, started at once up to a bound per turn, the rest queued. */
  readonly unaryStarts: TurnQueue<ServerCall<any, any>, unknown>;
  /**
   * @internal unary responses, sent at once up to a bound per turn: a raft apply that
   * completes a batch of 100 puts would otherwise write all 100 in that one macrotask.
   */
  readonly unaryResponses: TurnQueue<ServerCall<any, any>, unknown>;

  constructor(opts: GrpcServerOptions = {}) {
    this.unaryStarts = new TurnQueue(startUnary, { jobsPerTurn: opts.unaryCallsPerTurn, traceKind: 'grpc.starts' });
    this.unaryResponses = new TurnQueue(sendUnary, { jobsPerTurn: opts.unaryResponsesPerTurn ?? defaultResponsesPerTurn, traceKind: 'grpc.responses' });
    this.maxReceiveMessageBytes = opts.maxReceiveMessageBytes ?? 4 * 1024 * 1024;
    this.maxQueuedMessages = opts.maxQueuedMessages ?? 64;
    this.maxQueuedBytes = opts.maxQueuedBytes ?? 4 * 1024 * 1024;
    this.maxSendMessageBytes = opts.maxSendMessageBytes ?? 0x7fffffff;
    this.httpHandler = opts.httpHandler ?? notFound;
  }

  addUnary<Req, Res>(path: string, req: Codec<Req>, res: Codec<Res>, handler: UnaryHandler<Req, Res>): void {
    this.add({ kind: 'unary', path, requestCodec: req, responseCodec: res, handler, metrics: grpcMethodMetrics(path, 'unary') });
  }

  addServerStream<Req, Res>(path: string, req: Codec<Req>, res: Codec<Res>, handler: ServerStreamHandler<Req, Res>): void {
    this.add({ kind: 'serverStream', path, requestCodec: req, responseCodec: res, handler, metrics: grpcMethodMetrics(path, 'server_stream') });
  }

  addBidi<Req, Res>(path: string, req: Codec<Req>, res: Codec<Res>, handler: BidiHandler<Req, Res>): void {
    this.add({ kind: 'bidi', path, requestCodec: req, responseCodec: res, handler, metrics: grpcMethodMetrics(path, 'bidi_stream') });
  }

  /**
   * A method that exists in the API but is not served yet: answers Unimplemented with
   * `message`. `type` is the method's real kind, for its grpc_server_* labels.
   */
  addUnimplemented(path: string, message: string, type: GrpcType = 'unary'): void {
    this.add({ kind: 'bidi', path, requestCodec: nullCodec, responseCodec: nullCodec, metrics: grpcMethodMetrics(path, type), handler: () => {
      throw new GrpcStatusError(GrpcCode.Unimplemented, message);
    } });
  }

  private add(def: MethodDef): void {
    if (this.methods.has(def.path)) throw new Error(`gRPC method ${def.path} registered twice`);
    const slash = def.path.lastIndexOf('/');
    if (!def.path.startsWith('/') || slash <= 0) throw new Error(`bad gRPC method path ${def.path}`);
    this.methods.set(def.path, def);
    this.services.add(def.path.slice(1, slash));
  }

  /** The 'stream' listener for an HTTP/2 server: `h2.on('stream', grpc.handleStream)`, or api/h2's onStream. */
  readonly handleStream = (stream: Stream, headers: Headers): void => {
    if (headers[':method'] !== 'POST') { this.httpHandler(stream, headers); return; }
    const ct = headers['content-type'];
    if (typeof ct !== 'string' || !ct.startsWith('application/grpc')) {
      stream.on('error', onStreamError);
      stream.respond({ ':status': 415, 'content-type': 'text/plain', 'grpc-status': String(GrpcCode.InvalidArgument),
        'grpc-message': encodeGrpcMessage(`invalid gRPC request content-type "${ct ?? ''}"`) }, respondEndStream);
      stream.resume();
      return;
    }
    const path = headers[':path'] ?? '';
    const def = this.methods.get(path);
    if (def === undefined) {
      stream.on('error', onStreamError);
      const slash = path.lastIndexOf('/');
      const service = slash > 0 ? path.slice(1, slash) : '';
      const msg = this.services.has(service) ? `unknown method ${path.slice(slash + 1)} for service ${service}` : unknownMethod(path);
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(GrpcCode.Unimplemented),
        'grpc-message': encodeGrpcMessage(msg) }, respondEndStream);
      stream.resume();
      return;
    }
    const call = new ServerCall(this, stream, def, headers);
    (stream as any)[kCall] = call;
    stream.on('data', onStreamData);
    stream.on('end', onStreamEnd);
    if (def.kind !== 'unary') call.watchClose();
    stream.on('error', onStreamError);
    stream.on('wantTrailers', onWantTrailers);
    const timeout = headers['grpc-timeout'];
    if (timeout !== undefined) {
      const ms = parseGrpcTimeout(timeout as string);
      // grpc-go refuses a malformed timeout by resetting the stream (PROTOCOL_ERROR).
      if (ms === undefined) { call.cancel(); stream.close(http2.constants.NGHTTP2_PROTOCOL_ERROR); return; }
      call.setDeadline(ms);
    }
    if (def.kind === 'bidi') {
      this.streaming.add(call);
      void runBidi(call);
    }
  };

  /** @internal */
  untrack(call: ServerCall<any, any>): void {
    this.streaming.delete(call);
  }

  /**
   * Ends every bidi call with `code`/`message` (shutdown: long-lived streams such as watches
   * and lease keep-alives would otherwise hold the connection open; clients reconnect elsewhere).
   */
  endStreams(code: GrpcCode, message: string): void {
    for (const call of [...this.streaming]) {
      call.finish(code, message);
      call.cancel();
    }
  }

  /** Number of bidi calls open (for tests and metrics). */
  get openStreams(): number { return this.streaming.size; }
}

const nullCodec: Codec<undefined> = {
  encode: () => { throw new Error('unreachable'); },
  decode: () => undefined,
};

function notFound(stream: Stream): void {
  stream.on('error', onStreamError);
  stream.respond({ ':status': 404, 'content-type': 'text/plain; charset=utf-8' });
  stream.end('404 page not found\n');
}
