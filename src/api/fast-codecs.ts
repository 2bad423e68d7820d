/**
 * Hand-written encoders for the hottest responses. ts-proto's generic writer costs a few
 * microseconds and several allocations per message; a PutResponse without prev_kv is just a
 * ResponseHeader, whose two 64-bit ids never change on a member, so their bytes are cached.
 * Output is byte-identical to the generated encoder's (fields in number order, zeros omitted).
 */
import { PutResponse, type ResponseHeader } from '../proto/gen/etcdserverpb/rpc.js';

let cachedIds: { clusterId: bigint; memberId: bigint; bytes: Buffer } | undefined;

/** Fields 1 and 2 of a ResponseHeader (cluster_id, member_id), as encoded bytes. */
function idFields(clusterId: bigint, memberId: bigint): Buffer {
  const c = cachedIds;
  if (c !== undefined && c.clusterId === clusterId && c.memberId === memberId) return c.bytes;
  const parts: number[] = [];
  const push64 = (tag: number, v: bigint): void => {
    if (v === 0n) return;
    parts.push(tag);
    let x = BigInt.asUintN(64, v);
    while (x >= 0x80n) { parts.push(Number(x & 0x7fn) | 0x80); x >>= 7n; }
    parts.push(Number(x));
  };
  push64(0x08, clusterId);
  push64(0x10, memberId);
  const bytes = Buffer.from(parts);
  cachedIds = { clusterId, memberId, bytes };
  return bytes;
}

/** Varint size of a non-negative safe integer. */
function sizeOf(v: number): number {
  let n = 1;
  while (v >= 0x80) { v = Math.floor(v / 128); n++; }
  return n;
}

function writeVarint(b: Buffer, pos: number, v: number): number {
  while (v >= 0x80) { b[pos++] = (v % 128) | 0x80; v = Math.floor(v / 128); }
  b[pos++] = v;
  return pos;
}

/** A whole PutResponse; falls back to the generated encoder when it carries prev_kv. */
export function encodePutResponse(r: PutResponse): Uint8Array {
  const h = r.header;
  if (r.prevKv !== undefined || h === undefined || h.revision < 0) return PutResponse.encode(r).finish();
  return encodeHeaderOnly(h);
}

function encodeHeaderOnly(h: ResponseHeader): Buffer {
  const ids = idFields(h.clusterId, h.memberId);
  const rev = h.revision;
  const term = h.raftTerm;
  const headerLen = ids.length + (rev !== 0 ? 1 + sizeOf(rev) : 0) + (term !== 0 ? 1 + sizeOf(term) : 0);
  const out = Buffer.allocUnsafe(1 + sizeOf(headerLen) + headerLen);
  let pos = 0;
  out[pos++] = 0x0a; // PutResponse.header, length-delimited
  pos = writeVarint(out, pos, headerLen);
  pos += ids.copy(out, pos);
  if (rev !== 0) { out[pos++] = 0x18; pos = writeVarint(out, pos, rev); }
  if (term !== 0) { out[pos++] = 0x20; pos = writeVarint(out, pos, term); }
  return out;
}
