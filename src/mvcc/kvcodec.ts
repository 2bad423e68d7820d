// mvccpb.KeyValue marshalled byte for byte as etcd's gogoproto code does (fields 1..6 in order,
// zero values omitted), without the generated codec's BigInt round trips: this runs for every
// write and every value read. Decoding returns views into the given buffer (no copies); callers
// hand in buffers nobody mutates (LMDB reads are copies, buffered writes are never reused).

import type { KeyValue } from '../proto/index.js';
import { Reader, sizeVarint, sizeVarintBig, writeVarint, writeVarintBig } from '../proto/index.js';

const EMPTY = Buffer.alloc(0);

/** Marshals a KeyValue (etcd: kv.Marshal()). Revisions/versions must be non-negative. */
export function encodeKeyValue(key: Uint8Array, value: Uint8Array, createRevision: number, modRevision: number, version: number, lease: bigint): Buffer {
  let size = 0;
  if (key.length) size += 1 + sizeVarint(key.length) + key.length;
  if (createRevision) size += 1 + sizeVarint(createRevision);
  if (modRevision) size += 1 + sizeVarint(modRevision);
  if (version) size += 1 + sizeVarint(version);
  if (value.length) size += 1 + sizeVarint(value.length) + value.length;
  if (lease !== 0n) size += 1 + sizeVarintBig(lease);
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
  if (lease !== 0n) {
    b[p++] = 0x30;
    writeVarintBig(b, p, lease);
  }
  return b;
}

/** Marshals a tombstone record: etcd stores KeyValue{Key: key} under the 't'-marked revision. */
export function encodeTombstone(key: Uint8Array): Buffer {
  return encodeKeyValue(key, EMPTY, 0, 0, 0, 0n);
}

/** A length-delimited field as a view into the record (records are read-only here). */
const view = (r: Reader): Buffer => r.view() as Buffer;

/** Unmarshals a KeyValue; key and value are views into `buf`. */
export function decodeKeyValue(buf: Buffer): KeyValue {
  const kv: KeyValue = { key: EMPTY, createRevision: 0, modRevision: 0, version: 0, value: EMPTY, lease: 0n };
  const r = new Reader(buf);
  while (!r.done()) {
    const tag = r.tag();
    switch (tag) {
      case 0x0a: kv.key = view(r); break;
      case 0x10: kv.createRevision = r.varint(); break;
      case 0x18: kv.modRevision = r.varint(); break;
      case 0x20: kv.version = r.varint(); break;
      case 0x2a: kv.value = view(r); break;
      case 0x30: kv.lease = BigInt.asIntN(64, r.varintBig()); break; // int64 in Go
      default: r.skip(tag & 7);
    }
  }
  return kv;
}

/** Only the key of a marshalled KeyValue (restore reads every record). */
export function decodeKey(buf: Buffer): Buffer {
  if (buf[0] === 0x0a) return view(new Reader(buf, 1));
  return decodeKeyValue(buf).key;
}

/** What the key-index rebuild takes from each record (one object, refilled record by record). */
export interface RecordIndexFields {
  /** The key as the index holds it: a latin1 string, one char per byte. */
  key: string;
  createRevision: number;
  version: number;
  lease: bigint;
}

const latin1Slice = Buffer.prototype.latin1Slice as (this: Uint8Array, start: number, end: number) => string;

/**
 * Fills `out` with the fields of a marshalled KeyValue the key index and the lessor need
 * (restore reads every record of the store): the value is stepped over and no KeyValue,
 * Buffer or view is made, so `buf` may be a transient view of LMDB's read buffer.
 */
export function readIndexFields(buf: Uint8Array, out: RecordIndexFields): RecordIndexFields {
  out.key = '';
  out.createRevision = 0;
  out.version = 0;
  out.lease = 0n;
  const r = new Reader(buf);
  while (!r.done()) {
    const tag = r.tag();
    switch (tag) {
      case 0x0a: {
        const [start, end] = r.sub();
        out.key = latin1Slice.call(buf, start, end);
        break;
      }
      case 0x10: out.createRevision = r.varint(); break;
      case 0x20: out.version = r.varint(); break;
      case 0x30: out.lease = BigInt.asIntN(64, r.varintBig()); break; // int64 in Go
      default: r.skip(tag & 7); // mod_revision (the bucket key has it), the value
    }
  }
  return out;
}
