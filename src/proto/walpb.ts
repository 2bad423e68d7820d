/**
 * etcd's walpb (wal/walpb/record.proto) and snappb (etcdserver/api/snap/snappb/snap.proto),
 * hand-written with etcd's field numbers. gogoproto emits the non-nullable scalar fields
 * always and the nullable `bytes` fields only when set; these codecs do the same, so the
 * bytes match what etcd writes.
 *
 *   message Record   { int64 type = 1; uint32 crc = 2; bytes data = 3; }
 *   message Snapshot { uint64 index = 1; uint64 term = 2; }            // walpb
 *   message snapshot { uint32 crc = 1; bytes data = 2; }               // snappb
 */

import { Reader, Writer, sizeVarint, WIRE_VARINT, WIRE_BYTES } from './wire.js';

/** One WAL record. `data` absent means the field is not emitted (etcd's crc records). */
export interface WalRecord {
  type: number;
  crc: number;
  data?: Uint8Array;
}

/** walpb.Snapshot: the raft index and term a snapshot was taken at. */
export interface WalSnapshot {
  index: number;
  term: number;
}

/** snappb.Snapshot: a `.snap` file's content, `crc` being CRC32C of `data`. */
export interface SnapFile {
  crc: number;
  data?: Uint8Array;
}

const TAG_1_VARINT = (1 << 3) | WIRE_VARINT;
const TAG_2_VARINT = (2 << 3) | WIRE_VARINT;
const TAG_2_BYTES = (2 << 3) | WIRE_BYTES;
const TAG_3_BYTES = (3 << 3) | WIRE_BYTES;

export function sizeWalRecord(r: WalRecord): number {
  let n = 1 + sizeVarint(r.type) + 1 + sizeVarint(r.crc >>> 0);
  if (r.data !== undefined) n += 1 + sizeVarint(r.data.length) + r.data.length;
  return n;
}

export function encodeWalRecord(r: WalRecord): Uint8Array {
  const w = new Writer(sizeWalRecord(r));
  w.byte(TAG_1_VARINT);
  w.varint(r.type);
  w.byte(TAG_2_VARINT);
  w.varint(r.crc >>> 0);
  if (r.data !== undefined) {
    w.byte(TAG_3_BYTES);
    w.bytes(r.data);
  }
  return w.finish();
}

/**
 * Decodes a record from `buf[start, end)`. `data` is a view into `buf` (no copy): the WAL
 * reader decodes the entry inside it at once and keeps only the decoded copy.
 */
export function decodeWalRecord(buf: Uint8Array, start = 0, end = buf.length): WalRecord {
  const r = new Reader(buf, start, end);
  const rec: WalRecord = { type: 0, crc: 0 };
  while (!r.done()) {
    const tag = r.tag();
    switch (tag) {
      case TAG_1_VARINT:
        rec.type = r.varint();
        break;
      case TAG_2_VARINT:
        rec.crc = r.varint() >>> 0;
        break;
      case TAG_3_BYTES: {
        const [s, e] = r.sub();
        rec.data = buf.subarray(s, e);
        break;
      }
      default:
        if (tag >>> 3 === 0) throw new Error('walpb: illegal tag 0');
        r.skip(tag & 7);
    }
  }
  return rec;
}

export function encodeWalSnapshot(s: WalSnapshot): Uint8Array {
  const w = new Writer(2 + sizeVarint(s.index) + sizeVarint(s.term));
  w.byte(TAG_1_VARINT);
  w.varint(s.index);
  w.byte(TAG_2_VARINT);
  w.varint(s.term);
  return w.finish();
}

export function decodeWalSnapshot(buf: Uint8Array): WalSnapshot {
  const r = new Reader(buf);
  const s: WalSnapshot = { index: 0, term: 0 };
  while (!r.done()) {
    const tag = r.tag();
    if (tag === TAG_1_VARINT) s.index = r.varint();
    else if (tag === TAG_2_VARINT) s.term = r.varint();
    else if (tag >>> 3 === 0) throw new Error('walpb: illegal tag 0');
    else r.skip(tag & 7);
  }
  return s;
}

export function encodeSnapFile(s: SnapFile): Uint8Array {
  let n = 1 + sizeVarint(s.crc >>> 0);
  if (s.data !== undefined) n += 1 + sizeVarint(s.data.length) + s.data.length;
  const w = new Writer(n);
  w.byte(TAG_1_VARINT);
  w.varint(s.crc >>> 0);
  if (s.data !== undefined) {
    w.byte(TAG_2_BYTES);
    w.bytes(s.data);
  }
  return w.finish();
}

/** Decodes a `.snap` file; `data` is a view into `buf`. */
export function decodeSnapFile(buf: Uint8Array): SnapFile {
  const r = new Reader(buf);
  const s: SnapFile = { crc: 0 };
  while (!r.done()) {
    const tag = r.tag();
    if (tag === TAG_1_VARINT) s.crc = r.varint() >>> 0;
    else if (tag === TAG_2_BYTES) {
      const [a, b] = r.sub();
      s.data = buf.subarray(a, b);
    } else if (tag >>> 3 === 0) throw new Error('snappb: illegal tag 0');
    else r.skip(tag & 7);
  }
  return s;
}
