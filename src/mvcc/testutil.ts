// Helpers for the mvcc tests: a store in a fresh temporary directory, and terse requests.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Backend, type BackendOptions } from '../storage/index.js';
import { MvccStore, type MvccStoreOptions } from './store.js';
import {
  Compare,
  DeleteRangeRequest,
  PutRequest,
  RangeRequest,
  RequestOp,
  TxnRequest,
} from '../proto/index.js';

export const b = (s: string): Buffer => Buffer.from(s);

export function tempDir(prefix = 'concord-mvcc-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function openStore(dir: string, opts: Partial<MvccStoreOptions> = {}, bopts: Partial<BackendOptions> = {}): MvccStore {
  const backend = Backend.open({ path: path.join(dir, 'member', 'snap', 'concord.lmdb'), ...bopts });
  return MvccStore.open({ backend, ...opts });
}

export const putReq = (key: string, value: string, extra: Partial<PutRequest> = {}) =>
  PutRequest.fromPartial({ key: b(key), value: b(value), ...extra });
export const rangeReq = (key: string, extra: Partial<RangeRequest> = {}) => RangeRequest.fromPartial({ key: b(key), ...extra });
export const delReq = (key: string, extra: Partial<DeleteRangeRequest> = {}) => DeleteRangeRequest.fromPartial({ key: b(key), ...extra });
export const txnReq = (t: Partial<TxnRequest>) => TxnRequest.fromPartial(t);
export const cmp = (c: Partial<Compare>) => Compare.fromPartial(c);
export const opPut = (key: string, value: string, extra: Partial<PutRequest> = {}) => RequestOp.fromPartial({ requestPut: putReq(key, value, extra) });
export const opRange = (key: string, extra: Partial<RangeRequest> = {}) => RequestOp.fromPartial({ requestRange: rangeReq(key, extra) });
export const opDel = (key: string, extra: Partial<DeleteRangeRequest> = {}) => RequestOp.fromPartial({ requestDeleteRange: delReq(key, extra) });
export const opTxn = (t: Partial<TxnRequest>) => RequestOp.fromPartial({ requestTxn: txnReq(t) });

/** The keys of a range response as strings. */
export function keysOf(r: { kvs: { key: Buffer }[] }): string[] {
  return r.kvs.map((kv) => kv.key.toString());
}

