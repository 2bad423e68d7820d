/**
 * Minimal protobuf wire helpers shared by the hand-written codecs (raftpb, walpb, ...).
 *
 * Encoding is size-first, as gogoproto does it: a codec computes the exact byte length of a
 * message, allocates once, then writes front to back. That avoids growable buffers and keeps
 * nested length prefixes exact without a second pass over the output.
 *
 * 64-bit fields come in two flavours: `number` for terms, indexes and sizes (exact below 2^53)
 * and `bigint` for identifiers, which use all 64 bits.
 */

import { wireRules } from './wire-rules.js';

const TWO_32 = 4294967296;

/** Wire types. */
export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_BYTES = 2;
export const WIRE_FIXED32 = 5;
/** Deprecated groups: skipped as unknown fields, never decoded. */
const WIRE_START_GROUP = 3;
const WIRE_END_GROUP = 4;

/** Bytes needed for the varint encoding of a non-negative safe integer. */
export function sizeVarint(v: number): number {
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  let n = 4;
  v = Math.floor(v / 0x10000000);
  while (v > 0) {
    n++;
    v = Math.floor(v / 128);
  }
  return n;
}

/** Bytes needed for the varint encoding of an unsigned 64-bit bigint. */
export function sizeVarintBig(v: bigint): number {
  if (v <= 0x1fffffffffffffn && v >= 0n) return sizeVarint(Number(v));
  // Above 2^53 the high 32 bits are non-zero: 7 bits per byte of the 64 - clz significant bits.
  const hi = Number(BigInt.asUintN(64, v) >> 32n);
  return Math.ceil((64 - Math.clz32(hi)) / 7);
}

/** Size of a length-delimited field's payload prefix plus payload (tag not included). */
export function sizeBytesField(len: number): number {
  return sizeVarint(len) + len;
}

/**
 * Writes the varint of a non-negative safe integer at `buf[pos]` and returns the position
 * after it (for codecs that fill their own buffers: the WAL's record encoder, mvcc's KeyValue).
 */
export function writeVarint(buf: Uint8Array, pos: number, v: number): number {
  if (v < TWO_32) {
    // Fast path with 32-bit arithmetic.
    v = v >>> 0;
    while (v >= 0x80) {
      buf[pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
  } else {
    while (v >= 0x80) {
      buf[pos++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
  }
  buf[pos++] = v;
  return pos;
}

/** As writeVarint, for a 64-bit bigint (negative values wrap as uint64, as Go writes int64). */
export function writeVarintBig(buf: Uint8Array, pos: number, v: bigint): number {
  if (v >= 0n && v <= 0x1fffffffffffffn) return writeVarint(buf, pos, Number(v));
  // Two 32-bit halves: one BigInt split instead of BigInt arithmetic per byte.
  v = BigInt.asUintN(64, v);
  return writeVarint64(buf, pos, Number(v & 0xffffffffn), Number(v >> 32n));
}

/** The varint of the uint64 `hi * 2^32 + lo` (both unsigned 32-bit numbers), no bigint needed. */
function writeVarint64(buf: Uint8Array, pos: number, lo: number, hi: number): number {
  while (hi !== 0 || lo >= 0x80) {
    buf[pos++] = (lo & 0x7f) | 0x80;
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi >>>= 7;
  }
  buf[pos++] = lo;
  return pos;
}

/** Writes into a buffer of known size. Callers size first, then write. */
export class Writer {
  readonly buf: Uint8Array;
  pos = 0;

  constructor(size: number) {
    this.buf = new Uint8Array(size);
  }

  /** One raw byte (tags below 128 are a single byte). */
  byte(b: number): void {
    this.buf[this.pos++] = b;
  }

  /** Unsigned varint of a non-negative safe integer. */
  varint(v: number): void {
    this.pos = writeVarint(this.buf, this.pos, v);
  }

  /** Unsigned varint of a 64-bit bigint (negative values wrap as uint64). */
  varintBig(v: bigint): void {
    this.pos = writeVarintBig(this.buf, this.pos, v);
  }

  bool(b: boolean): void {
    this.buf[this.pos++] = b ? 1 : 0;
  }

  /** Length prefix then the bytes. */
  bytes(b: Uint8Array): void {
    this.varint(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** Raw bytes with no prefix. */
  raw(b: Uint8Array): void {
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** The written bytes; asserts the size computation matched. */
  finish(): Uint8Array {
    if (this.pos !== this.buf.length) {
      throw new Error(`wire: size mismatch, wrote ${this.pos} of ${this.buf.length}`);
    }
    return this.buf;
  }
}

/** Reads a protobuf message from a byte range. Throws on truncation or malformed varints. */
export class Reader {
  readonly buf: Uint8Array;
  pos: number;
  readonly end: number;

  constructor(buf: Uint8Array, start = 0, end = buf.length) {
    this.buf = buf;
    this.pos = start;
    this.end = end;
  }

  done(): boolean {
    return this.pos >= this.end;
  }

  /** A field tag: returns (fieldNumber << 3) | wireType, as the raw varint. */
  tag(): number {
    return this.varint();
  }

  /** Unsigned varint as a number (exact below 2^53). */
  varint(): number {
    const buf = this.buf;
    let pos = this.pos;
    const end = this.end;
    // Most varints are tags and small lengths: one byte.
    if (pos < end && buf[pos] < 0x80) {
      this.pos = pos + 1;
      return buf[pos];
    }
    let result = 0;
    let shift = 0;
    for (;;) {
      if (pos >= end) throw new Error('wire: truncated varint');
      const b = buf[pos++];
      // Below 28 bits the partial result stays a positive int32, so bit operations are exact.
      if (shift < 28) result |= (b & 0x7f) << shift;
      else result += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) break;
      shift += 7;
      if (shift >= 70) throw new Error('wire: varint too long');
    }
    this.pos = pos;
    return result;
  }

  /** Unsigned varint as a 64-bit bigint. */
  varintBig(): bigint {
    // Accumulates two 32-bit halves (bits past 64 drop, as Go's uint64 does) and makes one
    // BigInt at the end instead of BigInt arithmetic per byte.
    const buf = this.buf;
    let pos = this.pos;
    let lo = 0;
    let hi = 0;
    let shift = 0;
    for (;;) {
      if (pos >= this.end) throw new Error('wire: truncated varint');
      const b = buf[pos++] & 0xff;
      const bits = b & 0x7f;
      if (shift < 28) lo |= bits << shift;
      else if (shift === 28) {
        lo |= bits << 28; // the low 4 bits land in lo, the rest in hi
        hi = bits >>> 4;
      } else hi |= bits << (shift - 32);
      if (b < 0x80) break;
      shift += 7;
      if (shift >= 70) throw new Error('wire: varint too long');
    }
    this.pos = pos;
    lo >>>= 0;
    hi >>>= 0;
    return hi === 0 ? BigInt(lo) : (BigInt(hi) << 32n) | BigInt(lo);
  }

  bool(): boolean {
    return this.varint() !== 0;
  }

  /**
   * Reads a length prefix and steps over the payload it announces; returns the payload's
   * start (its end is the new pos). `what` names the field in the truncation error.
   */
  private payloadStart(what: 'bytes' | 'message' | 'field'): number {
    const at = this.pos;
    const len = this.varint();
    const start = this.pos;
    const stop = start + len;
    if (stop > this.end) {
      // A length with bit 63 set is negative to gogoproto (a Go int), which says so before
      // looking at what is left. Read again exactly: a double cannot hold every such value.
      if (len >= 2 ** 62 && new Reader(this.buf, at, start).varintBig() >= 1n << 63n) throw new Error(negativeLength);
      throw new Error(`wire: truncated ${what}`);
    }
    this.pos = stop;
    return start;
  }

  /** A length-delimited field's payload, as a copy (safe to keep after the input is reused). */
  bytes(): Uint8Array {
    const start = this.payloadStart('bytes');
    // Uint8Array's slice copies, but Buffer's is a view: copy explicitly, since callers
    // (the WAL reader) hand in Buffers over read windows that are reused.
    return Uint8Array.prototype.slice.call(this.buf, start, this.pos);
  }

  /**
   * A length-delimited field's payload as a view of the input (a Buffer's subarray is a
   * Buffer): no copy, so only for inputs nobody reuses or mutates while the view lives.
   */
  view(): Uint8Array {
    const start = this.payloadStart('bytes');
    return this.buf.subarray(start, this.pos);
  }

  /**
   * A length-delimited field, stepped over: returns where its payload starts (it ends at the
   * new `pos`). sub() without the array, for hot paths that decode in place.
   */
  payload(): number {
    return this.payloadStart('message');
  }

  /** A length-delimited field's bounds, for decoding a nested message in place. */
  sub(): [number, number] {
    const start = this.payloadStart('message');
    return [start, this.pos];
  }

  /** Skips a field of the given wire type (unknown fields are ignored). */
  skip(wireType: number): void {
    switch (wireType) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_FIXED64:
        this.pos += 8;
        break;
      case WIRE_BYTES:
        this.payloadStart('field');
        return;
      case WIRE_FIXED32:
        this.pos += 4;
        break;
      case WIRE_START_GROUP:
        this.skipGroupBody();
        return;
      default:
        throw new Error(`wire: unsupported wire type ${wireType}`);
    }
    if (this.pos > this.end) throw new Error('wire: truncated field');
  }

  /** A (deprecated) group's fields up to its matching end-group tag, as gogo's skip walks them. */
  private skipGroupBody(): void {
    for (let depth = 1; depth > 0;) {
      const wireType = this.varint() % 8;
      if (wireType === WIRE_START_GROUP) depth++;
      else if (wireType === WIRE_END_GROUP) depth--;
      else this.skip(wireType);
    }
  }
}

/** The Reader's error for a length prefix of 2^63 or more (see payloadStart). */
const negativeLength = 'wire: negative length';

/**
 * Walks an encoded message the way gogoproto's generated Unmarshal does and returns the error
 * etcd would report, or undefined when it is well formed: a cut-short varint or payload is
 * "unexpected EOF", a tag of field 0 is an illegal tag, an end-group or wire type 6/7 is
 * refused; for the messages wire-rules.ts lists, a known field of another wire type is
 * refused and nested messages are walked too (their errors name them, as gogo's do). The
 * generated TypeScript codec silently stops at a tag of 0 and skips a known field of the
 * wrong wire type instead, which would let malformed bytes through to whoever reuses them
 * (the put fast path proposes the client's own bytes).
 */
export function wireShapeError(buf: Uint8Array, messageName: string): string | undefined {
  try {
    return shapeErrorIn(new Reader(buf), messageName);
  } catch (e) {
    const message = (e as Error).message;
    if (message === negativeLength) return 'proto: negative length found during unmarshaling';
    return /too long/.test(message) ? 'proto: integer overflow' : 'unexpected EOF';
  }
}

function shapeErrorIn(r: Reader, messageName: string): string | undefined {
  const rules = wireRules.get(messageName);
  while (!r.done()) {
    const tag = r.varint();
    const wireType = tag % 8;
    const fieldNum = Math.floor(tag / 8);
    if (wireType === 4) return `proto: ${messageName}: wiretype end group for non-group`;
    if (fieldNum <= 0 || fieldNum > 0x7fffffff) return `proto: ${messageName}: illegal tag ${fieldNum | 0} (wire type ${tag})`;
    const rule = rules?.get(fieldNum);
    if (rule === undefined) {
      if (wireType > 5) return `proto: illegal wireType ${wireType}`;
      r.skip(wireType);
      continue;
    }
    if (wireType !== rule.wire) return `proto: wrong wireType = ${wireType} for field ${rule.name}`;
    if (rule.message === undefined) { r.skip(wireType); continue; }
    const start = r.payload();
    const nested = shapeErrorIn(new Reader(r.buf, start, r.pos), rule.message);
    if (nested !== undefined) return nested;
  }
  return undefined;
}
