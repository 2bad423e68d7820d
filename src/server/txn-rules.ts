/**
 * etcd's rules for serving a txn (etcdserver/v3_server.go), one copy for the whole project:
 * the API layer uses them to decide whether a txn is a write (request-size check), the
 * server to decide whether it goes through raft or reads locally.
 */
import type { RequestOp, TxnRequest } from '../proto/index.js';

/**
 * True when every op of both branches is a range (etcd's isTxnReadonly). A nested txn is
 * not a range, so a txn holding one is a write even if the nested txn only reads: etcd 3.4
 * proposes it through raft.
 */
export function isTxnReadOnly(r: TxnRequest): boolean {
  return allRanges(r.success) && allRanges(r.failure);
}

/** True when the txn is read-only and every range in it is serializable (isTxnSerializable). */
export function isTxnSerializable(r: TxnRequest): boolean {
  return allSerializableRanges(r.success) && allSerializableRanges(r.failure);
}

function allRanges(ops: readonly RequestOp[]): boolean {
  for (const op of ops) if (op.requestRange === undefined) return false;
  return true;
}

function allSerializableRanges(ops: readonly RequestOp[]): boolean {
  for (const op of ops) if (op.requestRange === undefined || !op.requestRange.serializable) return false;
  return true;
}
