/**
 * One client connection of Concord's own HTTP/2 server (RFC 7540), plain or TLS, taken over
 * from the listener right after the client preface was seen. It reads frames (frames.ts),
 * decodes header blocks (HPACK), keeps the streams (stream.ts) and both directions of flow
 * control, answers PING and SETTINGS, applies gRPC's keepalive policy (keepalive.ts) and the
 * limits below, and writes its frames a turn at a time (output.ts).
 *
 * Limits (a client is hostile until parsed): concurrent streams (REFUSED_STREAM past
 * --max-concurrent-streams), streams reset by the client (a token bucket: the rapid-reset
 * attack, CVE-2023-44487), header block bytes, bytes taken before our SETTINGS are
 * acknowledged, and output bytes (a client that does not read is cut off). Any error in this
 * connection ends this connection: an H2Error or HpackError with GOAWAY and its code, anything
 * else logged, with GOAWAY INTERNAL_ERROR.
 */
import { EventEmitter } from 'node:events';
import type { OutgoingHttpHeaders } from 'node:http2';
import type { Socket } from 'node:net';
import type { Logger } from '../../log/index.js';
import { loopTrace } from '../../metrics/index.js';
import type { StreamHandler } from '../grpc/transport.js';
import { PingStrikes, serverPings, type KeepaliveOptions } from '../keepalive.js';
import {
  ErrorCode, Flag, FrameReader, FrameType, H2Error, Setting, clientPreface, dataOf, defaultMaxFrameBytes, defaultWindowBytes, frame, goawayFrame, maxMaxFrameBytes, maxWindowBytes, settingsFrame,
} from './frames.js';
import { RequestHeaders, responseBlock } from './headers.js';
import { HpackDecoder, HpackError } from './hpack.js';
import { OutputQueue, type WriteCallback } from './output.js';
import { Stream, type StreamHost } from './stream.js';
import { StreamTable } from './stream-table.js';

export interface ConnectionOptions {
  onStream: StreamHandler;
  /** SETTINGS_MAX_CONCURRENT_STREAMS we announce (--max-concurrent-streams). */
  maxConcurrentStreams: number;
  keepalive: KeepaliveOptions;
  log?: Logger;
  /** Bytes a client may send before it acknowledges our SETTINGS. */
  maxBytesBeforeSettingsAck: number;
  /** How long a client may take to acknowledge our SETTINGS. */
  settingsTimeoutMs: number;
}

/** Our stream window (what listener.ts announces for node:http2 too): a max-size request in two round trips. */
export const streamWindowBytes = 1 << 20;
/** Our connection window. */
export const connectionWindowBytes = 1 << 24;
/** The frame size we accept (the protocol's default, as node announces it). */
const maxFrameBytes = defaultMaxFrameBytes;
/** Compressed bytes of one header block (HEADERS + CONTINUATIONs); the decoded list is bounded by the decoder. */
const maxHeaderBlockBytes = 80 * 1024;
const maxHeaderListBytes = 64 * 1024;
/** Streams open at once whatever the client was told (past it REFUSED_STREAM): each holds memory. */
const maxOpenStreamsCap = 100_000;
/**
 * Bytes a connection's streams may have written and not sent (waiting for the client's
 * windows) before new streams are refused, as nghttp2 refuses them past maxSessionMemory.
 */
const maxHeldBytes = 64 * 1024 * 1024;
/** Output bytes held for a client (ours and the socket's) past which it is cut off. */
const maxOutputBytes = 8 * 1024 * 1024;
/** DATA is moved to the output while it holds fewer bytes than this. */
const dataHighWaterBytes = 256 * 1024;
/** Client resets allowed in a burst, and refilled per second (nghttp2's defaults). */
const resetBurst = 1000;
const resetsPerSecond = 33;
/** Streams we reset whose late DATA is still recognised and ignored. */
const recentlyResetCount = 16;
/** The payload of our keepalive PINGs (ACKs are matched in order). */
const pingOpaque = Buffer.alloc(8);
/** How long a connection ending with an error may take to flush its GOAWAY. */
const closeFlushMs = 1000;

export class Connection extends EventEmitter implements StreamHost {
  closed = false;
  destroyed = false;
  /** Open streams by id (not a Map: see stream-table.ts). */
  private readonly streams = new StreamTable<Stream>();
  private readonly reader: FrameReader;
  private readonly decoder = new HpackDecoder(4096, maxHeaderListBytes);
  private readonly fields = new RequestHeaders();
  /** The last streams we reset, whose in-flight DATA is ignored rather than answered. */
  private readonly recentlyReset: number[] = new Array<number>(recentlyResetCount).fill(0);
  private recentlyResetNext = 0;
  private readonly output: OutputQueue;
  private lastStreamId = 0;
  /** GOAWAY sent: no new stream is accepted. */
  private goingAway = false;
  // Flow control, our side of it: what the client may send before we return bytes.
  private connRecvWindow = connectionWindowBytes;
  private connUnreturnedBytes = 0;
  // And the client's: what we may send.
  private connSendWindow = defaultWindowBytes;
  private peerInitialWindow = defaultWindowBytes;
  private peerMaxFrameBytes = defaultMaxFrameBytes;
  /** Streams with unsent bytes that wait for a window or for room in the output (a StreamTable for the same reason). */
  private readonly blocked = new StreamTable<Stream>();
  /** Bytes written by this connection's streams and waiting for a window (no new stream past maxHeldBytes). */
  private heldBytes = 0;
  private settingsAcked = false;
  private bytesBeforeAck = 0;
  private settingsTimer: NodeJS.Timeout | undefined;
  private resetTokens = resetBurst;
  private resetTokensAt = performance.now();
  private readonly pingStrikes: PingStrikes;
  private sentSinceClientPing = true;
  private readonly pingCallbacks: Array<(e: Error | null) => void> = [];
  private readonly stopPings: () => void;

  constructor(readonly socket: Socket, received: Buffer, private readonly opts: ConnectionOptions) {
    super();
    this.reader = new FrameReader(this, maxFrameBytes, maxHeaderBlockBytes);
    this.output = new OutputQueue(socket, maxOutputBytes, dataHighWaterBytes,
      () => this.fail(new H2Error(ErrorCode.enhanceYourCalm, 'output queue over its bound (the client is not reading)')),
      () => this.pumpBlocked());
    this.pingStrikes = new PingStrikes(opts.keepalive.minTimeMs);
    this.output.push(settingsFrame([
      [Setting.maxConcurrentStreams, opts.maxConcurrentStreams],
      [Setting.initialWindowSize, streamWindowBytes],
      // Advisory (RFC 9113 6.5.2): the bound the decoder enforces anyway, told up front.
      [Setting.maxHeaderListSize, maxHeaderListBytes],
    ]));
    this.output.frameU32(FrameType.windowUpdate, 0, connectionWindowBytes - defaultWindowBytes);
    this.settingsTimer = setTimeout(() => this.fail(new H2Error(ErrorCode.settingsTimeout, 'SETTINGS not acknowledged')), opts.settingsTimeoutMs);
    this.settingsTimer.unref();
    this.stopPings = serverPings(this, opts.keepalive);
    socket.on('data', (chunk: Buffer) => this.onBytes(chunk));
    socket.on('drain', () => this.pumpBlocked());
    socket.on('error', () => { /* 'close' follows */ });
    socket.once('close', () => this.onSocketClose());
    // The listener read the preface (and maybe more) already.
    if (received.length < clientPreface.length || !received.subarray(0, clientPreface.length).equals(clientPreface)) {
      throw new Error('Connection: handed over without the client preface');
    }
    this.onBytes(received.subarray(clientPreface.length));
    socket.resume();
  }

  get openStreams(): number { return this.streams.size; }

  // --- reading ---

  private onBytes(chunk: Buffer): void {
    if (this.closed || chunk.length === 0) return;
    if (!this.settingsAcked) {
      this.bytesBeforeAck += chunk.length;
      if (this.bytesBeforeAck > this.opts.maxBytesBeforeSettingsAck) {
        this.fail(new H2Error(ErrorCode.enhanceYourCalm, 'too many bytes before SETTINGS were acknowledged'));
        return;
      }
    }
    const t0 = loopTrace === undefined ? 0 : performance.now();
    // Per-connection code: whatever goes wrong ends this connection only.
    try {
      this.reader.push(chunk);
      if (t0 > 0) loopTrace?.span('h2.read', t0, chunk.length);
    } catch (e) {
      if (e instanceof H2Error) this.fail(e);
      else if (e instanceof HpackError) this.fail(new H2Error(ErrorCode.compression, e.message));
      else {
        this.opts.log?.warn('closing client connection after an error', { error: String((e as Error)?.stack ?? e) });
        this.fail(new H2Error(ErrorCode.internal, 'internal error'));
      }
    }
  }

  /** FrameSink: every frame but header blocks. */
  onFrame(type: number, flags: number, stream: number, payload: Buffer): void {
    switch (type) {
      case FrameType.data: this.onData(flags, stream, payload); return;
      case FrameType.priority:
        if (stream === 0) throw new H2Error(ErrorCode.protocol, 'PRIORITY on stream 0');
        if (payload.length !== 5) throw new H2Error(ErrorCode.frameSize, 'PRIORITY frame size');
        if ((payload.readUInt32BE(0) & 0x7fffffff) === stream) this.selfDependency(stream);
        return;
      case FrameType.rstStream: this.onReset(flags, stream, payload); return;
      case FrameType.settings: this.onSettings(flags, stream, payload); return;
      case FrameType.pushPromise: throw new H2Error(ErrorCode.protocol, 'PUSH_PROMISE from a client');
      case FrameType.ping: this.onPing(flags, stream, payload); return;
      case FrameType.goaway:
        if (stream !== 0) throw new H2Error(ErrorCode.protocol, 'GOAWAY on a stream');
        this.close();
        return;
      case FrameType.windowUpdate: this.onWindowUpdate(flags, stream, payload); return;
      default: return; // unknown frame types are ignored (RFC 7540 §4.1)
    }
  }

  /** FrameSink: a complete header block. */
  onHeaderBlock(id: number, endStream: boolean, block: Buffer): void {
    const existing = this.streams.get(id);
    const fields = this.fields;
    fields.start(existing !== undefined);
    // Decoded whatever becomes of the stream: the HPACK table must stay in step with the client's.
    this.decoder.decode(block, fields.onField);
    fields.finish();
    if (existing !== undefined) {
      // Trailers: they must end the stream (RFC 7540 §8.1).
      if (!endStream || existing.remoteEnded || fields.problem !== undefined) { this.streamError(existing, ErrorCode.protocol); return; }
      existing.receiveEnd();
      return;
    }
    if ((id & 1) === 0) throw new H2Error(ErrorCode.protocol, 'even stream id from a client');
    if (id <= this.lastStreamId) throw new H2Error(ErrorCode.protocol, `stream ${id} is not new`);
    this.lastStreamId = id;
    if (this.goingAway) return;
    if (fields.problem !== undefined) { this.refuse(id, ErrorCode.protocol); return; }
    if (this.streams.size >= Math.min(this.opts.maxConcurrentStreams, maxOpenStreamsCap) || this.heldBytes > maxHeldBytes) {
      this.refuse(id, ErrorCode.refusedStream);
      return;
    }
    const stream = new Stream(id, this, this.peerInitialWindow, streamWindowBytes);
    this.streams.set(id, stream);
    this.pingStrikes.forgive();
    this.opts.onStream(stream, fields.headers);
    if (endStream && !stream.closed) stream.receiveEnd();
  }

  private onData(flags: number, id: number, payload: Buffer): void {
    if (id === 0) throw new H2Error(ErrorCode.protocol, 'DATA on stream 0');
    const length = payload.length;
    if (length > this.connRecvWindow) throw new H2Error(ErrorCode.flowControl, 'DATA beyond the connection window');
    this.connRecvWindow -= length;
    const stream = this.streams.get(id);
    if (stream === undefined) {
      if (id > this.lastStreamId) throw new H2Error(ErrorCode.protocol, 'DATA on an idle stream');
      this.returnConnectionBytes(length);
      // Data in flight when we reset the stream is ignored (RFC 7540 §5.4.2); on a stream the
      // client reset or ended, it is a stream error.
      if (!this.recentlyReset.includes(id)) this.refuse(id, ErrorCode.streamClosed);
      return;
    }
    if (stream.remoteEnded) { this.returnConnectionBytes(length); this.streamError(stream, ErrorCode.streamClosed); return; }
    if (length > stream.recvWindow) { this.returnConnectionBytes(length); this.streamError(stream, ErrorCode.flowControl); return; }
    stream.recvWindow -= length;
    const data = dataOf(flags, payload);
    // Padding is nobody's to consume: return it at once.
    if (data.length < length) this.consumed(stream, length - data.length);
    stream.receive(data);
    if ((flags & Flag.endStream) !== 0 && !stream.closed) stream.receiveEnd();
  }

  private onReset(flags: number, id: number, payload: Buffer): void {
    if (id === 0) throw new H2Error(ErrorCode.protocol, 'RST_STREAM on stream 0');
    if (payload.length !== 4) throw new H2Error(ErrorCode.frameSize, 'RST_STREAM frame size');
    if (id > this.lastStreamId) throw new H2Error(ErrorCode.protocol, 'RST_STREAM on an idle stream');
    // Counted whether the stream is open or already gone: a flood of resets on a finished
    // stream costs as much to read as the rapid-reset attack.
    this.chargeReset();
    this.streams.get(id)?.abort();
  }

  private onSettings(flags: number, id: number, payload: Buffer): void {
    if (id !== 0) throw new H2Error(ErrorCode.protocol, 'SETTINGS on a stream');
    if ((flags & Flag.ack) !== 0) {
      if (payload.length !== 0) throw new H2Error(ErrorCode.frameSize, 'SETTINGS ACK with a payload');
      if (!this.settingsAcked) {
        this.settingsAcked = true;
        clearTimeout(this.settingsTimer);
      }
      return;
    }
    if (payload.length % 6 !== 0) throw new H2Error(ErrorCode.frameSize, 'SETTINGS frame size');
    for (let at = 0; at < payload.length; at += 6) this.applySetting(payload.readUInt16BE(at), payload.readUInt32BE(at + 2));
    this.output.frame(FrameType.settings, Flag.ack, 0);
    this.pumpBlocked();
  }

  private applySetting(id: number, value: number): void {
    switch (id) {
      case Setting.enablePush:
        if (value > 1) throw new H2Error(ErrorCode.protocol, 'SETTINGS_ENABLE_PUSH not 0 or 1');
        return;
      case Setting.initialWindowSize: {
        if (value > maxWindowBytes) throw new H2Error(ErrorCode.flowControl, 'SETTINGS_INITIAL_WINDOW_SIZE too large');
        const delta = value - this.peerInitialWindow;
        this.peerInitialWindow = value;
        for (const s of this.streams.list()) {
          s.sendWindow += delta;
          if (s.sendWindow > maxWindowBytes) throw new H2Error(ErrorCode.flowControl, 'stream window overflow');
        }
        return;
      }
      case Setting.maxFrameSize:
        if (value < defaultMaxFrameBytes || value > maxMaxFrameBytes) throw new H2Error(ErrorCode.protocol, 'SETTINGS_MAX_FRAME_SIZE out of range');
        this.peerMaxFrameBytes = value;
        return;
      default: return; // header table size: our blocks never use the dynamic table; others: not ours to heed
    }
  }

  private onPing(flags: number, id: number, payload: Buffer): void {
    if (id !== 0) throw new H2Error(ErrorCode.protocol, 'PING on a stream');
    if (payload.length !== 8) throw new H2Error(ErrorCode.frameSize, 'PING frame size');
    if ((flags & Flag.ack) !== 0) {
      const cb = this.pingCallbacks.shift();
      cb?.(null);
      return;
    }
    const sent = this.sentSinceClientPing;
    this.sentSinceClientPing = false;
    if (this.pingStrikes.tooMany(performance.now(), sent, this.streams.size)) {
      this.fail(new H2Error(ErrorCode.enhanceYourCalm, 'too_many_pings'), Buffer.from('too_many_pings'));
      return;
    }
    this.output.frame(FrameType.ping, Flag.ack, 0, payload);
  }

  private onWindowUpdate(flags: number, id: number, payload: Buffer): void {
    if (payload.length !== 4) throw new H2Error(ErrorCode.frameSize, 'WINDOW_UPDATE frame size');
    const increment = payload.readUInt32BE(0) & 0x7fffffff;
    if (id === 0) {
      if (increment === 0) throw new H2Error(ErrorCode.protocol, 'WINDOW_UPDATE of 0');
      this.connSendWindow += increment;
      if (this.connSendWindow > maxWindowBytes) throw new H2Error(ErrorCode.flowControl, 'connection window overflow');
      this.pumpBlocked();
      return;
    }
    if (id > this.lastStreamId) throw new H2Error(ErrorCode.protocol, 'WINDOW_UPDATE on an idle stream');
    const stream = this.streams.get(id);
    if (stream === undefined) return;
    if (increment === 0) { this.streamError(stream, ErrorCode.protocol); return; }
    stream.sendWindow += increment;
    if (stream.sendWindow > maxWindowBytes) { this.streamError(stream, ErrorCode.flowControl); return; }
    this.pump(stream);
  }

  // --- StreamHost: what streams ask of the connection ---

  sendHeaders(stream: Stream, headers: OutgoingHttpHeaders, endStream: boolean, date: boolean): void {
    const block = responseBlock(headers, date);
    this.sentSinceClientPing = true;
    this.pingStrikes.forgive();
    const max = this.peerMaxFrameBytes;
    if (block.length <= max) {
      this.output.frame(FrameType.headers, Flag.endHeaders | (endStream ? Flag.endStream : 0), stream.id, block);
      return;
    }
    for (let at = 0; at < block.length; at += max) {
      const last = at + max >= block.length;
      const type = at === 0 ? FrameType.headers : FrameType.continuation;
      const flags = (last ? Flag.endHeaders : 0) | (at === 0 && endStream ? Flag.endStream : 0);
      this.output.frame(type, flags, stream.id, block.subarray(at, at + max));
    }
  }

  sendEndOfData(stream: Stream): void {
    this.output.frame(FrameType.data, Flag.endStream, stream.id);
  }

  sendWhole(stream: Stream, bytes: Buffer, callback: WriteCallback | undefined): boolean {
    const n = bytes.length;
    if (n > stream.sendWindow || n > this.connSendWindow || n > this.peerMaxFrameBytes || !this.output.hasRoomForData) return false;
    stream.sendWindow -= n;
    this.connSendWindow -= n;
    this.sentSinceClientPing = true;
    this.output.frame(FrameType.data, 0, stream.id, bytes, callback);
    return true;
  }

  /** Sends what the windows and the output allow of the stream's unsent bytes. */
  pump(stream: Stream): void {
    const output = this.output;
    while (stream.unsentBytes > 0) {
      const room = Math.min(stream.sendWindow, this.connSendWindow, this.peerMaxFrameBytes);
      if (room <= 0 || !output.hasRoomForData) { this.blocked.set(stream.id, stream); break; }
      const chunk = stream.unsent![0]!;
      const from = stream.unsentOffset;
      const n = Math.min(room, chunk.length - from);
      const whole = from + n === chunk.length;
      output.frame(FrameType.data, 0, stream.id, from === 0 && whole ? chunk : chunk.subarray(from, from + n), whole ? stream.unsentCallbacks![0] : undefined);
      stream.sendWindow -= n;
      this.connSendWindow -= n;
      stream.unsentBytes -= n;
      this.heldBytes -= n;
      this.sentSinceClientPing = true;
      if (whole) { stream.unsent!.shift(); stream.unsentCallbacks!.shift(); stream.unsentOffset = 0; }
      else stream.unsentOffset = from + n;
      if (this.closed) return;
    }
    if (stream.unsentBytes === 0) this.blocked.delete(stream.id);
    stream.afterPump();
  }

  held(bytes: number): void {
    this.heldBytes += bytes;
  }

  sendReset(stream: Stream, code: number): void {
    this.recentlyReset[this.recentlyResetNext] = stream.id;
    this.recentlyResetNext = (this.recentlyResetNext + 1) % this.recentlyReset.length;
    this.output.frameU32(FrameType.rstStream, stream.id, code);
  }

  consumed(stream: Stream, bytes: number): void {
    this.connUnreturnedBytes += bytes;
    if (this.connUnreturnedBytes >= connectionWindowBytes / 4) this.returnConnectionBytes(0);
    if (stream.remoteEnded || stream.closed) return; // the client sends no more on it
    stream.unreturnedBytes += bytes;
    if (stream.unreturnedBytes >= streamWindowBytes / 2) {
      this.output.frameU32(FrameType.windowUpdate, stream.id, stream.unreturnedBytes);
      stream.recvWindow += stream.unreturnedBytes;
      stream.unreturnedBytes = 0;
    }
  }

  forget(stream: Stream): void {
    this.streams.delete(stream.id);
    this.blocked.delete(stream.id);
    if ((this.goingAway) && this.streams.size === 0) this.endSocket();
  }

  // --- H2Session / Pingable ---

  ping(callback: (error: Error | null) => void): boolean {
    if (this.closed) throw new Error('connection closed');
    this.pingCallbacks.push(callback);
    this.output.frame(FrameType.ping, 0, 0, pingOpaque);
    return true;
  }

  /** Graceful close: GOAWAY, no new streams; the connection ends when its streams have. */
  close(): void {
    if (this.goingAway || this.closed) return;
    this.goingAway = true;
    this.output.push(goawayFrame(this.lastStreamId, ErrorCode.noError));
    if (this.streams.size === 0) this.endSocket();
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.output.discard();
    this.socket.destroy();
    this.onSocketClose();
  }

  // --- internals ---

  private returnConnectionBytes(more: number): void {
    const n = this.connUnreturnedBytes + more;
    this.connUnreturnedBytes = 0;
    if (n === 0) return;
    this.connRecvWindow += n;
    this.output.frameU32(FrameType.windowUpdate, 0, n);
  }

  /** A stream error (RFC 7540 §5.4.2): RST_STREAM, the stream is gone. */
  private streamError(stream: Stream, code: number): void {
    stream.close(code);
  }

  /** A stream made to depend on itself (RFC 7540 §5.3.1): a stream error, PROTOCOL_ERROR. */
  private selfDependency(id: number): void {
    const stream = this.streams.get(id);
    if (stream !== undefined) this.streamError(stream, ErrorCode.protocol);
    else this.refuse(id, ErrorCode.protocol);
  }

  /** RST_STREAM for a stream we do not keep; counted as a reset, so a flood of them ends the connection. */
  private refuse(id: number, code: number): void {
    this.output.frameU32(FrameType.rstStream, id, code);
    this.chargeReset();
  }

  private chargeReset(): void {
    const now = performance.now();
    this.resetTokens = Math.min(resetBurst, this.resetTokens + (now - this.resetTokensAt) * resetsPerSecond / 1000);
    this.resetTokensAt = now;
    this.resetTokens -= 1;
    if (this.resetTokens < 0) throw new H2Error(ErrorCode.enhanceYourCalm, 'too many stream resets');
  }

  private pumpBlocked(): void {
    if (this.blocked.size === 0 || this.closed) return;
    for (const s of this.blocked.list()) {
      if (!this.output.hasRoomForData) return;
      this.pump(s);
    }
  }

  /** A connection error: GOAWAY with its code, then the connection ends. */
  private fail(e: H2Error, debug?: Buffer): void {
    if (this.closed) return;
    this.goingAway = true;
    this.output.discard();
    this.socket.write(goawayFrame(this.lastStreamId, e.code, debug));
    this.endSocket();
  }

  private endSocket(): void {
    if (this.closed) return;
    this.closed = true;
    this.output.flush();
    this.socket.end();
    // A client that does not read would keep the socket open: it gets a moment, then is cut.
    setTimeout(() => this.socket.destroy(), closeFlushMs).unref();
    this.abortStreams();
  }

  private closeEmitted = false;

  private onSocketClose(): void {
    this.closed = true;
    this.destroyed = true;
    clearTimeout(this.settingsTimer);
    this.stopPings();
    this.abortStreams();
    for (const cb of this.pingCallbacks.splice(0)) cb(new Error('connection closed'));
    if (this.closeEmitted) return;
    this.closeEmitted = true;
    this.emit('close');
  }

  private abortStreams(): void {
    for (const s of this.streams.list()) s.abort();
    this.streams.clear();
    this.blocked.clear();
  }
}
