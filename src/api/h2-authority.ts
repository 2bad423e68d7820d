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
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
// hpack.js's bit-level decoder, used only to un-Huffman one string value.
// Loaded through the package's index: requiring lib/hpack/decoder.js first breaks the
// package's own circular requires for anyone loading hpack.js after us.
const HpackDecoder = (require('hpack.js') as { decoder: {
  create(): { push(b: Buffer): void; decodeStr(): number[] | Buffer };
} }).decoder;

export const clientPreface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
/** An empty SETTINGS frame: all defaults, which is what nghttp2 will announce anyway. */
export const emptySettingsFrame = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);

const frameHeaders = 0x1;
const frameSettings = 0x4;
const frameContinuation = 0x9;
const flagAck = 0x1;
const flagEndHeaders = 0x4;
const flagPadded = 0x8;
const flagPriority = 0x20;
/** HPACK static table index of `:authority`. */
const authorityIndex = 1;

export interface ClientStart {
  /** Byte range of the client's ACK of our SETTINGS, once seen. */
  ack?: { start: number; end: number };
  /** Offset just past the first complete header block (HEADERS + CONTINUATIONs), once seen. */
  headersEnd?: number;
  /** The first header block carries an authority node:http2 would refuse. */
  badAuthority: boolean;
}

/** Scans the frames after the preface (`buf` starts with the 24-byte preface). */
export function scanClientStart(buf: Buffer): ClientStart {
  const out: ClientStart = { badAuthority: false };
  let pos = clientPreface.length;
  const block: Buffer[] = [];
  while (pos + 9 <= buf.length) {
    const len = buf.readUIntBE(pos, 3);
    const type = buf[pos + 3]!;
    const flags = buf[pos + 4]!;
    const end = pos + 9 + len;
    if (end > buf.length) break;
    if (type === frameSettings && (flags & flagAck) !== 0 && out.ack === undefined) out.ack = { start: pos, end };
    if (out.headersEnd === undefined && (type === frameHeaders || (type === frameContinuation && block.length > 0))) {
      block.push(headerBlockFragment(buf.subarray(pos, end)));
      if ((flags & flagEndHeaders) !== 0) {
        out.headersEnd = end;
        out.badAuthority = rewriteAuthority(Buffer.concat(block)) !== undefined;
      }
    }
    pos = end;
  }
  return out;
}

/** The header block fragment of a HEADERS or CONTINUATION frame (padding and priority removed). */
function headerBlockFragment(frame: Buffer): Buffer {
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
  const max = (1 << prefixBits) - 1;
  let value = b[pos]! & max;
  pos++;
  if (value < max) return { value, next: pos };
  let shift = 0;
  for (;;) {
    const byte = b[pos++]!;
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    if (byte < 0x80) return { value, next: pos };
    if (pos >= b.length) throw new Error('truncated HPACK integer');
  }
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
  if (end > b.length) throw new Error('truncated HPACK string');
  if (!huffman) return { value: b.subarray(next, end), next: end };
  const d = HpackDecoder.create();
  d.push(b.subarray(pos, end));
  return { value: Buffer.from(d.decodeStr()), next: end };
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
 * client sends (HEADERS + CONTINUATION are merged into one HEADERS frame).
 */
export class AuthorityRewritingSocket extends Duplex {
  private pending: Buffer;
  private prefaceLeft = clientPreface.length;
  private block: Buffer[] = [];
  private blockHeader: { flags: number; streamId: number } | undefined;

  constructor(private readonly socket: Socket, initial: Buffer) {
    super();
    this.pending = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('end', () => this.push(null));
    socket.on('close', () => this.destroy());
    socket.on('error', (e) => this.destroy(e));
    this.onData(initial);
  }

  get remoteAddress(): string | undefined { return this.socket.remoteAddress; }
  get remotePort(): number | undefined { return this.socket.remotePort; }
  get remoteFamily(): string | undefined { return this.socket.remoteFamily; }

  private onData(chunk: Buffer): void {
    let buf = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    const out: Buffer[] = [];
    if (this.prefaceLeft > 0) {
      const n = Math.min(this.prefaceLeft, buf.length);
      out.push(buf.subarray(0, n));
      buf = buf.subarray(n);
      this.prefaceLeft -= n;
    }
    let pos = 0;
    while (pos + 9 <= buf.length) {
      const len = buf.readUIntBE(pos, 3);
      const end = pos + 9 + len;
      if (end > buf.length) break;
      const frame = buf.subarray(pos, end);
      const type = frame[3]!;
      if (type === frameHeaders || (type === frameContinuation && this.blockHeader)) {
        if (type === frameHeaders) {
          this.blockHeader = { flags: frame[4]! & ~(flagPadded | flagPriority | flagEndHeaders), streamId: frame.readUInt32BE(5) };
          if ((frame[4]! & flagPriority) !== 0) {
            // Keep the priority fields: re-add them in front of the block.
            const off = 9 + ((frame[4]! & flagPadded) !== 0 ? 1 : 0);
            this.block.push(frame.subarray(off, off + 5));
            this.blockHeader.flags |= flagPriority;
          }
        }
        this.block.push(headerBlockFragment(frame));
        if ((frame[4]! & flagEndHeaders) !== 0) out.push(this.flushBlock());
      } else {
        out.push(frame);
      }
      pos = end;
    }
    this.pending = Buffer.from(buf.subarray(pos));
    if (out.length > 0 && !this.push(out.length === 1 ? out[0] : Buffer.concat(out))) this.socket.pause();
  }

  private flushBlock(): Buffer {
    const h = this.blockHeader!;
    const raw = Buffer.concat(this.block);
    const prio = (h.flags & flagPriority) !== 0 ? raw.subarray(0, 5) : Buffer.alloc(0);
    const body = raw.subarray(prio.length);
    const payload = Buffer.concat([prio, rewriteAuthority(body) ?? body]);
    const head = Buffer.alloc(9);
    head.writeUIntBE(payload.length, 0, 3);
    head[3] = frameHeaders;
    head[4] = h.flags | flagEndHeaders;
    head.writeUInt32BE(h.streamId, 5);
    this.block = [];
    this.blockHeader = undefined;
    return Buffer.concat([head, payload]);
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
