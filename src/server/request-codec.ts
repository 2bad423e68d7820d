/**
 * The payload of a normal raft entry: an etcdserverpb.InternalRaftRequest, as etcd writes it,
 * so that WALs mean the same thing to etcd and Concord.
 *
 * One deliberate detail: Concord writes the request header (field 100, carrying the request
 * ID) *first*. Protobuf readers accept fields in any order, and a fixed layout lets the
 * applier decode the hot case (a put) by hand in a few byte reads. Every member applies the
 * decoded bytes, never the object the proposer held.
 */
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { strict as assert } from 'node:assert';
import {
  Reader, sizeBytesField, sizeVarintBig, writeVarint, writeVarintBig, wireShapeError, InternalRaftRequest, RequestHeader,
  AlarmRequest, CompactionRequest, Compare, DeleteRangeRequest, PutRequest, RangeRequest, TxnRequest, V2Request,
  type RequestOp, keepOnly, requestOpMembers, checkDecodeDepth,
  LeaseGrantRequest, LeaseRevokeRequest, LeaseCheckpointRequest,
} from '../proto/index.js';
import { encodeAuthRequest, authRequestOf, type AuthRequest, type AuthInfo } from '../auth/index.js';

/** What Concord proposes through raft, as a tagged union (one variant per request kind). */
export type RaftRequest =
  | { kind: 'put'; req: PutRequest; /** the client's own encoding of `req`, reused as is */ raw?: Uint8Array }
  | { kind: 'deleteRange'; req: DeleteRangeRequest }
  | { kind: 'txn'; req: TxnRequest; /** the client's own encoding of `req`, reused as is */ raw?: Uint8Array }
  | { kind: 'compaction'; req: CompactionRequest }
  | { kind: 'alarm'; req: AlarmRequest }
  | { kind: 'range'; req: RangeRequest }
  | { kind: 'v2'; req: V2Request }
  | { kind: 'leaseGrant'; req: LeaseGrantRequest }
  | { kind: 'leaseRevoke'; req: LeaseRevokeRequest }
  | { kind: 'leaseCheckpoint'; req: LeaseCheckpointRequest }
  /** An auth_* request (auth/raft-request.ts). */
  | { kind: 'auth'; req: AuthRequest }
  /** A request kind this version does not apply yet: kept for a clear error. */
  | { kind: 'unsupported'; name: string };

const headerTag = (100 << 3) | 2; // field 100, length-delimited: varint 0xa2 0x06

/** What an entry says of its sender: the header's username and auth revision, when set. */
export interface DecodedEntry {
  id: bigint;
  request: RaftRequest;
  auth?: AuthInfo;
}

/** `auth` travels in the header (username, auth revision), as etcd's apply checks it. */
export function encodeRaftRequest(id: bigint, r: RaftRequest, auth?: AuthInfo): Uint8Array {
  // The client's bytes are reused only when they are well formed as gogoproto reads them
  // (wireShapeError walks a Txn's nested messages too): a malformed entry in the log would
  // stop every member that applies it, etcd's included, at every restart. The header then
  // holds the ID alone, as the applier's hand decoder of puts needs. Anything else is encoded
  // afresh from the decoded request.
  if (auth === undefined && (r.kind === 'put' || r.kind === 'txn') && r.raw !== undefined) {
    const [field, name] = r.kind === 'put' ? [4, 'PutRequest'] : [6, 'TxnRequest'];
    if (wireShapeError(r.raw, name) === undefined) return encodeWithRawBody(id, field, r.raw);
  }
  const w = new BinaryWriter();
  w.uint32(headerTag).fork();
  RequestHeader.encode({ ID: id, username: auth?.username ?? '', authRevision: auth?.revision ?? 0 }, w);
  w.join();
  switch (r.kind) {
    case 'range': RangeRequest.encode(r.req, w.uint32((3 << 3) | 2).fork()).join(); break;
    case 'put': PutRequest.encode(r.req, w.uint32((4 << 3) | 2).fork()).join(); break;
    case 'deleteRange': DeleteRangeRequest.encode(r.req, w.uint32((5 << 3) | 2).fork()).join(); break;
    case 'txn': TxnRequest.encode(r.req, w.uint32((6 << 3) | 2).fork()).join(); break;
    case 'compaction': CompactionRequest.encode(r.req, w.uint32((7 << 3) | 2).fork()).join(); break;
    case 'alarm': AlarmRequest.encode(r.req, w.uint32((10 << 3) | 2).fork()).join(); break;
    case 'leaseGrant': LeaseGrantRequest.encode(r.req, w.uint32((8 << 3) | 2).fork()).join(); break;
    case 'leaseRevoke': LeaseRevokeRequest.encode(r.req, w.uint32((9 << 3) | 2).fork()).join(); break;
    case 'leaseCheckpoint': LeaseCheckpointRequest.encode(r.req, w.uint32((11 << 3) | 2).fork()).join(); break;
    // etcd triggers a v2 request's waiter by the v2 request's own ID: make it the same.
    case 'v2': V2Request.encode({ ...r.req, ID: id }, w.uint32((2 << 3) | 2).fork()).join(); break;
    case 'auth': encodeAuthRequest(r.req, w); break;
    case 'unsupported': throw new Error(`cannot encode unsupported request ${r.name}`);
  }
  return w.finish();
}

/**
 * header {ID} followed by field `field` carrying an already-encoded message, in one buffer:
 * the hot path for puts and writing txns, whose request the client already encoded.
 */
function encodeWithRawBody(id: bigint, field: number, body: Uint8Array): Uint8Array {
  const headerLen = 1 + sizeVarintBig(id); // tag 0x08 + ID
  // From node's shared pool (every byte is written below, as the check at the end asserts):
  // a Uint8Array of its own was an ArrayBuffer, its malloc'd store and V8's bookkeeping per put.
  const buf = Buffer.allocUnsafe(2 + 1 + headerLen + 1 + sizeBytesField(body.length));
  buf[0] = 0xa2; buf[1] = 0x06; // field 100, length-delimited
  buf[2] = headerLen;
  buf[3] = 0x08;
  // Request IDs carry the member id in their top bits, so they pass 2^53: writeVarintBig splits
  // such an ID into 32-bit halves once instead of doing bigint arithmetic per byte.
  let pos = writeVarintBig(buf, 4, id);
  buf[pos++] = (field << 3) | 2;
  pos = writeVarint(buf, pos, body.length);
  buf.set(body, pos);
  if (pos + body.length !== buf.length) assert.fail(`request-codec: wrote ${pos + body.length} of ${buf.length} bytes`);
  return buf;
}

/**
 * Decodes an entry's payload, as every member applies it. Entries Concord wrote start with
 * the header; a put among them (the hot path) is decoded by hand with views into `data`
 * instead of copies. Anything else is decoded in full by the generated codec.
 */
export function decodeEntryRequest(data: Uint8Array): DecodedEntry {
  // Header and put are walked with plain offsets: no sub() arrays, one Reader per level.
  if (data.length >= 4 && data[0] === 0xa2 && data[1] === 0x06) {
    const r = new Reader(data, 2);
    const hs = r.payload();
    const header = new Reader(data, hs, r.pos);
    if (!header.done() && header.tag() === 0x08) {
      const id = header.varintBig();
      if (header.done() && !r.done() && (data[r.pos] === putTag || data[r.pos] === txnTag)) {
        const tag = r.tag();
        const ps = r.payload();
        if (r.done()) {
          return tag === putTag
            ? { id, request: { kind: 'put', req: decodePutRequestView(data, ps, r.pos) } }
            : { id, request: { kind: 'txn', req: decodeTxnRequestView(data, ps, r.pos, 0) } };
        }
      }
    }
  }
  return decodeRaftRequest(data);
}

/**
 * A client's PutRequest message (already checked at the top level by wireShapeError) with key
 * and value as views into `body`: for the API, which keeps `body` as the entry's payload.
 */
export function decodePutRequestBody(body: Uint8Array): PutRequest {
  return decodePutRequestView(body, 0, body.length);
}

/** InternalRaftRequest field 4 (put), length-delimited. */
const putTag = (4 << 3) | 2;
/** InternalRaftRequest field 6 (txn), length-delimited. */
const txnTag = (6 << 3) | 2;

/**
 * A client's TxnRequest message (checked by wireShapeError, nested messages included) with
 * its puts' keys and values as views into `body` (decodePutRequestBody's rule), the rest as
 * the generated codec decodes it.
 */
export function decodeTxnRequestBody(body: Uint8Array): TxnRequest {
  return decodeTxnRequestView(body, 0, body.length, 0);
}

/**
 * A TxnRequest as the generated decoder makes it (the same objects and fields, in the same
 * order), except that its puts are decoded in place (decodePutRequestView): every writing txn
 * is decoded twice, by the API and by the applier, and its puts were most of that (four
 * Buffers each, two of them copies). Compares, ranges and deletes go through the generated
 * codec.
 */
function decodeTxnRequestView(data: Uint8Array, start: number, end: number, depth: number): TxnRequest {
  checkDecodeDepth(depth);
  const req: TxnRequest = { compare: [], success: [], failure: [] };
  const r = new Reader(data, start, end);
  while (!r.done()) {
    const tag = r.tag();
    if (tag === ((1 << 3) | 2)) {
      const s = r.payload();
      checkDecodeDepth(depth + 1);
      req.compare.push(Compare.decode(data.subarray(s, r.pos)));
    } else if (tag === ((2 << 3) | 2) || tag === ((3 << 3) | 2)) {
      const s = r.payload();
      (tag === ((2 << 3) | 2) ? req.success : req.failure).push(decodeRequestOpView(data, s, r.pos, depth + 1));
    } else if ((tag & 7) === 4 || tag === 0) {
      break; // where the generated decoder stops (wireShapeError refuses both from clients)
    } else {
      r.skip(tag & 7);
    }
  }
  return req;
}

function decodeRequestOpView(data: Uint8Array, start: number, end: number, depth: number): RequestOp {
  checkDecodeDepth(depth);
  const op: RequestOp = { requestRange: undefined, requestPut: undefined, requestDeleteRange: undefined, requestTxn: undefined };
  const r = new Reader(data, start, end);
  while (!r.done()) {
    const tag = r.tag();
    if ((tag & 7) === 2 && tag >>> 3 >= 1 && tag >>> 3 <= 4) {
      const s = r.payload();
      checkDecodeDepth(depth + 1);
      // One member kept, the last on the wire (gogoproto's oneof; proto/oneof.ts).
      switch (tag >>> 3) {
        case 1: keepOnly(op, requestOpMembers, 'requestRange', RangeRequest.decode(data.subarray(s, r.pos))); break;
        case 2: keepOnly(op, requestOpMembers, 'requestPut', decodePutRequestView(data, s, r.pos)); break;
        case 3: keepOnly(op, requestOpMembers, 'requestDeleteRange', DeleteRangeRequest.decode(data.subarray(s, r.pos))); break;
        default: keepOnly(op, requestOpMembers, 'requestTxn', decodeTxnRequestView(data, s, r.pos, depth + 1));
      }
    } else if ((tag & 7) === 4 || tag === 0) {
      break;
    } else {
      r.skip(tag & 7);
    }
  }
  return op;
}

/** A PutRequest whose key and value are views into `data` (the store copies what it keeps). */
function decodePutRequestView(data: Uint8Array, start: number, end: number): PutRequest {
  const req: PutRequest = { key: emptyBuffer, value: emptyBuffer, lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false };
  const r = new Reader(data, start, end);
  while (!r.done()) {
    const tag = r.tag();
    switch (tag) {
      case (1 << 3) | 2: req.key = bufferView(data, r.payload(), r.pos); break;
      case (2 << 3) | 2: req.value = bufferView(data, r.payload(), r.pos); break;
      case 3 << 3: req.lease = BigInt.asIntN(64, r.varintBig()); break;
      case 4 << 3: req.prevKv = r.bool(); break;
      case 5 << 3: req.ignoreValue = r.bool(); break;
      case 6 << 3: req.ignoreLease = r.bool(); break;
      default: r.skip(tag & 7);
    }
  }
  return req;
}

const emptyBuffer = Buffer.alloc(0);

function bufferView(data: Uint8Array, start: number, end: number): Buffer {
  return Buffer.from(data.buffer, data.byteOffset + start, end - start);
}

/** A v2 request's entry: etcd triggers its waiter by the v2 request's own ID (encodeRaftRequest sets it). */
function v2Entry(req: V2Request): DecodedEntry {
  return { id: req.ID ?? 0n, request: { kind: 'v2', req } };
}

/** Decodes an entry payload in full (entries from the WAL, or from other members). */
export function decodeRaftRequest(data: Uint8Array): DecodedEntry {
  let m: InternalRaftRequest;
  try {
    m = InternalRaftRequest.decode(data);
  } catch {
    // etcd 3.4 proposes some requests (member attributes, cluster version) as a bare v2
    // Request, which need not parse as an InternalRaftRequest (etcd's MaybeUnmarshal).
    return v2Entry(V2Request.decode(data));
  }
  // etcd's id: the deprecated top-level ID when set, else the header's (applyEntryNormal).
  const id = m.ID !== 0n ? m.ID : (m.header?.ID ?? 0n);
  const entry = (request: RaftRequest): DecodedEntry => {
    const h = m.header;
    if (h === undefined || (h.username === '' && h.authRevision === 0)) return { id, request };
    return { id, request, auth: { username: h.username, revision: h.authRevision } };
  };
  // One request per entry, picked in etcd's order (a v2 request first, then applierV3's
  // switch), so an entry with more than one set applies as it does on an etcd member.
  if (m.v2) return v2Entry(m.v2);
  if (m.range) return entry({ kind: 'range', req: m.range });
  if (m.put) return entry({ kind: 'put', req: m.put });
  if (m.deleteRange) return entry({ kind: 'deleteRange', req: m.deleteRange });
  if (m.txn) return entry({ kind: 'txn', req: m.txn });
  if (m.compaction) return entry({ kind: 'compaction', req: m.compaction });
  if (m.leaseGrant) return entry({ kind: 'leaseGrant', req: m.leaseGrant });
  if (m.leaseRevoke) return entry({ kind: 'leaseRevoke', req: m.leaseRevoke });
  if (m.leaseCheckpoint) return entry({ kind: 'leaseCheckpoint', req: m.leaseCheckpoint });
  if (m.alarm) return entry({ kind: 'alarm', req: m.alarm });
  const auth = authRequestOf(m, data);
  if (auth) return entry({ kind: 'auth', req: auth });
  for (const [k, v] of Object.entries(m)) {
    if (k !== 'header' && k !== 'ID' && v !== undefined) return { id, request: { kind: 'unsupported', name: k } };
  }
  // etcd 3.4 proposes some requests (member attributes, cluster version) as a bare v2 Request.
  const v2 = V2Request.decode(data);
  return { id: v2.ID ?? 0n, request: { kind: 'v2', req: v2 } };
}
