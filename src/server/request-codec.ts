/**
 * The payload of a normal raft entry: an etcdserverpb.InternalRaftRequest, as etcd writes it,
 * so that WALs mean the same thing to etcd and Concord.
 *
 * One deliberate detail: Concord writes the request header (field 100, carrying the request
 * ID) *first*. Protobuf readers accept fields in any order, and having the ID at a fixed place
 * lets the applier find the waiting proposal with a few byte reads and reuse the request
 * object it already has, instead of decoding every entry it proposed itself.
 */
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { InternalRaftRequest, RequestHeader } from '../proto/gen/etcdserverpb/raft_internal.js';
import {
  AlarmRequest, CompactionRequest, DeleteRangeRequest, PutRequest, RangeRequest, TxnRequest,
} from '../proto/gen/etcdserverpb/rpc.js';
import { Request as V2Request } from '../proto/gen/etcdserverpb/etcdserver.js';

/** What Concord proposes through raft, as a tagged union (one variant per request kind). */
export type RaftRequest =
  | { kind: 'put'; req: PutRequest; /** the client's own encoding of `req`, reused as is */ raw?: Uint8Array }
  | { kind: 'deleteRange'; req: DeleteRangeRequest }
  | { kind: 'txn'; req: TxnRequest }
  | { kind: 'compaction'; req: CompactionRequest }
  | { kind: 'alarm'; req: AlarmRequest }
  | { kind: 'range'; req: RangeRequest }
  | { kind: 'v2'; req: V2Request }
  /** A request kind this version does not apply yet (lease, auth): kept for a clear error. */
  | { kind: 'unsupported'; name: string };

const headerTag = (100 << 3) | 2; // field 100, length-delimited: varint 0xa2 0x06

export function encodeRaftRequest(id: bigint, r: RaftRequest): Uint8Array {
  if (r.kind === 'put' && r.raw !== undefined) return encodeWithRawBody(id, 4, r.raw);
  const w = new BinaryWriter();
  w.uint32(headerTag).fork();
  RequestHeader.encode({ ID: id, username: '', authRevision: 0 }, w);
  w.join();
  switch (r.kind) {
    case 'range': RangeRequest.encode(r.req, w.uint32((3 << 3) | 2).fork()).join(); break;
    case 'put': PutRequest.encode(r.req, w.uint32((4 << 3) | 2).fork()).join(); break;
    case 'deleteRange': DeleteRangeRequest.encode(r.req, w.uint32((5 << 3) | 2).fork()).join(); break;
    case 'txn': TxnRequest.encode(r.req, w.uint32((6 << 3) | 2).fork()).join(); break;
    case 'compaction': CompactionRequest.encode(r.req, w.uint32((7 << 3) | 2).fork()).join(); break;
    case 'alarm': AlarmRequest.encode(r.req, w.uint32((10 << 3) | 2).fork()).join(); break;
    case 'v2': V2Request.encode(r.req, w.uint32((2 << 3) | 2).fork()).join(); break;
    case 'unsupported': throw new Error(`cannot encode unsupported request ${r.name}`);
  }
  return w.finish();
}

/**
 * header {ID} followed by field `field` carrying an already-encoded message, in one buffer:
 * the hot path for puts, whose request the client already encoded.
 */
function encodeWithRawBody(id: bigint, field: number, body: Uint8Array): Uint8Array {
  const lo = Number(id & 0xffffffffn);
  const hi = Number(id >> 32n);
  const idBytes = varint64Size(lo, hi);
  const headerLen = 1 + idBytes; // tag 0x08 + varint
  const bodyLenBytes = varint32Size(body.length);
  const out = Buffer.allocUnsafe(2 + 1 + headerLen + 1 + bodyLenBytes + body.length);
  let pos = 0;
  out[pos++] = 0xa2; out[pos++] = 0x06; // field 100, length-delimited
  out[pos++] = headerLen; // < 128 always (at most 11)
  out[pos++] = 0x08;
  pos = writeVarint64(out, pos, lo, hi);
  out[pos++] = (field << 3) | 2;
  pos = writeVarint32(out, pos, body.length);
  out.set(body, pos);
  return out;
}

function varint32Size(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

function writeVarint32(b: Buffer, pos: number, v: number): number {
  while (v >= 0x80) { b[pos++] = (v & 0x7f) | 0x80; v >>>= 7; }
  b[pos++] = v;
  return pos;
}

function varint64Size(lo: number, hi: number): number {
  if (hi === 0) return varint32Size(lo);
  let n = 5; // the low 35 bits take 5 bytes once hi is non-zero
  for (let h = hi >>> 3; h > 0; h >>>= 7) n++;
  return n;
}

function writeVarint64(b: Buffer, pos: number, lo: number, hi: number): number {
  if (hi === 0) return writeVarint32(b, pos, lo);
  for (let i = 0; i < 4; i++) { b[pos++] = (lo & 0x7f) | 0x80; lo >>>= 7; }
  // 4 bits left of lo, joined with hi's low 3 bits.
  let v = (lo & 0x0f) | ((hi & 0x07) << 4);
  hi >>>= 3;
  if (hi === 0) { b[pos++] = v; return pos; }
  b[pos++] = v | 0x80;
  while (hi >= 0x80) { b[pos++] = (hi & 0x7f) | 0x80; hi >>>= 7; }
  b[pos++] = hi;
  return pos;
}

/**
 * Reads the request ID from an entry Concord wrote (header first). Returns undefined when the
 * entry does not start with a header; callers then decode in full.
 */
export function peekRequestId(data: Uint8Array): bigint | undefined {
  if (data.length < 4 || data[0] !== 0xa2 || data[1] !== 0x06) return undefined;
  let pos = 2;
  let len = 0;
  for (let shift = 0; ; shift += 7) {
    const b = data[pos++]!;
    len |= (b & 0x7f) << shift;
    if (b < 0x80) break;
    if (shift > 21) return undefined;
  }
  const end = pos + len;
  if (data[pos] !== 0x08 || end > data.length) return undefined; // field 1 (ID), varint
  pos++;
  let lo = 0;
  let hi = 0;
  // Up to 10 varint bytes: the first 4 fill 28 bits of lo, then split across lo/hi.
  for (let i = 0; i < 10 && pos < end; i++) {
    const b = data[pos++]!;
    if (i < 4) lo |= (b & 0x7f) << (7 * i);
    else if (i === 4) { lo |= (b & 0x0f) << 28; hi |= (b & 0x7f) >> 4; }
    else hi |= (b & 0x7f) << (7 * (i - 5) + 3);
    if (b < 0x80) return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
  }
  return undefined;
}

/** Decodes an entry payload in full (entries from the WAL, or from other members). */
export function decodeRaftRequest(data: Uint8Array): { id: bigint; request: RaftRequest } {
  const m = InternalRaftRequest.decode(data);
  const id = m.header?.ID ?? m.ID;
  if (m.put) return { id, request: { kind: 'put', req: m.put } };
  if (m.txn) return { id, request: { kind: 'txn', req: m.txn } };
  if (m.deleteRange) return { id, request: { kind: 'deleteRange', req: m.deleteRange } };
  if (m.range) return { id, request: { kind: 'range', req: m.range } };
  if (m.compaction) return { id, request: { kind: 'compaction', req: m.compaction } };
  if (m.alarm) return { id, request: { kind: 'alarm', req: m.alarm } };
  if (m.v2) return { id: m.v2.ID ?? id, request: { kind: 'v2', req: m.v2 } };
  for (const [k, v] of Object.entries(m)) {
    if (k !== 'header' && k !== 'ID' && v !== undefined) return { id, request: { kind: 'unsupported', name: k } };
  }
  // etcd 3.4 proposes some requests (member attributes, cluster version) as a bare v2 Request.
  const v2 = V2Request.decode(data);
  return { id: v2.ID ?? 0n, request: { kind: 'v2', req: v2 } };
}
