/**
 * HTTP/2 frames (RFC 7540 §4, §6): the constants, a bounds-checked reader that cuts a
 * connection's byte stream into frames, and the writers for the frames the server sends.
 *
 * The reader trusts nothing: a frame longer than the size we announced, a padding length past
 * the payload, or a header block that grows past its bound through CONTINUATIONs is an
 * H2Error (a connection error with its code), never an out-of-range read.
 */
import assert from 'node:assert/strict';

export const clientPreface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const frameHeaderBytes = 9;

export const FrameType = {
  data: 0x0, headers: 0x1, priority: 0x2, rstStream: 0x3, settings: 0x4, pushPromise: 0x5,
  ping: 0x6, goaway: 0x7, windowUpdate: 0x8, continuation: 0x9,
} as const;

export const Flag = { endStream: 0x1, ack: 0x1, endHeaders: 0x4, padded: 0x8, priority: 0x20 } as const;

/** HTTP/2 error codes (RFC 7540 §7). */
export const ErrorCode = {
  noError: 0x0, protocol: 0x1, internal: 0x2, flowControl: 0x3, settingsTimeout: 0x4, streamClosed: 0x5,
  frameSize: 0x6, refusedStream: 0x7, cancel: 0x8, compression: 0x9, connect: 0xa, enhanceYourCalm: 0xb,
  inadequateSecurity: 0xc, http11Required: 0xd,
} as const;

export const Setting = {
  headerTableSize: 0x1, enablePush: 0x2, maxConcurrentStreams: 0x3, initialWindowSize: 0x4,
  maxFrameSize: 0x5, maxHeaderListSize: 0x6,
} as const;

/** The protocol's defaults and limits. */
export const defaultWindowBytes = 65_535;
export const maxWindowBytes = 0x7fffffff;
export const defaultMaxFrameBytes = 16_384;
export const maxMaxFrameBytes = 0xffffff;

/** A connection error (RFC 7540 §5.4.1): GOAWAY with `code`, then the connection ends. */
export class H2Error extends Error {
  constructor(readonly code: number, message: string) { super(message); }
}

export interface FrameSink {
  /** Every frame but HEADERS/CONTINUATION, in order; `payload` is a view of the received bytes. */
  onFrame(type: number, flags: number, stream: number, payload: Buffer): void;
  /** A complete header block: the HEADERS frame's fragment and its CONTINUATIONs' joined. */
  onHeaderBlock(stream: number, endStream: boolean, block: Buffer): void;
}

/**
 * Cuts bytes into frames. Partial frames wait for more bytes (copied once into a buffer
 * sized for the frame); whole frames in a chunk are handed on as views of it.
 */
export class FrameReader {
  /** A frame's bytes split across chunks: the start of it, up to its full size. */
  private partial: Buffer | undefined;
  private partialFilled = 0;
  /** A header block in progress (HEADERS without END_HEADERS and its CONTINUATIONs so far). */
  private pending: { stream: number; endStream: boolean; parts: Buffer[]; bytes: number } | undefined;

  constructor(
    private readonly sink: FrameSink,
    /** SETTINGS_MAX_FRAME_SIZE we announced: a longer frame is FRAME_SIZE_ERROR. */
    private readonly maxFrameBytes: number,
    /** Bytes a header block may take in its frames (compressed): past it, ENHANCE_YOUR_CALM. */
    private readonly maxHeaderBlockBytes: number,
  ) {}

  /** Takes one chunk from the socket; throws H2Error on a protocol violation. */
  push(chunk: Buffer): void {
    let pos = 0;
    if (this.partial !== undefined) {
      pos = this.fillPartial(chunk);
      if (this.partial !== undefined) return;
    }
    while (chunk.length - pos >= frameHeaderBytes) {
      const length = this.frameLength(chunk, pos);
      const end = pos + frameHeaderBytes + length;
      if (end > chunk.length) break;
      this.frame(chunk, pos, end);
      pos = end;
    }
    if (pos < chunk.length) this.startPartial(chunk.subarray(pos));
  }

  /** True while a frame or header block is incomplete (for tests and for a clean close). */
  get midFrame(): boolean { return this.partial !== undefined || this.pending !== undefined; }

  private frameLength(buf: Buffer, at: number): number {
    const length = buf.readUIntBE(at, 3);
    if (length > this.maxFrameBytes) throw new H2Error(ErrorCode.frameSize, `frame of ${length} bytes exceeds ${this.maxFrameBytes}`);
    return length;
  }

  private startPartial(rest: Buffer): void {
    // Until the 9-byte header is in, the frame's size is unknown: hold the header's bytes.
    const size = rest.length >= frameHeaderBytes ? frameHeaderBytes + this.frameLength(rest, 0) : frameHeaderBytes;
    this.partial = Buffer.allocUnsafe(size);
    rest.copy(this.partial);
    this.partialFilled = rest.length;
  }

  /** Completes the partial frame from `chunk`; returns the offset of the chunk's first unused byte. */
  private fillPartial(chunk: Buffer): number {
    let pos = 0;
    for (;;) {
      const partial = this.partial!;
      const n = Math.min(partial.length - this.partialFilled, chunk.length - pos);
      chunk.copy(partial, this.partialFilled, pos, pos + n);
      this.partialFilled += n;
      pos += n;
      if (this.partialFilled < partial.length) return pos;
      if (partial.length === frameHeaderBytes && this.partialFilled === frameHeaderBytes) {
        const length = this.frameLength(partial, 0);
        if (length > 0) {
          // Now the size is known: grow to the whole frame and keep filling.
          const whole = Buffer.allocUnsafe(frameHeaderBytes + length);
          partial.copy(whole);
          this.partial = whole;
          continue;
        }
      }
      this.partial = undefined;
      this.partialFilled = 0;
      this.frame(partial, 0, partial.length);
      return pos;
    }
  }

  /** The frame at buf[at, end): one view made, of its payload (or header block fragment). */
  private frame(buf: Buffer, at: number, end: number): void {
    const type = buf[at + 3]!;
    const flags = buf[at + 4]!;
    const stream = buf.readUInt32BE(at + 5) & 0x7fffffff;
    const from = at + frameHeaderBytes;
    const pending = this.pending;
    if (pending !== undefined) {
      // RFC 7540 §6.10: nothing may come between a header block's frames.
      if (type !== FrameType.continuation || stream !== pending.stream) {
        throw new H2Error(ErrorCode.protocol, 'expected CONTINUATION of the header block');
      }
      this.addFragment(pending, buf.subarray(from, end));
      if ((flags & Flag.endHeaders) !== 0) {
        this.pending = undefined;
        this.sink.onHeaderBlock(stream, pending.endStream, Buffer.concat(pending.parts, pending.bytes));
      }
      return;
    }
    if (type === FrameType.continuation) throw new H2Error(ErrorCode.protocol, 'CONTINUATION without HEADERS');
    if (type !== FrameType.headers) { this.sink.onFrame(type, flags, stream, buf.subarray(from, end)); return; }
    if (stream === 0) throw new H2Error(ErrorCode.protocol, 'HEADERS on stream 0');
    const fragment = headersFragment(flags, stream, buf, from, end);
    const endStream = (flags & Flag.endStream) !== 0;
    if ((flags & Flag.endHeaders) !== 0) {
      if (fragment.length > this.maxHeaderBlockBytes) throw this.blockTooLarge();
      this.sink.onHeaderBlock(stream, endStream, fragment);
      return;
    }
    const started = { stream, endStream, parts: [] as Buffer[], bytes: 0 };
    this.addFragment(started, fragment);
    this.pending = started;
  }

  private addFragment(pending: { parts: Buffer[]; bytes: number }, fragment: Buffer): void {
    pending.bytes += fragment.length;
    if (pending.bytes > this.maxHeaderBlockBytes) throw this.blockTooLarge();
    // Copied: a fragment is a view of a socket chunk, and the block outlives this call.
    pending.parts.push(Buffer.from(fragment));
  }

  private blockTooLarge(): H2Error {
    return new H2Error(ErrorCode.enhanceYourCalm, `header block exceeds ${this.maxHeaderBlockBytes} bytes`);
  }
}

/** A HEADERS frame's header block fragment, without padding and priority fields. */
function headersFragment(flags: number, stream: number, payload: Buffer, from: number, to: number): Buffer {
  let start = from;
  let end = to;
  if ((flags & Flag.padded) !== 0) {
    if (to - from < 1) throw new H2Error(ErrorCode.frameSize, 'PADDED HEADERS without a pad length');
    end -= payload[from]!;
    start = from + 1;
  }
  if ((flags & Flag.priority) !== 0) start += 5;
  if (start > end) throw new H2Error(ErrorCode.protocol, 'HEADERS padding or priority exceeds the frame');
  // RFC 7540 §5.3.1 makes this a stream error; ending the connection is allowed too, and
  // keeps the HPACK table of a block we would not decode out of the question.
  if ((flags & Flag.priority) !== 0 && (payload.readUInt32BE(start - 5) & 0x7fffffff) === stream) {
    throw new H2Error(ErrorCode.protocol, 'a stream depending on itself');
  }
  return payload.subarray(start, end);
}

/** A DATA frame's data, without padding (RFC 7540 §6.1). */
export function dataOf(flags: number, payload: Buffer): Buffer {
  if ((flags & Flag.padded) === 0) return payload;
  if (payload.length < 1) throw new H2Error(ErrorCode.frameSize, 'PADDED DATA without a pad length');
  const pad = payload[0]!;
  if (pad >= payload.length) throw new H2Error(ErrorCode.protocol, 'DATA padding exceeds the frame');
  return payload.subarray(1, payload.length - pad);
}

// --- writers: each writes one frame at `at` in `out` and returns the offset after it ---

export function writeFrameHeader(out: Buffer, at: number, length: number, type: number, flags: number, stream: number): number {
  assert.ok(length <= maxMaxFrameBytes && stream >= 0 && stream <= 0x7fffffff);
  out[at] = length >>> 16;
  out[at + 1] = (length >>> 8) & 0xff;
  out[at + 2] = length & 0xff;
  out[at + 3] = type;
  out[at + 4] = flags;
  out.writeUInt32BE(stream, at + 5);
  return at + frameHeaderBytes;
}

/** A frame with a payload, as a new buffer. */
export function frame(type: number, flags: number, stream: number, payload?: Uint8Array): Buffer {
  const length = payload?.length ?? 0;
  const out = Buffer.allocUnsafe(frameHeaderBytes + length);
  writeFrameHeader(out, 0, length, type, flags, stream);
  if (payload !== undefined) out.set(payload, frameHeaderBytes);
  return out;
}

export function settingsFrame(settings: ReadonlyArray<readonly [number, number]>): Buffer {
  const payload = Buffer.allocUnsafe(6 * settings.length);
  settings.forEach(([id, value], i) => { payload.writeUInt16BE(id, 6 * i); payload.writeUInt32BE(value, 6 * i + 2); });
  return frame(FrameType.settings, 0, 0, payload);
}

export const settingsAckFrame = frame(FrameType.settings, Flag.ack, 0);

export function windowUpdateFrame(stream: number, increment: number): Buffer {
  const out = Buffer.allocUnsafe(frameHeaderBytes + 4);
  writeFrameHeader(out, 0, 4, FrameType.windowUpdate, 0, stream);
  out.writeUInt32BE(increment, frameHeaderBytes);
  return out;
}

export function rstStreamFrame(stream: number, code: number): Buffer {
  const out = Buffer.allocUnsafe(frameHeaderBytes + 4);
  writeFrameHeader(out, 0, 4, FrameType.rstStream, 0, stream);
  out.writeUInt32BE(code, frameHeaderBytes);
  return out;
}

export function pingFrame(ack: boolean, opaque: Uint8Array): Buffer {
  assert.equal(opaque.length, 8);
  return frame(FrameType.ping, ack ? Flag.ack : 0, 0, opaque);
}

export function goawayFrame(lastStream: number, code: number, debug?: Uint8Array): Buffer {
  const payload = Buffer.alloc(8 + (debug?.length ?? 0));
  payload.writeUInt32BE(lastStream, 0);
  payload.writeUInt32BE(code, 4);
  if (debug !== undefined) payload.set(debug, 8);
  return frame(FrameType.goaway, 0, 0, payload);
}
