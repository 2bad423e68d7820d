/**
 * Txn as etcd's apply.go applies it, over the MVCC store's write transactions: compares
 * are evaluated on the state before the txn (nested ones too), the chosen ops are checked
 * (KeyNotFound, LeaseNotFound, FutureRev, Compacted) before anything is written, then
 * applied under one main revision. Nested responses carry etcd's inner headers (revision
 * only; a nested txn's header is empty).
 */
import {
  Compare_CompareResult, Compare_CompareTarget,
  type Compare, type KeyValue, type RequestOp, type ResponseOp, type TxnRequest, type TxnResponse,
} from '../proto/index.js';
import { etcdError, EtcdError } from '../errors/index.js';
import { checkPutShape, type MvccStore, type TxnWrite } from '../mvcc/index.js';
import { countView } from '../metrics/index.js';
import { isTxnReadOnly } from './txn-rules.js';

/** Which branch each (nested) txn takes, decided on the state before the txn. */
interface TxnPath {
  succeeded: boolean;
  /** Paths of the nested txns of the taken branch, in op order. */
  nested: TxnPath[];
}

const empty = Buffer.alloc(0);

export function applyTxn(store: MvccStore, rt: TxnRequest): TxnResponse {
  checkTxnShape(rt);
  const rv = store.currentRevision;
  const compares = { evaluated: 0 };
  const path = compareToPath(store, rt, rv, compares);
  if (isTxnReadOnly(rt)) {
    // etcd serves it in one read view: compares and ranges counted together.
    checkRanges(store, rt, path, rv);
    countView(compares.evaluated + tallyOps(rt, path).ranges, 0, 0);
  } else {
    // etcd's read view (compares, checks) ends before the write view starts.
    const ops = tallyOps(rt, path);
    countView(compares.evaluated + ops.putChecks, 0, 0);
    checkPuts(store, rt, path, rv);
    checkRanges(store, rt, path, rv);
    countView(ops.ranges, ops.puts, ops.deletes);
  }
  const { result, revision } = store.write((tx) => applyBranch(tx, rt, path));
  result.header = { clusterId: 0n, memberId: 0n, revision, raftTerm: 0 };
  return result;
}

function checkTxnShape(rt: TxnRequest): void {
  for (const ops of [rt.success, rt.failure]) {
    for (const op of ops) {
      if (op.requestPut) checkPutShape(op.requestPut);
      else if (op.requestTxn) checkTxnShape(op.requestTxn);
    }
  }
}

function compareToPath(store: MvccStore, rt: TxnRequest, rv: number, compares: { evaluated: number }): TxnPath {
  const succeeded = rt.compare.every((c) => (compares.evaluated++, applyCompare(store, c, rv)));
  const nested: TxnPath[] = [];
  for (const op of succeeded ? rt.success : rt.failure) {
    if (op.requestTxn) nested.push(compareToPath(store, op.requestTxn, rv, compares));
  }
  return { succeeded, nested };
}

function applyCompare(store: MvccStore, c: Compare, rv: number): boolean {
  let kvs: KeyValue[];
  try {
    kvs = store.kvsAt(c.key, c.rangeEnd, rv);
  } catch (e) {
    if (!(e instanceof EtcdError)) throw e;
    return false; // etcd: a compare whose range fails is false
  }
  if (kvs.length === 0) {
    // No value to compare with (nil and empty are the same on the wire): always false.
    if (c.target === Compare_CompareTarget.VALUE) return false;
    return compareKV(c, { key: empty, createRevision: 0, modRevision: 0, version: 0, value: empty, lease: 0n });
  }
  for (const kv of kvs) if (!compareKV(c, kv)) return false;
  return true;
}

/**
 * The ops of the branch `path` takes. A nested txn among them has its path in `path.nested`,
 * in op order: callers walk both with one index (no generator and no pair per op: four walks
 * per applied txn, on the main thread).
 */
function takenOps(rt: TxnRequest, path: TxnPath): RequestOp[] {
  return path.succeeded ? rt.success : rt.failure;
}

/**
 * What the taken branches do to etcd's mvcc counters: ranges (range ops, and the previous-kv
 * lookups of puts/deletes asking for prev_kv or ignore_*), puts, deletes, and the lookups the
 * put checks make (ignore_value/ignore_lease).
 */
function tallyOps(rt: TxnRequest, path: TxnPath, t = { ranges: 0, puts: 0, deletes: 0, putChecks: 0 }): typeof t {
  let ni = 0;
  for (const op of takenOps(rt, path)) {
    if (op.requestTxn) tallyOps(op.requestTxn, path.nested[ni++]!, t);
    else if (op.requestRange) t.ranges++;
    else if (op.requestPut) {
      const p = op.requestPut;
      t.puts++;
      if (p.prevKv || p.ignoreValue || p.ignoreLease) t.ranges++;
      if (p.ignoreValue || p.ignoreLease) t.putChecks++;
    } else if (op.requestDeleteRange) {
      t.deletes++;
      if (op.requestDeleteRange.prevKv) t.ranges++;
    }
  }
  return t;
}

function checkPuts(store: MvccStore, rt: TxnRequest, path: TxnPath, rv: number): void {
  let ni = 0;
  for (const op of takenOps(rt, path)) {
    if (op.requestTxn) { checkPuts(store, op.requestTxn, path.nested[ni++]!, rv); continue; }
    const p = op.requestPut;
    if (!p) continue;
    if ((p.ignoreValue || p.ignoreLease) && !store.hasKeyAt(p.key, rv)) throw etcdError('KeyNotFound');
    if (p.lease !== 0n) store.checkLease(p.lease);
  }
}

function checkRanges(store: MvccStore, rt: TxnRequest, path: TxnPath, rv: number): void {
  let ni = 0;
  for (const op of takenOps(rt, path)) {
    if (op.requestTxn) { checkRanges(store, op.requestTxn, path.nested[ni++]!, rv); continue; }
    const r = op.requestRange;
    if (!r || r.revision === 0) continue;
    if (r.revision > rv) throw etcdError('FutureRev');
    if (r.revision < store.compactRevision) throw etcdError('Compacted');
  }
}

function applyBranch(tx: TxnWrite, rt: TxnRequest, path: TxnPath): TxnResponse {
  const responses: ResponseOp[] = [];
  let ni = 0;
  for (const op of takenOps(rt, path)) responses.push(applyOp(tx, op, op.requestTxn ? path.nested[ni++] : undefined));
  return { header: { clusterId: 0n, memberId: 0n, revision: 0, raftTerm: 0 }, succeeded: path.succeeded, responses };
}

function applyOp(tx: TxnWrite, op: RequestOp, nested: TxnPath | undefined): ResponseOp {
  if (op.requestRange) return { responseRange: tx.range(op.requestRange) };
  if (op.requestPut) return { responsePut: tx.put(op.requestPut) };
  if (op.requestDeleteRange) return { responseDeleteRange: tx.deleteRange(op.requestDeleteRange) };
  if (op.requestTxn) return { responseTxn: applyBranch(tx, op.requestTxn, nested!) };
  return {};
}

/** apply.go compareKV. Absent target values compare as zero / empty. */
function compareKV(c: Compare, kv: KeyValue): boolean {
  let result: number;
  switch (c.target) {
    case Compare_CompareTarget.VALUE:
      result = Buffer.compare(kv.value, c.value ?? empty);
      break;
    case Compare_CompareTarget.CREATE:
      result = cmpBig(BigInt(kv.createRevision), c.createRevision ?? 0n);
      break;
    case Compare_CompareTarget.MOD:
      result = cmpBig(BigInt(kv.modRevision), c.modRevision ?? 0n);
      break;
    case Compare_CompareTarget.VERSION:
      result = cmpBig(BigInt(kv.version), c.version ?? 0n);
      break;
    case Compare_CompareTarget.LEASE:
      result = cmpBig(kv.lease, c.lease ?? 0n);
      break;
    default:
      result = 0;
  }
  switch (c.result) {
    case Compare_CompareResult.EQUAL: return result === 0;
    case Compare_CompareResult.NOT_EQUAL: return result !== 0;
    case Compare_CompareResult.GREATER: return result > 0;
    case Compare_CompareResult.LESS: return result < 0;
    default: return true;
  }
}

function cmpBig(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
