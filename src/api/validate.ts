/**
 * Request checks made before a request reaches the server, exactly as etcd 3.4's
 * etcdserver/api/v3rpc/key.go makes them (same order, same errors), plus the request-size
 * check etcd makes when it proposes a write (see checkRequestSize).
 */
import { etcdError } from '../errors/index.js';
import { sizeVarint } from '../proto/index.js';
import type {
  DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest,
} from '../proto/index.js';

export function checkRangeRequest(r: RangeRequest): void {
  if (r.key.length === 0) throw etcdError('EmptyKey');
}

export function checkPutRequest(r: PutRequest): void {
  if (r.key.length === 0) throw etcdError('EmptyKey');
  if (r.ignoreValue && r.value.length !== 0) throw etcdError('ValueProvided');
  if (r.ignoreLease && r.lease !== 0n) throw etcdError('LeaseProvided');
}

export function checkDeleteRequest(r: DeleteRangeRequest): void {
  if (r.key.length === 0) throw etcdError('EmptyKey');
}

/**
 * etcd's checkTxnRequest then checkIntervals on both branches. Note etcd's op budget: each
 * nested txn is checked against `maxTxnOps - opc` of its parent, not the total.
 */
export function checkTxn(r: TxnRequest, maxTxnOps: number): void {
  checkTxnRequest(r, maxTxnOps);
  // After the cheap checks, so a huge request cannot make the overlap check quadratic.
  checkIntervals(r.success);
  checkIntervals(r.failure);
}

function checkTxnRequest(r: TxnRequest, maxTxnOps: number): void {
  const opc = Math.max(r.compare.length, r.success.length, r.failure.length);
  if (opc > maxTxnOps) throw etcdError('TooManyOps');
  for (const c of r.compare) if (c.key.length === 0) throw etcdError('EmptyKey');
  for (const u of r.success) checkRequestOp(u, maxTxnOps - opc);
  for (const u of r.failure) checkRequestOp(u, maxTxnOps - opc);
}

/**
 * Which op a RequestOp holds. The generated type has one optional field per oneof member;
 * a well-formed message sets one. Should a client set several, the first wins everywhere.
 */
function opKind(u: RequestOp): 'range' | 'put' | 'delete' | 'txn' | 'none' {
  if (u.requestRange !== undefined) return 'range';
  if (u.requestPut !== undefined) return 'put';
  if (u.requestDeleteRange !== undefined) return 'delete';
  if (u.requestTxn !== undefined) return 'txn';
  return 'none';
}

function checkRequestOp(u: RequestOp, maxTxnOps: number): void {
  switch (opKind(u)) {
    case 'range': return checkRangeRequest(u.requestRange!);
    case 'put': return checkPutRequest(u.requestPut!);
    case 'delete': return checkDeleteRequest(u.requestDeleteRange!);
    case 'txn': return checkTxnRequest(u.requestTxn!, maxTxnOps);
    case 'none': throw etcdError('KeyNotFound'); // an empty op, as etcd answers it
  }
}

// --- checkIntervals: puts and deletes of one txn may not touch the same key ---
// Keys are compared as latin1 strings (one char per byte, so string order is byte order),
// with etcd's "affine" rule that the empty string sorts after everything (an open end).

interface Interval { begin: string; end: string }

/** etcd's StringAffineComparable.Compare. */
function affineCmp(a: string, b: string): number {
  if (a.length === 0) return b.length === 0 ? 0 : 1;
  if (b.length === 0) return -1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** etcd's Interval.Compare(...) === 0, i.e. "overlaps" as its interval tree decides it. */
function overlaps(a: Interval, b: Interval): boolean {
  if (affineCmp(a.begin, b.begin) < 0 && affineCmp(a.end, b.begin) <= 0) return false;
  if (affineCmp(a.begin, b.end) >= 0) return false;
  return true;
}

function pointHitsAny(k: string, dels: Interval[]): boolean {
  const p: Interval = { begin: k, end: k + '\x00' };
  for (const d of dels) if (overlaps(p, d)) return true;
  return false;
}

const key = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

/** Returns this level's puts and deletes (for the parent's check); throws DuplicateKey on overlap. */
function checkIntervals(reqs: RequestOp[]): { puts: Set<string>; dels: Interval[] } {
  const dels: Interval[] = [];
  for (const req of reqs) {
    if (opKind(req) !== 'delete') continue;
    const d = req.requestDeleteRange!;
    const k = key(d.key);
    // Note etcd's quirk, kept: a range_end of "\0" (all keys from key) makes the interval
    // [key, "\0"), which overlaps nothing, so such deletes never conflict.
    dels.push(d.rangeEnd.length !== 0 ? { begin: k, end: key(d.rangeEnd) } : { begin: k, end: k + '\x00' });
  }
  const puts = new Set<string>();
  for (const req of reqs) {
    if (opKind(req) !== 'txn') continue;
    const t = req.requestTxn!;
    const then = checkIntervals(t.success);
    const els = checkIntervals(t.failure);
    for (const k of then.puts) {
      if (puts.has(k) || pointHitsAny(k, dels)) throw etcdError('DuplicateKey');
      puts.add(k);
    }
    for (const k of els.puts) {
      // A key put in both branches of one nested txn is fine: only one branch runs.
      if (puts.has(k) && !then.puts.has(k)) throw etcdError('DuplicateKey');
      if (pointHitsAny(k, dels)) throw etcdError('DuplicateKey');
      puts.add(k);
    }
    // etcd unions the children's deletes that overlap ["\0", ∞): every non-empty key.
    for (const d of then.dels) if (overlaps(d, { begin: '\x00', end: '' })) dels.push(d);
    for (const d of els.dels) if (overlaps(d, { begin: '\x00', end: '' })) dels.push(d);
  }
  for (const req of reqs) {
    if (opKind(req) !== 'put') continue;
    const p = req.requestPut!;
    const k = key(p.key);
    if (puts.has(k) || pointHitsAny(k, dels)) throw etcdError('DuplicateKey');
    puts.add(k);
  }
  return { puts, dels };
}

/**
 * etcd refuses a write whose marshalled raft request exceeds --max-request-bytes with
 * "etcdserver: request is too large" (etcdserver/v3_server.go processInternalRaftRequestOnce).
 * That request is the client's message wrapped in an InternalRaftRequest: a header holding
 * the request id (field 100: 2-byte tag, 1-byte length, 1-byte tag, the id's varint) and the
 * message's own 1-byte field tag and length varint. We check the received message length
 * plus that overhead here, in the API layer, instead of marshalling again. Measured against
 * etcd 3.4.23: the largest Put it accepts is exactly the one this check accepts.
 */
export function checkRequestSize(messageBytes: number, maxRequestBytes: number, idVarintBytes = 9): void {
  const raftRequestOverhead = 2 + 1 + 1 + idVarintBytes + 1 + sizeVarint(messageBytes);
  if (messageBytes + raftRequestOverhead > maxRequestBytes) throw etcdError('RequestTooLarge');
}

/**
 * Length of the varint of etcd's request ids for a member: idutil puts the member id's low
 * 16 bits in the top 16 bits of the id, above a 48-bit time-and-counter part.
 */
export function requestIdVarintBytes(memberId: bigint): number {
  const top = memberId & 0xffffn;
  if (top === 0n) return 7; // the 48-bit part alone: at most 7 bytes
  const bits = top.toString(2).length + 48;
  return Math.ceil(bits / 7);
}
