/**
 * Accepting the `:authority` values etcd's own clients send.
 *
 * etcd 3.4's clientv3 dials per-endpoint maintenance connections (endpoint status, defrag,
 * hashkv, move-leader) with the raw endpoint as gRPC target, e.g. "http://127.0.0.1:2379",
 * and grpc-go sends that whole string as `:authority`. Go's HTTP/2 server accepts it;
 * nghttp2 (inside node:http2) refuses it ('/' is not an authority character) with
 * RST_STREAM PROTOCOL_ERROR, and node offers no switch to relax that check.
 *
 * So the client listener looks at the start of every HTTP/2 connection before handing it to
 * node:http2: it answers the client's preface with an empty SETTINGS frame itself (grpc-go
 * sends nothing more until it sees one), strips the client's ACK of it (nghttp2 never sent
 * those settings), and reads the first request's HEADERS. Connections whose authority is
 * fine (all ordinary clients) go to node:http2 natively, at full speed. The rare connection
 * with a URL-shaped authority is passed through a JS stream that rewrites that one header
 * value in every header block to one of the same length with the offending characters
 * replaced. Same length matters: HPACK dynamic-table entry sizes depend on it, so the
 * client's and nghttp2's tables stay in step without this code tracking them.
 */
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { huffmanDecode, huffmanDecodedMax } from './h2/huffman.js';
import { ErrorCode, clientPreface, goawayFrame } from './h2/frames.js';
import { HpackError } from './h2/hpack.js';

// The preface, the GOAWAY writer and the HPACK error are the own HTTP/2 server's (h2/).
export { clientPreface, goawayFrame, HpackError };

/** An empty SETTINGS frame: all defaults, which is what nghttp2 will announce anyway. */
export const emptySettingsFrame = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);

export const frameHeaders = 0x1;
export const frameSettings = 0x4;
export const frameContinuation = 0x9;
export const flagAck = 0x1;
export const flagEndHeaders = 0x4;
const flagPadded = 0x8;
const flagPriority = 0x20;
/** HPACK static table index of `:authority`. */
const authorityIndex = 1;
/** SETTINGS_MAX_FRAME_SIZE as node:http2 announces it (the protocol's default). */
const maxFrameBytes = 16384;
/** The header block fragment of a HEADERS or CONTINUATION frame (padding and priority removed). */
export function headerBlockFragment(frame: Buffer): Buffer {
  const type = frame[3]!;
  const flags = frame[4]!;
  let start = 9;
  let end = frame.length;
  if (type === frameHeaders) {
    if ((flags & flagPadded) !== 0) { end -= frame[9]!; start += 1; }
    if ((flags & flagPriority) !== 0) start += 5;
  }
  return frame.subarray(start, end);
}

function readInt(b: Buffer, pos: number, prefixBits: number): { value: number; next: number } {
  if (pos >= b.length) throw new HpackError('truncated HPACK integer');
  const max = (1 << prefixBits) - 1;
  let value = b[pos]! & max;
  pos++;
  if (value < max) return { value, next: pos };
  for (let shift = 0; shift <= 28; shift += 7) {
    if (pos >= b.length) throw new HpackError('truncated HPACK integer');
    const byte = b[pos++]!;
    value += (byte & 0x7f) * 2 ** shift;
    if (byte < 0x80) return { value, next: pos };
  }
  throw new HpackError('HPACK integer overflow');
}

function writeInt(value: number, prefixBits: number, firstByteHigh: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([firstByteHigh | value]);
  const bytes = [firstByteHigh | max];
  value -= max;
  while (value >= 0x80) { bytes.push((value & 0x7f) | 0x80); value = Math.floor(value / 128); }
  bytes.push(value);
  return Buffer.from(bytes);
}

/** Reads an HPACK string literal at `pos`: its decoded bytes and where it ends. */
function readString(b: Buffer, pos: number): { value: Buffer; next: number } {
  const huffman = (b[pos]! & 0x80) !== 0;
  const { value: len, next } = readInt(b, pos, 7);
  const end = next + len;
  if (end > b.length) throw new HpackError('truncated HPACK string');
  if (!huffman) return { value: b.subarray(next, end), next: end };
  const decoded = Buffer.allocUnsafe(huffmanDecodedMax(len));
  const n = huffmanDecode(b, next, end, decoded); // sized for any decoding: only bad code fails
  if (n < 0) throw new HpackError('bad HPACK Huffman string (EOS inside, or bad padding)');
  return { value: decoded.subarray(0, n), next: end };
}

/** Characters nghttp2 accepts in an authority (RFC 3986 unreserved, sub-delims, ':', '@', '[', ']', '%'). */
function isAuthorityChar(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
    || '-._~!$&\'()*+,;=:@[]%'.includes(String.fromCharCode(c));
}

/**
 * Rewrites every `:authority` literal (static name index 1) in a header block whose value
 * has characters nghttp2 refuses, keeping its decoded length. Returns undefined when the
 * block needs no change.
 */
export function rewriteAuthority(block: Buffer): Buffer | undefined {
  const parts: Buffer[] = [];
  let copiedTo = 0;
  let changed = false;
  let pos = 0;
  while (pos < block.length) {
    const first = block[pos]!;
    if (first & 0x80) { pos = readInt(block, pos, 7).next; continue; } // indexed field
    if ((first & 0xe0) === 0x20) { pos = readInt(block, pos, 5).next; continue; } // table size update
    const prefixBits = (first & 0x40) ? 6 : 4;
    const { value: nameIndex, next } = readInt(block, pos, prefixBits);
    pos = next;
    let isAuthority = nameIndex === authorityIndex;
    if (nameIndex === 0) {
      const name = readString(block, pos);
      isAuthority = name.value.toString('latin1') === ':authority';
      pos = name.next;
    }
    const valueStart = pos;
    const value = readString(block, pos);
    pos = value.next;
    if (!isAuthority || value.value.every(isAuthorityChar)) continue;
    const fixed = Buffer.from(value.value);
    for (let i = 0; i < fixed.length; i++) if (!isAuthorityChar(fixed[i]!)) fixed[i] = 0x2d; // '-'
    parts.push(block.subarray(copiedTo, valueStart), writeInt(fixed.length, 7, 0x00), fixed);
    copiedTo = pos;
    changed = true;
  }
  if (!changed) return undefined;
  parts.push(block.subarray(copiedTo));
  return Buffer.concat(parts);
}

/**
 * A socket stand-in for node:http2 that rewrites `:authority` in every header block the
 * client sends (HEADERS + CONTINUATION are merged, then re-split at the frame size limit).
 *
 * Input is hostile: a frame longer than node:http2 accepts, or a header block this parser
 * cannot decode, is passed through unchanged for nghttp2 to refuse as the protocol says
 * (GOAWAY FRAME_SIZE_ERROR / COMPRESSION_ERROR); a header block longer than
 * maxHeaderBlockBytes ends the connection (GOAWAY ENHANCE_YOUR_CALM).
 */
export class AuthorityRewritingSocket extends Duplex {
  /** Bytes of an incomplete frame, kept as chunks (joined once the frame is whole). */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private prefaceLeft = clientPreface.length;
  private block: Buffer[] = [];
  private blockBytes = 0;
  private blockHeader: { flags: number; streamId: number; priority: Buffer | undefined } | undefined;
  /** Set once a frame is not ours to parse: from then on bytes flow through as they are. */
  private passthrough = false;

  constructor(private readonly socket: Socket, initial: Buffer, private readonly maxHeaderBlockBytes = 256 * 1024) {
    super();
    socket.on('data', (d: Buffer) => this.onDataGuarded(d));
    socket.on('end', () => this.push(null));
    socket.on('close', () => this.destroy());
    socket.on('error', (e) => this.destroy(e));
    this.onDataGuarded(initial);
  }

  /** Per-connection code: an error here ends this connection, never the process. */
  private onDataGuarded(chunk: Buffer): void {
    try {
      this.onData(chunk);
    } catch (e) {
      this.destroy(e as Error);
    }
  }

  get remoteAddress(): string | undefined { return this.socket.remoteAddress; }
  get remotePort(): number | undefined { return this.socket.remotePort; }
  get remoteFamily(): string | undefined { return this.socket.remoteFamily; }

  private onData(chunk: Buffer): void {
    const out: Buffer[] = [];
    if (this.prefaceLeft > 0) {
      const n = Math.min(this.prefaceLeft, chunk.length);
      out.push(chunk.subarray(0, n));
      chunk = chunk.subarray(n);
      this.prefaceLeft -= n;
    }
    if (this.passthrough) out.push(chunk);
    else if (!this.takeFrames(chunk, out)) return;
    if (out.length > 0 && !this.push(out.length === 1 ? out[0] : Buffer.concat(out))) this.socket.pause();
  }

  /** Appends the complete frames in `pending + chunk` to `out`; false when the connection was ended. */
  private takeFrames(chunk: Buffer, out: Buffer[]): boolean {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    for (;;) {
      if (this.pendingBytes < 9) return true;
      const head = this.pending[0]!.length >= 9 ? this.pending[0]! : this.joinPending();
      const len = head.readUIntBE(0, 3);
      if (len > maxFrameBytes) {
        // Not a frame nghttp2 accepts: let it say so.
        this.passthrough = true;
        out.push(this.joinPending());
        this.pending = [];
        this.pendingBytes = 0;
        return true;
      }
      if (this.pendingBytes < 9 + len) return true;
      const all = this.joinPending();
      const frame = all.subarray(0, 9 + len);
      const rest = all.subarray(9 + len);
      this.pending = rest.length > 0 ? [rest] : [];
      this.pendingBytes = rest.length;
      if (!this.takeFrame(frame, out)) return false;
    }
  }

  private joinPending(): Buffer {
    if (this.pending.length > 1) this.pending = [Buffer.concat(this.pending, this.pendingBytes)];
    return this.pending[0]!;
  }

  private takeFrame(frame: Buffer, out: Buffer[]): boolean {
    const type = frame[3]!;
    const flags = frame[4]!;
    if (type !== frameHeaders && !(type === frameContinuation && this.blockHeader)) {
      out.push(frame);
      return true;
    }
    if (type === frameHeaders) {
      // Keep the priority fields to re-add them in front of the block.
      const off = 9 + ((flags & flagPadded) !== 0 ? 1 : 0);
      const priority = (flags & flagPriority) !== 0 ? Buffer.from(frame.subarray(off, off + 5)) : undefined;
      this.blockHeader = { flags: flags & ~(flagPadded | flagPriority | flagEndHeaders), streamId: frame.readUInt32BE(5), priority };
    }
    const fragment = headerBlockFragment(frame);
    this.blockBytes += fragment.length;
    if (this.blockBytes > this.maxHeaderBlockBytes) {
      this.socket.end(goawayFrame(0, ErrorCode.enhanceYourCalm));
      this.destroy();
      return false;
    }
    this.block.push(Buffer.from(fragment));
    if ((flags & flagEndHeaders) !== 0) out.push(...this.flushBlock());
    return true;
  }

  /** The merged header block, authority rewritten, as HEADERS + CONTINUATION frames within the frame size limit. */
  private flushBlock(): Buffer[] {
    const h = this.blockHeader!;
    const raw = Buffer.concat(this.block);
    this.block = [];
    this.blockBytes = 0;
    this.blockHeader = undefined;
    let body: Buffer = raw;
    try {
      body = rewriteAuthority(raw) ?? raw;
    } catch (e) {
      if (!(e instanceof HpackError)) throw e;
      // Unchanged: nghttp2 decodes the same bytes and answers GOAWAY COMPRESSION_ERROR.
    }
    const payload = h.priority ? Buffer.concat([h.priority, body]) : body;
    const frames: Buffer[] = [];
    for (let off = 0; off === 0 || off < payload.length; off += maxFrameBytes) {
      const part = payload.subarray(off, off + maxFrameBytes);
      const last = off + maxFrameBytes >= payload.length;
      const head = Buffer.alloc(9);
      head.writeUIntBE(part.length, 0, 3);
      head[3] = off === 0 ? frameHeaders : frameContinuation;
      head[4] = (off === 0 ? h.flags | (h.priority ? flagPriority : 0) : 0) | (last ? flagEndHeaders : 0);
      head.writeUInt32BE(h.streamId, 5);
      frames.push(head, part);
    }
    return frames;
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.socket.write(chunk, cb);
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.socket.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.socket.destroy(err ?? undefined);
    cb(err);
  }

  setNoDelay(v?: boolean): this { this.socket.setNoDelay(v); return this; }
  setKeepAlive(e?: boolean, d?: number): this { this.socket.setKeepAlive(e, d); return this; }
  setTimeout(ms: number, cb?: () => void): this { this.socket.setTimeout(ms, cb); return this; }
}
