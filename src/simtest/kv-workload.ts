/**
 * Client requests for the simulation's `kv` mode: puts, deletes and txns over a small key
 * space (so they collide), encoded as the server proposes them (encodeRaftRequest), and the
 * ledger of acknowledged puts: a put is acknowledged when its proposer's applier answers
 * its waiter, as EtcdServer answers the client. Every acknowledged put must be readable at
 * its revision on every member once the cluster heals (no compaction runs in these runs).
 */
import { encodeRaftRequest } from '../server/index.js';
import { Compare_CompareResult, Compare_CompareTarget, type PutResponse } from '../proto/index.js';
import { cmp, delReq, opDel, opPut, putReq, txnReq } from '../mvcc/index.js';

export type RaftRequest = Parameters<typeof encodeRaftRequest>[1];
export { encodeRaftRequest };

export interface AckedPut {
  key: string;
  value: string;
  revision: number;
  member: bigint;
}

const keySpace = 16;

function key(r: () => number): string {
  return `k${Math.floor(r() * keySpace)}`;
}

/** A random write: mostly puts, some deletes (single keys and ranges), some txns. */
export function randomRequest(r: () => number, seq: number): RaftRequest {
  const x = r();
  const value = `v${seq}`;
  if (x < 0.6) return { kind: 'put', req: putReq(key(r), value) };
  if (x < 0.75) {
    const k = key(r);
    return { kind: 'deleteRange', req: r() < 0.5 ? delReq(k) : delReq('k1', { rangeEnd: Buffer.from('k5') }) };
  }
  // A txn: if one key exists, write it again; else write another and delete a third.
  const [a, b, c] = ['k0', 'k1', 'k2'].map((k) => `${k}${Math.floor(r() * keySpace)}`) as [string, string, string];
  return {
    kind: 'txn',
    req: txnReq({
      compare: [cmp({ key: Buffer.from(a), target: Compare_CompareTarget.VERSION, result: Compare_CompareResult.GREATER, version: 0n })],
      success: [opPut(a, value)],
      failure: [opPut(b, value), opDel(c)],
    }),
  };
}

/** The acknowledged put a response stands for, if `req` is a put. */
export function ackOf(req: RaftRequest, result: unknown, member: bigint): AckedPut | undefined {
  if (req.kind !== 'put') return undefined;
  const resp = result as PutResponse;
  return { key: req.req.key.toString(), value: req.req.value.toString(), revision: resp.header!.revision, member };
}
