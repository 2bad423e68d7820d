// KV: get, put, delete with every option etcd offers, compaction, a txn builder with compares,
// and ranges paginated by an async iterator that reads one consistent revision.
import { etcdserverpb as pb, type KeyValue } from '../proto/index.js';
import type { Connection, CallOptions } from './connection.js';
import { KV } from './rpcs.js';
import { toBuffer, rangeOf, keyAfter, type Bytes, type RangeSpec } from './bytes.js';

export type SortTarget = 'key' | 'version' | 'create' | 'mod' | 'value';
export type SortOrder = 'none' | 'ascend' | 'descend';

export interface GetOptions extends RangeSpec, CallOptions {
  limit?: number;
  /** Read at this revision (0 or absent: the newest). */
  revision?: number;
  sort?: { target: SortTarget; order: SortOrder };
  /** Member-local read, without a round of consensus. */
  serializable?: boolean;
  keysOnly?: boolean;
  countOnly?: boolean;
  minModRevision?: number;
  maxModRevision?: number;
  minCreateRevision?: number;
  maxCreateRevision?: number;
}

export interface PutOptions extends CallOptions {
  lease?: bigint;
  prevKv?: boolean;
  ignoreValue?: boolean;
  ignoreLease?: boolean;
}

export interface DeleteOptions extends RangeSpec, CallOptions {
  prevKv?: boolean;
}

export interface IterateOptions extends RangeSpec, CallOptions {
  /** Keys per request (default 1,000). */
  pageSize?: number;
  /** Revision to read at (default: the revision of the first page, so every page agrees). */
  revision?: number;
  keysOnly?: boolean;
  serializable?: boolean;
}

const sortTargets: Record<SortTarget, pb.RangeRequest_SortTarget> = {
  key: pb.RangeRequest_SortTarget.KEY, version: pb.RangeRequest_SortTarget.VERSION,
  create: pb.RangeRequest_SortTarget.CREATE, mod: pb.RangeRequest_SortTarget.MOD, value: pb.RangeRequest_SortTarget.VALUE,
};
const sortOrders: Record<SortOrder, pb.RangeRequest_SortOrder> = {
  none: pb.RangeRequest_SortOrder.NONE, ascend: pb.RangeRequest_SortOrder.ASCEND, descend: pb.RangeRequest_SortOrder.DESCEND,
};

export function rangeRequest(key: Bytes, o: GetOptions = {}): pb.RangeRequest {
  const [k, end] = rangeOf(toBuffer(key), o);
  return {
    key: k,
    rangeEnd: end,
    limit: o.limit ?? 0,
    revision: o.revision ?? 0,
    sortOrder: sortOrders[o.sort?.order ?? 'none'],
    sortTarget: sortTargets[o.sort?.target ?? 'key'],
    serializable: o.serializable ?? false,
    keysOnly: o.keysOnly ?? false,
    countOnly: o.countOnly ?? false,
    minModRevision: o.minModRevision ?? 0,
    maxModRevision: o.maxModRevision ?? 0,
    minCreateRevision: o.minCreateRevision ?? 0,
    maxCreateRevision: o.maxCreateRevision ?? 0,
  };
}

export function putRequest(key: Bytes, value: Bytes, o: PutOptions = {}): pb.PutRequest {
  return {
    key: toBuffer(key), value: toBuffer(value), lease: o.lease ?? 0n,
    prevKv: o.prevKv ?? false, ignoreValue: o.ignoreValue ?? false, ignoreLease: o.ignoreLease ?? false,
  };
}

export function deleteRequest(key: Bytes, o: DeleteOptions = {}): pb.DeleteRangeRequest {
  const [k, end] = rangeOf(toBuffer(key), o);
  return { key: k, rangeEnd: end, prevKv: o.prevKv ?? false };
}

// ---- txn builder

export type CompareOp = '=' | '!=' | '>' | '<';
const compareResults: Record<CompareOp, pb.Compare_CompareResult> = {
  '=': pb.Compare_CompareResult.EQUAL, '!=': pb.Compare_CompareResult.NOT_EQUAL,
  '>': pb.Compare_CompareResult.GREATER, '<': pb.Compare_CompareResult.LESS,
};

function compare(key: Bytes, op: CompareOp, target: pb.Compare_CompareTarget, set: Partial<pb.Compare>, range?: RangeSpec): pb.Compare {
  const [k, end] = rangeOf(toBuffer(key), range);
  return {
    result: compareResults[op], target, key: k, rangeEnd: end,
    version: undefined, createRevision: undefined, modRevision: undefined, value: undefined, lease: undefined,
    ...set,
  };
}

/** Compares for Txn's `if`: `Compare.value('k', '=', 'v')`, `Compare.version('k', '>', 0)`, ... */
export const Compare = {
  value: (key: Bytes, op: CompareOp, value: Bytes, range?: RangeSpec) => compare(key, op, pb.Compare_CompareTarget.VALUE, { value: toBuffer(value) }, range),
  version: (key: Bytes, op: CompareOp, version: number, range?: RangeSpec) => compare(key, op, pb.Compare_CompareTarget.VERSION, { version: BigInt(version) }, range),
  createRevision: (key: Bytes, op: CompareOp, revision: number, range?: RangeSpec) => compare(key, op, pb.Compare_CompareTarget.CREATE, { createRevision: BigInt(revision) }, range),
  modRevision: (key: Bytes, op: CompareOp, revision: number, range?: RangeSpec) => compare(key, op, pb.Compare_CompareTarget.MOD, { modRevision: BigInt(revision) }, range),
  lease: (key: Bytes, op: CompareOp, lease: bigint, range?: RangeSpec) => compare(key, op, pb.Compare_CompareTarget.LEASE, { lease }, range),
};

const noOp = { requestRange: undefined, requestPut: undefined, requestDeleteRange: undefined, requestTxn: undefined };

/** Operations for Txn's `then`/`else`. */
export const Op = {
  get: (key: Bytes, o?: GetOptions): pb.RequestOp => ({ ...noOp, requestRange: rangeRequest(key, o) }),
  put: (key: Bytes, value: Bytes, o?: PutOptions): pb.RequestOp => ({ ...noOp, requestPut: putRequest(key, value, o) }),
  delete: (key: Bytes, o?: DeleteOptions): pb.RequestOp => ({ ...noOp, requestDeleteRange: deleteRequest(key, o) }),
  txn: (t: Txn): pb.RequestOp => ({ ...noOp, requestTxn: t.request() }),
};

/** `kv.txn().if(...).then(...).else(...).commit()`; each part may be given once, in that order. */
export class Txn {
  private compares: pb.Compare[] = [];
  private success: pb.RequestOp[] = [];
  private failure: pb.RequestOp[] = [];
  private stage: 0 | 1 | 2 | 3 = 0;

  constructor(private readonly commitFn?: (req: pb.TxnRequest, opts?: CallOptions) => Promise<pb.TxnResponse>) {}

  if(...c: pb.Compare[]): this { this.advance(1, 'if'); this.compares = c; return this; }
  then(...ops: pb.RequestOp[]): this { this.advance(2, 'then'); this.success = ops; return this; }
  else(...ops: pb.RequestOp[]): this { this.advance(3, 'else'); this.failure = ops; return this; }

  request(): pb.TxnRequest {
    return { compare: this.compares, success: this.success, failure: this.failure };
  }

  commit(opts?: CallOptions): Promise<pb.TxnResponse> {
    if (!this.commitFn) throw new TypeError('a nested txn is committed by its parent');
    return this.commitFn(this.request(), opts);
  }

  private advance(to: 1 | 2 | 3, name: string): void {
    if (this.stage >= to) throw new TypeError(`txn: ${name} after ${['', 'if', 'then', 'else'][this.stage]}`);
    this.stage = to;
  }
}

export class KVClient {
  constructor(private readonly conn: Connection) {}

  get(key: Bytes, opts?: GetOptions): Promise<pb.RangeResponse> {
    return this.conn.unary(KV.range, rangeRequest(key, opts), opts);
  }

  put(key: Bytes, value: Bytes, opts?: PutOptions): Promise<pb.PutResponse> {
    return this.conn.unary(KV.put, putRequest(key, value, opts), opts);
  }

  delete(key: Bytes, opts?: DeleteOptions): Promise<pb.DeleteRangeResponse> {
    return this.conn.unary(KV.deleteRange, deleteRequest(key, opts), opts);
  }

  /** Compacts history before revision; physical waits until the space is reclaimed. */
  compact(revision: number, opts?: CallOptions & { physical?: boolean }): Promise<pb.CompactionResponse> {
    return this.conn.unary(KV.compact, { revision, physical: opts?.physical ?? false }, opts);
  }

  txn(): Txn {
    return new Txn((req, opts) => this.conn.unary(KV.txn, req, opts));
  }

  /**
   * Every key of the range, in key order, fetched a page at a time, all pages at one revision
   * (the first page's, unless given), so the result is a consistent snapshot even while others write.
   */
  async *iterate(key: Bytes, opts: IterateOptions = {}): AsyncGenerator<KeyValue> {
    const pageSize = opts.pageSize ?? 1000;
    if (!(pageSize > 0)) throw new TypeError('pageSize must be positive');
    const [first, end] = rangeOf(toBuffer(key), opts);
    let revision = opts.revision ?? 0;
    let from = first;
    for (;;) {
      const res = await this.conn.unary(KV.range, {
        ...rangeRequest(from, { limit: pageSize, revision, keysOnly: opts.keysOnly, serializable: opts.serializable }),
        rangeEnd: end.length === 0 ? Buffer.from(keyAfter(first)) : end,
      }, opts);
      if (revision === 0) revision = res.header!.revision;
      for (const kv of res.kvs) yield kv;
      if (!res.more || res.kvs.length === 0) return;
      from = keyAfter(res.kvs[res.kvs.length - 1]!.key);
    }
  }
}
