// mvccpb.KeyValue marshalled byte for byte as etcd's gogoproto code does (fields 1..6 in order,
// zero values omitted), without the generated codec's BigInt round trips: this runs for every
// write and every value read. Decoding returns views into the given buffer (no copies); callers
// hand in buffers nobody mutates (LMDB reads are copies, buffered writes are never reused).

import type { KeyValue } from '../proto/index.js';

const EMPTY = Buffer.alloc(0);

function varintSize(n: number): number {
  let s = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    s++;
  }
  return s;
}

function writeVarint(buf: Buffer, pos: number, n: number): number {
  while (n >= 128) {
    buf[pos++] = (n % 128) | 128;
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
  return pos;
}

/** Varint bytes for an int64 lease id (two's complement for negatives, as Go writes int64). */
function leaseVarint(lease: bigint): number[] {
  let v = BigInt.asUintN(64, lease);
  const out: number[] = [];
  while (v >= 128n) {
    out.push(Number(v & 127n) | 128);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}

/** Marshals a KeyValue (etcd: kv.Marshal()). Revisions/versions must be non-negative. */
export function encodeKeyValue(key: Uint8Array, value: Uint8Array, createRevision: number, modRevision: number, version: number, lease: bigint): Buffer {
  let size = 0;
  if (key.length) size += 1 + varintSize(key.length) + key.length;
  if (createRevision) size += 1 + varintSize(createRevision);
  if (modRevision) size += 1 + varintSize(modRevision);
  if (version) size += 1 + varintSize(version);
  if (value.length) size += 1 + varintSize(value.length) + value.length;
  const lv = lease !== 0n ? leaseVarint(lease) : undefined;
  if (lv) size += 1 + lv.length;
  const b = Buffer.allocUnsafe(size);
  let p = 0;
  if (key.length) {
    b[p++] = 0x0a;
    p = writeVarint(b, p, key.length);
    b.set(key, p);
    p += key.length;
  }
  if (createRevision) {
    b[p++] = 0x10;
    p = writeVarint(b, p, createRevision);
  }
  if (modRevision) {
    b[p++] = 0x18;
    p = writeVarint(b, p, modRevision);
  }
  if (version) {
    b[p++] = 0x20;
    p = writeVarint(b, p, version);
  }
  if (value.length) {
    b[p++] = 0x2a;
    p = writeVarint(b, p, value.length);
    b.set(value, p);
    p += value.length;
  }
  if (lv) {
    b[p++] = 0x30;
    for (const x of lv) b[p++] = x;
  }
  return b;
}

/** Marshals a tombstone record: etcd stores KeyValue{Key: key} under the 't'-marked revision. */
export function encodeTombstone(key: Uint8Array): Buffer {
  return encodeKeyValue(key, EMPTY, 0, 0, 0, 0n);
}

class Reader {
  pos = 0;
  constructor(readonly buf: Buffer) {}
  varint(): number {
    const b = this.buf;
    let n = 0;
    let mul = 1;
    for (;;) {
      const x = b[this.pos++];
      if (x === undefined) throw new Error('mvcc: truncated KeyValue');
      n += (x & 127) * mul;
      if (x < 128) return n;
      mul *= 128;
    }
  }
  varintBig(): bigint {
    const b = this.buf;
    let n = 0n;
    let shift = 0n;
    for (;;) {
      const x = b[this.pos++];
      if (x === undefined) throw new Error('mvcc: truncated KeyValue');
      n |= BigInt(x & 127) << shift;
      if (x < 128) return BigInt.asIntN(64, n);
      shift += 7n;
    }
  }
  bytes(): Buffer {
    const len = this.varint();
    const start = this.pos;
    this.pos += len;
    if (this.pos > this.buf.length) throw new Error('mvcc: truncated KeyValue');
    return this.buf.subarray(start, this.pos);
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 2) this.bytes();
    else if (wire === 1) this.pos += 8;
    else if (wire === 5) this.pos += 4;
    else throw new Error(`mvcc: bad wire type ${wire} in KeyValue`);
  }
}

/** Unmarshals a KeyValue; key and value are views into `buf`. */
export function decodeKeyValue(buf: Buffer): KeyValue {
  const kv: KeyValue = { key: EMPTY, createRevision: 0, modRevision: 0, version: 0, value: EMPTY, lease: 0n };
  const r = new Reader(buf);
  while (r.pos < buf.length) {
    const tag = r.varint();
    switch (tag) {
      case 0x0a: kv.key = r.bytes(); break;
      case 0x10: kv.createRevision = r.varint(); break;
      case 0x18: kv.modRevision = r.varint(); break;
      case 0x20: kv.version = r.varint(); break;
      case 0x2a: kv.value = r.bytes(); break;
      case 0x30: kv.lease = r.varintBig(); break;
      default: r.skip(tag & 7);
    }
  }
  return kv;
}

/** Only the key of a marshalled KeyValue (restore reads every record). */
export function decodeKey(buf: Buffer): Buffer {
  if (buf[0] === 0x0a) {
    const r = new Reader(buf);
    r.pos = 1;
    return r.bytes();
  }
  return decodeKeyValue(buf).key;
}
