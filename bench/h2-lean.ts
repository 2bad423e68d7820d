// A lean gRPC unary client for the load generator (bench/loadgen.ts), on a plain TCP socket:
// HTTP/2 framed by hand, so the generator's CPU per request is a fraction of node:http2's
// (about 85 us per put there, more than the server under test spends on it) and the server,
// not the generator, is what the 2-core machine's time goes to. It drives etcd and Concord alike.
//
// What it does of HTTP/2 (RFC 7540): the client preface and SETTINGS (4 MiB stream windows,
// push off), an ACK for the server's SETTINGS and PINGs (grpc-go's BDP pings), flow control
// both ways (a request waits while the server's connection window is short; the connection's
// receive window is topped up as response bytes arrive), SETTINGS_MAX_CONCURRENT_STREAMS (a
// request the server refused with REFUSED_STREAM, sent before its limit was known, is sent
// again), and GOAWAY or a closed socket failing every call in flight. A request is one HEADERS frame (the
// same header block each time: literals without indexing, so no HPACK state on our side) and
// one DATA frame with END_STREAM; requests made in one event-loop turn leave in one write, as
// grpc-go and nghttp2 batch them. Response header blocks go through an HPACK decoder (the
// server indexes its headers) only to find grpc-status and grpc-message; bodies are skipped.
import * as net from 'node:net';
import {
  ErrorCode, Flag, FrameReader, FrameType, Setting, clientPreface, defaultMaxFrameBytes, defaultWindowBytes,
  frameHeaderBytes, pingFrame, settingsAckFrame, settingsFrame, windowUpdateFrame, writeFrameHeader,
  type FrameSink,
} from '../src/api/h2/frames.js';
import { HpackDecoder, encodeHeaderBlock } from '../src/api/h2/hpack.js';

/** Each stream's receive window we announce, and the connection's (as loadgen's node:http2 client did). */
const streamWindowBytes = 4 * 1024 * 1024;
const connectionWindowBytes = 16 * 1024 * 1024;
/** Response bytes received before the connection window is topped up again. */
const windowTopUpBytes = connectionWindowBytes / 2;
/** Header blocks from the server may be this large (compressed); a gRPC error's message fits. */
const maxHeaderBlockBytes = 64 * 1024;

/** The largest request body sent: one DATA frame of the size every HTTP/2 peer must accept. */
export const maxLeanBodyBytes = defaultMaxFrameBytes;

/** Settles one call: null on grpc-status 0, else the error text (never rejects). */
type Done = (err: string | null) => void;

interface Call { body: Buffer; done: Done; status: string | undefined; message: string | undefined }

export class LeanGrpcConnection implements FrameSink {
  private readonly socket: net.Socket;
  private readonly reader = new FrameReader(this, defaultMaxFrameBytes, maxHeaderBlockBytes);
  private readonly hpack = new HpackDecoder();
  private readonly calls = new Map<number, Call>();
  /** Requests not yet written: the server's stream limit or connection window holds them. */
  private readonly waiting: Array<{ body: Buffer; done: Done }> = [];
  private readonly out: Buffer[] = [];
  private flushScheduled = false;
  private nextStream = 1;
  private sendWindowBytes = defaultWindowBytes;
  private streamSendWindowBytes = defaultWindowBytes;
  private maxStreams = Infinity;
  private receivedSinceTopUp = 0;
  private failure: string | undefined;
  private readonly headerBlock: Buffer;
  private readonly onField = (name: string, value: string): void => {
    const call = this.current;
    if (call === undefined) return;
    if (name === 'grpc-status') call.status = value;
    else if (name === 'grpc-message') call.message = value;
  };
  private current: Call | undefined;

  constructor(host: string, port: number, path: string, extraHeaders: ReadonlyArray<readonly [string, string]> = []) {
    this.headerBlock = encodeHeaderBlock([
      [':method', 'POST'], [':scheme', 'http'], [':path', path], [':authority', `${host}:${port}`],
      ['content-type', 'application/grpc'], ['te', 'trailers'], ...extraHeaders,
    ]);
    this.socket = net.connect({ host, port, noDelay: true });
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', (e) => this.fail(`socket: ${e.message}`));
    this.socket.on('close', () => this.fail('connection closed'));
    this.send(clientPreface);
    this.send(settingsFrame([[Setting.enablePush, 0], [Setting.initialWindowSize, streamWindowBytes]]));
    this.send(windowUpdateFrame(0, connectionWindowBytes - defaultWindowBytes));
  }

  /** One unary call with `body`, a whole gRPC message (flag, length, protobuf). */
  call(body: Buffer): Promise<string | null> {
    if (body.length > maxLeanBodyBytes) throw new RangeError(`request of ${body.length} bytes: the lean client sends at most ${maxLeanBodyBytes}`);
    return new Promise((resolve) => this.start(body, resolve));
  }

  close(): void { this.socket.end(); }

  /** Sends now, or queues behind the requests already waiting (in order). */
  private start(body: Buffer, done: Done): void {
    if (this.failure !== undefined) { done(this.failure); return; }
    if (this.waiting.length > 0 || !this.canSend(body.length)) { this.waiting.push({ body, done }); return; }
    this.open(body, done);
  }

  /** Opens a stream with the request; the caller checked canSend. */
  private open(body: Buffer, done: Done): void {
    const stream = this.nextStream;
    this.nextStream += 2;
    this.sendWindowBytes -= body.length;
    this.calls.set(stream, { body, done, status: undefined, message: undefined });
    const block = this.headerBlock;
    const req = Buffer.allocUnsafe(2 * frameHeaderBytes + block.length + body.length);
    let at = writeFrameHeader(req, 0, block.length, FrameType.headers, Flag.endHeaders, stream);
    at += block.copy(req, at);
    at = writeFrameHeader(req, at, body.length, FrameType.data, Flag.endStream, stream);
    body.copy(req, at);
    this.send(req);
  }

  private canSend(bodyBytes: number): boolean {
    return this.calls.size < this.maxStreams && bodyBytes <= this.sendWindowBytes && bodyBytes <= this.streamSendWindowBytes;
  }

  private startWaiting(): void {
    while (this.waiting.length > 0 && this.canSend(this.waiting[0]!.body.length)) {
      const w = this.waiting.shift()!;
      this.open(w.body, w.done);
    }
  }

  private send(bytes: Buffer): void {
    this.out.push(bytes);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      if (this.failure !== undefined) { this.out.length = 0; return; }
      this.socket.write(this.out.length === 1 ? this.out[0]! : Buffer.concat(this.out));
      this.out.length = 0;
    });
  }

  private onData(chunk: Buffer): void {
    try {
      this.reader.push(chunk);
    } catch (e) {
      this.fail(`protocol: ${(e as Error).message}`);
      this.socket.destroy();
    }
  }

  onFrame(type: number, flags: number, stream: number, payload: Buffer): void {
    switch (type) {
      case FrameType.data:
        this.receivedSinceTopUp += payload.length;
        if (this.receivedSinceTopUp >= windowTopUpBytes) {
          this.send(windowUpdateFrame(0, this.receivedSinceTopUp));
          this.receivedSinceTopUp = 0;
        }
        return;
      case FrameType.settings:
        if ((flags & Flag.ack) === 0) this.applySettings(payload);
        return;
      case FrameType.ping:
        if ((flags & Flag.ack) === 0) {
          this.send(pingFrame(true, payload)); // asserts 8 bytes: a bad PING ends the connection
        }
        return;
      case FrameType.windowUpdate:
        if (stream === 0) { this.sendWindowBytes += payload.readUInt32BE(0) & 0x7fffffff; this.startWaiting(); }
        return;
      case FrameType.rstStream: {
        const code = payload.readUInt32BE(0);
        const call = this.calls.get(stream);
        if (code === ErrorCode.refusedStream && call !== undefined) {
          // RFC 7540 §8.1.4: the server did not process it (requests sent before its SETTINGS
          // told us its stream limit): send it again, first in line, as gRPC clients do.
          this.calls.delete(stream);
          this.waiting.unshift({ body: call.body, done: call.done });
          this.startWaiting();
          return;
        }
        this.finish(stream, `stream reset with code ${code}`);
        return;
      }
      case FrameType.goaway: {
        const code = payload.readUInt32BE(4);
        this.fail(`GOAWAY ${code === ErrorCode.noError ? 'NO_ERROR' : code}: ${payload.subarray(8).toString('latin1')}`);
        this.socket.destroy();
        return;
      }
      default:
        return; // PRIORITY, PUSH_PROMISE (push is off), unknown types: nothing to do
    }
  }

  onHeaderBlock(stream: number, endStream: boolean, block: Buffer): void {
    const call = this.calls.get(stream);
    // Decoded even for a stream we no longer track: the HPACK table must stay in step.
    this.current = call;
    this.hpack.decode(block, this.onField);
    this.current = undefined;
    if (endStream && call !== undefined) this.finish(stream, null);
  }

  private applySettings(payload: Buffer): void {
    for (let at = 0; at + 6 <= payload.length; at += 6) {
      const id = payload.readUInt16BE(at);
      const value = payload.readUInt32BE(at + 2);
      // A new initial window applies to streams not yet opened, the only ones we send on.
      if (id === Setting.initialWindowSize) this.streamSendWindowBytes = value;
      else if (id === Setting.maxConcurrentStreams) this.maxStreams = value;
    }
    this.send(settingsAckFrame);
    this.startWaiting();
  }

  /** The server ended `stream` (trailers with END_STREAM, or RST_STREAM). */
  private finish(stream: number, resetError: string | null): void {
    const call = this.calls.get(stream);
    if (call === undefined) return;
    this.calls.delete(stream);
    if (resetError !== null && call.status === undefined) call.done(resetError);
    else if (call.status === '0') call.done(null);
    else if (call.status === undefined) call.done('stream closed without grpc-status');
    else call.done(`grpc-status ${call.status} ${decodeURIComponent(call.message ?? '')}`);
    this.startWaiting();
  }

  private fail(why: string): void {
    if (this.failure !== undefined) return;
    this.failure = why;
    for (const call of this.calls.values()) call.done(why);
    this.calls.clear();
    for (const w of this.waiting.splice(0)) w.done(why);
  }
}
