/**
 * Hand-written codecs for the hottest calls (Put and Range). ts-proto's generic writer costs a
 * few microseconds and several allocations per message (a BinaryWriter, its chunks, two
 * BigInts per int64 field); these size the message first and write it once. A PutResponse
 * without prev_kv is just a ResponseHeader, whose two 64-bit ids never change on a member, so
 * their bytes are cached. Output is byte-identical to the generated encoder's (fields in
 * number order, zeros omitted), and decoded requests equal the generated decoder's, except
 * that bytes fields are views of the request (which nobody reuses) instead of copies.
 */
import { KeyValue, PutResponse, RangeResponse, type RangeRequest, type ResponseHeader } from '../proto/index.js';
import { Reader, WIRE_BYTES, WIRE_VARINT, Writer, sizeBytesField, sizeVarint, sizeVarintBig, writeVarint, writeVarintBig } from '../proto/index.js';

let cachedIds: { clusterId: bigint; memberId: bigint; bytes: Uint8Array } | undefined;

/** Fields 1 and 2 of a ResponseHeader (cluster_id, member_id), as encoded bytes. */
function idFields(clusterId: bigint, memberId: bigint): Uint8Array {
  const c = cachedIds;
  if (c !== undefined && c.clusterId === clusterId && c.memberId === memberId) return c.bytes;
  const size = (clusterId !== 0n ? 1 + sizeVarintBig(clusterId) : 0) + (memberId !== 0n ? 1 + sizeVarintBig(memberId) : 0);
  const w = new Writer(size);
  if (clusterId !== 0n) { w.byte(0x08); w.varintBig(clusterId); }
  if (memberId !== 0n) { w.byte(0x10); w.varintBig(memberId); }
  const bytes = w.finish();
  cachedIds = { clusterId, memberId, bytes };
  return bytes;
}

/** A whole PutResponse; falls back to the generated encoder when it carries prev_kv. */
export function encodePutResponse(r: PutResponse): Uint8Array {
  const h = r.header;
  if (r.prevKv !== undefined || h === undefined || h.revision < 0) return PutResponse.encode(r).finish();
  return encodeHeaderOnly(h);
}

/** Field 1 (header) of a response, tag and length included: PutResponse and WatchResponse both put it there. */
export function encodeHeaderOnly(h: ResponseHeader): Uint8Array {
  const ids = idFields(h.clusterId, h.memberId);
  const rev = h.revision;
  const term = h.raftTerm;
  const headerLen = ids.length + (rev !== 0 ? 1 + sizeVarint(rev) : 0) + (term !== 0 ? 1 + sizeVarint(term) : 0);
  const w = new Writer(1 + sizeBytesField(headerLen));
  w.byte(0x0a); // PutResponse.header, length-delimited
  w.varint(headerLen);
  w.raw(ids);
  if (rev !== 0) { w.byte(0x18); w.varint(rev); }
  if (term !== 0) { w.byte(0x20); w.varint(term); }
  return w.finish();
}

/**
 * A whole RangeResponse in one exactly sized buffer. Falls back to the generated encoder for
 * a negative int64 (never written by the store; the generated encoder writes it as ten bytes).
 */
export function encodeRangeResponse(r: RangeResponse): Uint8Array {
  const h = r.header;
  const kvs = r.kvs;
  if (r.count < 0 || (h !== undefined && (h.revision < 0 || h.raftTerm < 0))) return RangeResponse.encode(r).finish();
  let size = h === undefined ? 0 : 1 + sizeBytesField(headerBytes(h));
  for (let i = 0; i < kvs.length; i++) {
    const kvLen = keyValueBytes(kvs[i]!);
    if (kvLen < 0) return RangeResponse.encode(r).finish();
    size += 1 + sizeBytesField(kvLen);
  }
  if (r.more) size += 2;
  if (r.count !== 0) size += 1 + sizeVarint(r.count);
  const buf = Buffer.allocUnsafe(size); // every byte is written below (checked at the end)
  let pos = 0;
  if (h !== undefined) pos = writeHeaderField(buf, pos, h);
  for (let i = 0; i < kvs.length; i++) pos = writeKeyValueField(buf, pos, kvs[i]!);
  if (r.more) { buf[pos++] = 0x18; buf[pos++] = 1; }
  if (r.count !== 0) { buf[pos++] = 0x20; pos = writeVarint(buf, pos, r.count); }
  if (pos !== size) throw new Error(`encodeRangeResponse: wrote ${pos} of ${size} bytes`);
  return buf;
}

/**
 * A RangeResponse for a one-key read made from the key's stored record (a marshalled
 * mvccpb.KeyValue, the message kvs carries: EtcdService.rangeAs), without decoding it: the
 * record is copied as it is, less its value field for keys_only. Only a record written as
 * this encoder would write it (canonicalKeyValue: what etcd and Concord store) is copied;
 * any other is decoded and encoded again, as etcd's unmarshal-then-marshal would.
 */
export function encodeOneKeyRangeResponse(h: ResponseHeader, record: Uint8Array | undefined, count: number, keysOnly: boolean): Uint8Array {
  if (h.revision < 0 || h.raftTerm < 0 || count < 0 || (record !== undefined && !canonicalKeyValue(record))) {
    const kvs = record === undefined ? [] : [KeyValue.decode(record)];
    if (keysOnly && record !== undefined) kvs[0]!.value = emptyBytes;
    return encodeRangeResponse({ header: h, kvs, more: false, count });
  }
  const cut = keysOnly ? valueField.end - valueField.start : 0;
  const kvLen = record === undefined ? 0 : record.length - cut;
  const size = 1 + sizeBytesField(headerBytes(h)) + (record === undefined ? 0 : 1 + sizeBytesField(kvLen)) + (count !== 0 ? 1 + sizeVarint(count) : 0);
  const buf = Buffer.allocUnsafe(size); // every byte is written below (checked at the end)
  let pos = writeHeaderField(buf, 0, h);
  if (record !== undefined) {
    buf[pos++] = 0x12;
    pos = writeVarint(buf, pos, kvLen);
    if (cut === 0) {
      buf.set(record, pos);
    } else {
      buf.set(record.subarray(0, valueField.start), pos);
      buf.set(record.subarray(valueField.end), pos + valueField.start);
    }
    pos += kvLen;
  }
  if (count !== 0) { buf[pos++] = 0x20; pos = writeVarint(buf, pos, count); }
  if (pos !== size) throw new Error(`encodeOneKeyRangeResponse: wrote ${pos} of ${size} bytes`);
  return buf;
}

/** Where the value field (tag to end) of the record canonicalKeyValue last accepted lies; start = end without one. */
const valueField = { start: 0, end: 0 };

/**
 * Whether a marshalled KeyValue is byte for byte what writeKeyValueField writes for its
 * fields: fields 1 to 6 each at most once, in order, with their wire types, one-byte tags,
 * no zero or empty field, minimal varints. Sets valueField. A truncated record throws (the
 * store is corrupt).
 */
function canonicalKeyValue(kv: Uint8Array): boolean {
  const r = new Reader(kv);
  let last = 0;
  valueField.start = valueField.end = 0;
  while (!r.done()) {
    const at = r.pos;
    const tag = r.tag();
    const field = tag >>> 3;
    if (r.pos !== at + 1 || field <= last || field > 6) return false;
    last = field;
    if (field === 1 || field === 5) {
      if ((tag & 7) !== WIRE_BYTES) return false;
      const start = r.payload();
      // Empty (a zero-length field is omitted), or a length varint with a trailing zero byte (not minimal).
      if (r.pos === start || kv[start - 1] === 0) return false;
      if (field === 5) { valueField.start = at; valueField.end = r.pos; }
    } else {
      if ((tag & 7) !== WIRE_VARINT) return false;
      r.varint(); // stepped over (a lease past 2^53 reads inexactly, which does not matter here)
      if (kv[r.pos - 1] === 0) return false; // zero (omitted when canonical), or not minimal
    }
  }
  return true;
}

/** A ResponseHeader's encoded length (its revision and term are known not negative). */
function headerBytes(h: ResponseHeader): number {
  return idFields(h.clusterId, h.memberId).length + (h.revision !== 0 ? 1 + sizeVarint(h.revision) : 0) + (h.raftTerm !== 0 ? 1 + sizeVarint(h.raftTerm) : 0);
}

/** Field 1 (header) with its tag and length. */
function writeHeaderField(buf: Uint8Array, pos: number, h: ResponseHeader): number {
  const ids = idFields(h.clusterId, h.memberId);
  buf[pos++] = 0x0a;
  pos = writeVarint(buf, pos, headerBytes(h));
  buf.set(ids, pos);
  pos += ids.length;
  if (h.revision !== 0) { buf[pos++] = 0x18; pos = writeVarint(buf, pos, h.revision); }
  if (h.raftTerm !== 0) { buf[pos++] = 0x20; pos = writeVarint(buf, pos, h.raftTerm); }
  return pos;
}

/** A KeyValue's encoded length, or -1 when a revision or version is negative (left to the generated encoder). */
function keyValueBytes(kv: KeyValue): number {
  const { createRevision: c, modRevision: m, version: v } = kv;
  if (c < 0 || m < 0 || v < 0) return -1;
  return (kv.key.length !== 0 ? 1 + sizeBytesField(kv.key.length) : 0)
    + (c !== 0 ? 1 + sizeVarint(c) : 0) + (m !== 0 ? 1 + sizeVarint(m) : 0) + (v !== 0 ? 1 + sizeVarint(v) : 0)
    + (kv.value.length !== 0 ? 1 + sizeBytesField(kv.value.length) : 0)
    + (kv.lease !== 0n ? 1 + sizeVarintBig(kv.lease) : 0);
}

/** RangeResponse field 2 (one of kvs) with its tag and length. */
function writeKeyValueField(buf: Uint8Array, pos: number, kv: KeyValue): number {
  buf[pos++] = 0x12;
  pos = writeVarint(buf, pos, keyValueBytes(kv));
  if (kv.key.length !== 0) { buf[pos++] = 0x0a; pos = writeVarint(buf, pos, kv.key.length); buf.set(kv.key, pos); pos += kv.key.length; }
  if (kv.createRevision !== 0) { buf[pos++] = 0x10; pos = writeVarint(buf, pos, kv.createRevision); }
  if (kv.modRevision !== 0) { buf[pos++] = 0x18; pos = writeVarint(buf, pos, kv.modRevision); }
  if (kv.version !== 0) { buf[pos++] = 0x20; pos = writeVarint(buf, pos, kv.version); }
  if (kv.value.length !== 0) { buf[pos++] = 0x2a; pos = writeVarint(buf, pos, kv.value.length); buf.set(kv.value, pos); pos += kv.value.length; }
  if (kv.lease !== 0n) { buf[pos++] = 0x30; pos = writeVarintBig(buf, pos, kv.lease); }
  return pos;
}

const emptyBytes = Buffer.alloc(0);

/**
 * A RangeRequest (already checked at the top level by wireShapeError) with key and range_end
 * as views into `body`. Values as the generated decoder gives them: int64s as safe numbers
 * (refused beyond, with its wording), enums as the low 32 bits, a field of the wrong wire
 * type skipped.
 */
export function decodeRangeRequest(body: Uint8Array): RangeRequest {
  const req: RangeRequest = {
    key: emptyBytes, rangeEnd: emptyBytes, limit: 0, revision: 0, sortOrder: 0, sortTarget: 0, serializable: false,
    keysOnly: false, countOnly: false, minModRevision: 0, maxModRevision: 0, minCreateRevision: 0, maxCreateRevision: 0,
  };
  const r = new Reader(body);
  while (!r.done()) {
    const tag = r.tag();
    switch (tag) {
      case 0x0a: req.key = bufferView(r); break;
      case 0x12: req.rangeEnd = bufferView(r); break;
      case 0x18: req.limit = int64(r); break;
      case 0x20: req.revision = int64(r); break;
      case 0x28: req.sortOrder = int32(r); break;
      case 0x30: req.sortTarget = int32(r); break;
      case 0x38: req.serializable = r.bool(); break;
      case 0x40: req.keysOnly = r.bool(); break;
      case 0x48: req.countOnly = r.bool(); break;
      case 0x50: req.minModRevision = int64(r); break;
      case 0x58: req.maxModRevision = int64(r); break;
      case 0x60: req.minCreateRevision = int64(r); break;
      case 0x68: req.maxCreateRevision = int64(r); break;
      default: r.skip(tag & 7);
    }
  }
  return req;
}

/** A bytes field as a Buffer viewing the input (a Buffer's subarray already is one). */
function bufferView(r: Reader): Buffer {
  const v = r.view();
  return Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.length);
}

/** An int64 varint as ts-proto's longToNumber gives it: exact, or refused beyond the safe range. */
function int64(r: Reader): number {
  const start = r.pos;
  const v = r.varint(); // exact below 2^53, and at least 2^53 otherwise
  if (v <= Number.MAX_SAFE_INTEGER) return v;
  r.pos = start;
  const n = Number(BigInt.asIntN(64, r.varintBig()));
  if (n > Number.MAX_SAFE_INTEGER) throw new Error('Value is larger than Number.MAX_SAFE_INTEGER');
  if (n < Number.MIN_SAFE_INTEGER) throw new Error('Value is smaller than Number.MIN_SAFE_INTEGER');
  return n;
}

/** An int32 (enum) varint: its low 32 bits, signed, as protobuf readers take it. */
function int32(r: Reader): number {
  const start = r.pos;
  const v = r.varint();
  if (v <= 0x7fffffff) return v;
  r.pos = start;
  return Number(BigInt.asIntN(32, r.varintBig()));
}

/**
 * A SnapshotResponse (remaining_bytes = 2, blob = 3; no header, as etcd's Snapshot sends) with
 * its blob left to fill in place: the snapshot's pages are copied once, straight into the
 * message, instead of into a chunk, then a generic writer (growing as it goes), then the frame.
 * With `into` (at least the message's size) the message is a view of it, so a stream of them
 * can reuse one buffer; without, a buffer of its own.
 */
export function snapshotResponseToFill(remainingBytes: number, blobBytes: number, into?: Buffer): { message: Uint8Array; blob: Uint8Array } {
  const size = snapshotResponseBytes(remainingBytes, blobBytes);
  if (into !== undefined && into.length < size) throw new RangeError(`snapshotResponseToFill: ${size} bytes do not fit a ${into.length}-byte buffer`);
  // Not zeroed: every byte is written below or by the caller.
  const message = into === undefined ? Buffer.allocUnsafe(size) : into.subarray(0, size);
  let pos = 0;
  if (remainingBytes !== 0) {
    message[pos++] = 0x10;
    pos = writeVarint(message, pos, remainingBytes);
  }
  if (blobBytes !== 0) {
    message[pos++] = 0x1a;
    pos = writeVarint(message, pos, blobBytes);
  }
  if (pos + blobBytes !== size) throw new Error(`snapshotResponseToFill: size mismatch, ${pos + blobBytes} of ${size}`);
  return { message, blob: message.subarray(pos) };
}

/** The encoded size of a SnapshotResponse with these fields. */
export function snapshotResponseBytes(remainingBytes: number, blobBytes: number): number {
  return (remainingBytes !== 0 ? 1 + sizeVarint(remainingBytes) : 0) + (blobBytes !== 0 ? 1 + sizeBytesField(blobBytes) : 0);
}
