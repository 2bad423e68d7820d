/**
 * The bytes of a new HTTP/2 connection before it is handed to node:http2 (see
 * h2-authority.ts for why the listener looks at them): the client preface, the client's
 * frames up to its ACK of our SETTINGS, and the first request's header block.
 *
 * Anyone can open a connection and send anything, so this buffer is bounded in bytes
 * (`maxBytes`; the listener also bounds it in time) and scanned incrementally: each byte is
 * copied once and each frame header read once, however the input is chunked.
 */
import {
  HpackError, clientPreface, flagAck, flagEndHeaders, frameContinuation, frameHeaders, frameSettings, headerBlockFragment, rewriteAuthority,
} from './h2-authority.js';

const frameHeaderBytes = 9;
/** Frames a client may send before its first request that need no answer: SETTINGS, PRIORITY, WINDOW_UPDATE. */
const quietBeforeRequest = new Set([frameSettings, 0x2, 0x8]);

export class HandshakeBuffer {
  private buf: Buffer;
  private filled = 0;
  /** Offset of the next frame not yet scanned (frames start after the preface). */
  private scanned = clientPreface.length;
  private readonly block: Buffer[] = [];
  /** Byte range of the client's ACK of our SETTINGS, once seen. */
  ack: { start: number; end: number } | undefined;
  /** Offset just past the first complete header block (HEADERS + CONTINUATIONs), once seen. */
  headersEnd: number | undefined;
  /** The first header block carries an authority node:http2 would refuse. */
  badAuthority = false;
  /**
   * Before its first request the client sent a frame that wants an answer (a PING, say) or
   * that only node:http2 can judge: waiting longer for the request would stall it.
   */
  handOverNow = false;

  constructor(readonly maxBytes: number) {
    this.buf = Buffer.allocUnsafe(Math.min(4096, maxBytes));
  }

  get length(): number { return this.filled; }

  /** The bytes received so far (a view; valid until the next push). */
  get bytes(): Buffer { return this.buf.subarray(0, this.filled); }

  /** Appends a chunk; false (and nothing appended) when that would exceed maxBytes. */
  push(chunk: Buffer): boolean {
    const need = this.filled + chunk.length;
    if (need > this.maxBytes) return false;
    if (need > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.min(this.maxBytes, Math.max(need, this.buf.length * 2)));
      this.buf.copy(grown, 0, 0, this.filled);
      this.buf = grown;
    }
    chunk.copy(this.buf, this.filled);
    this.filled = need;
    return true;
  }

  /** True while the bytes so far are a prefix of the HTTP/2 client preface (or all of it and more). */
  matchesPreface(): boolean {
    const n = Math.min(this.filled, clientPreface.length);
    return this.buf.compare(clientPreface, 0, n, 0, n) === 0;
  }

  /** Reads the frames completed since the last call. Call only once the whole preface is in. */
  scan(): void {
    const buf = this.buf;
    let pos = this.scanned;
    while (pos + frameHeaderBytes <= this.filled) {
      const end = pos + frameHeaderBytes + buf.readUIntBE(pos, 3);
      if (end > this.filled) break;
      this.scanFrame(buf.subarray(pos, end), pos);
      pos = end;
    }
    this.scanned = pos;
  }

  private scanFrame(frame: Buffer, at: number): void {
    const type = frame[3]!;
    const flags = frame[4]!;
    if (type === frameSettings && (flags & flagAck) !== 0 && this.ack === undefined) {
      this.ack = { start: at, end: at + frame.length };
    }
    if (this.headersEnd !== undefined) return;
    if (!quietBeforeRequest.has(type) && type !== frameHeaders && type !== frameContinuation) this.handOverNow = true;
    if (type !== frameHeaders && !(type === frameContinuation && this.block.length > 0)) return;
    // Copied: the fragments outlive `buf` when it grows.
    this.block.push(Buffer.from(headerBlockFragment(frame)));
    if ((flags & flagEndHeaders) === 0) return;
    this.headersEnd = at + frame.length;
    this.badAuthority = needsRewrite(Buffer.concat(this.block));
    this.block.length = 0;
  }
}

/**
 * Whether a header block needs the authority rewrite. A block we cannot decode is left to
 * node:http2, whose HPACK decoder answers it as the protocol says (GOAWAY COMPRESSION_ERROR
 * for this connection only).
 */
function needsRewrite(block: Buffer): boolean {
  try {
    return rewriteAuthority(block) !== undefined;
  } catch (e) {
    if (e instanceof HpackError) return false;
    throw e;
  }
}
