/**
 * etcd's permission checks on KV requests (etcdserver/apply_auth.go, v3_server.go): writes
 * are checked when their entry applies, against the auth revision in the entry's header;
 * reads (range, read-only txn) when served. A txn needs READ on every compare and each op's
 * own permission; etcd 3.4 does not look into nested txns, nor does this. A lease revoke, and
 * a put that attaches a key to a lease, need WRITE on every key the lease holds.
 */
import type { AuthStore, AuthInfo } from '../auth/index.js';
import type { DeleteRangeRequest, PutRequest, RequestOp, TxnRequest } from '../proto/index.js';

/** The keys attached to a lease, if it exists (the applier's lessor). */
export type LeaseKeys = (id: bigint) => Iterable<string> | undefined;

/** etcd's authApplierV3.Put: WRITE on the key, then on every key of the lease it attaches to, then READ for prev_kv. */
export function checkPut(auth: AuthStore, ai: AuthInfo | undefined, r: PutRequest, leaseKeys: LeaseKeys): void {
  auth.checkPut(ai, r.key);
  if (r.lease !== 0n) checkLeasePuts(auth, ai, leaseKeys(r.lease));
  if (r.prevKv) auth.checkRange(ai, r.key, emptyKey);
}

/**
 * etcd's checkLeasePuts: whoever revokes a lease (or attaches a key to it, which lets a later
 * revoke delete that key) needs WRITE on every key attached to it. An unknown lease passes
 * (the revoke or put then fails with the lessor's own error).
 */
export function checkLeasePuts(auth: AuthStore, ai: AuthInfo | undefined, keys: Iterable<string> | undefined): void {
  if (keys === undefined) return;
  for (const k of keys) auth.checkPut(ai, Buffer.from(k, 'latin1'));
}

export function checkDeleteRange(auth: AuthStore, ai: AuthInfo | undefined, r: DeleteRangeRequest): void {
  auth.checkDeleteRange(ai, r.key, r.rangeEnd);
  if (r.prevKv) auth.checkRange(ai, r.key, r.rangeEnd);
}

/** etcd's checkTxnAuth. */
export function checkTxn(auth: AuthStore, ai: AuthInfo | undefined, r: TxnRequest): void {
  for (const c of r.compare) auth.checkRange(ai, c.key, c.rangeEnd);
  checkOps(auth, ai, r.success);
  checkOps(auth, ai, r.failure);
}

/** etcd's checkTxnReqsPermission. */
function checkOps(auth: AuthStore, ai: AuthInfo | undefined, ops: RequestOp[]): void {
  for (const op of ops) {
    if (op.requestRange) {
      auth.checkRange(ai, op.requestRange.key, op.requestRange.rangeEnd);
    } else if (op.requestPut) {
      auth.checkPut(ai, op.requestPut.key);
    } else if (op.requestDeleteRange) {
      const d = op.requestDeleteRange;
      if (d.prevKv) auth.checkRange(ai, d.key, d.rangeEnd);
      auth.checkDeleteRange(ai, d.key, d.rangeEnd);
    }
  }
}

const emptyKey = Buffer.alloc(0);
