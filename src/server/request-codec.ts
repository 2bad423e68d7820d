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
import { Reader, Writer, sizeBytesField, sizeVarintBig } from '../proto/wire.js';
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
  const headerLen = 1 + sizeVarintBig(id); // tag 0x08 + ID
  const w = new Writer(2 + 1 + headerLen + 1 + sizeBytesField(body.length));
  w.byte(0xa2); w.byte(0x06); // field 100, length-delimited
  w.varint(headerLen);
  w.byte(0x08);
  w.varintBig(id);
  w.byte((field << 3) | 2);
  w.bytes(body);
  return w.finish();
}

/**
 * Reads the request ID from an entry Concord wrote (header first). Returns undefined when the
 * entry does not start with a header; callers then decode in full.
 */
export function peekRequestId(data: Uint8Array): bigint | undefined {
  if (data.length < 4 || data[0] !== 0xa2 || data[1] !== 0x06) return undefined;
  try {
    const r = new Reader(data, 2);
    const len = r.varint();
    const header = new Reader(data, r.pos, r.pos + len);
    return header.tag() === 0x08 ? header.varintBig() : undefined;
  } catch {
    return undefined; // not a header Concord wrote: decode in full
  }
}

/** Decodes an entry payload in full (entries from the WAL, or from other members). */
export function decodeRaftRequest(data: Uint8Array): { id: bigint; request: RaftRequest } {
  let m: InternalRaftRequest;
  try {
    m = InternalRaftRequest.decode(data);
  } catch {
    // etcd 3.4 proposes some requests (member attributes, cluster version) as a bare v2
    // Request, which need not parse as an InternalRaftRequest (etcd's MaybeUnmarshal).
    const v2 = V2Request.decode(data);
    return { id: v2.ID ?? 0n, request: { kind: 'v2', req: v2 } };
  }
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
