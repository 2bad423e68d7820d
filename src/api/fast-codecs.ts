/**
 * Hand-written encoders for the hottest responses. ts-proto's generic writer costs a few
 * microseconds and several allocations per message; a PutResponse without prev_kv is just a
 * ResponseHeader, whose two 64-bit ids never change on a member, so their bytes are cached.
 * Output is byte-identical to the generated encoder's (fields in number order, zeros omitted).
 */
import { PutResponse, type ResponseHeader } from '../proto/index.js';
import { Writer, sizeBytesField, sizeVarint, sizeVarintBig, writeVarint } from '../proto/index.js';

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
