// transaction(fn): software transactional memory over etcd, as clientv3/concurrency's STM with
// snapshot isolation. fn reads and writes through the Stm it is given; reads all come from one
// revision (the first read's), writes are buffered; commit is one Txn that succeeds only if no
// key fn read has changed since (mod_revision compares), else fn runs again on fresh data.
import type { etcdserverpb as pb } from '../proto/index.js';
import type { CallOptions } from './connection.js';
import { Compare, Op, type KVClient } from './kv.js';
import { toBuffer, type Bytes } from './bytes.js';

export interface Stm {
  /** The value of key (undefined when absent) as of the transaction's snapshot, or as written by it. */
  get(key: Bytes): Promise<Buffer | undefined>;
  put(key: Bytes, value: Bytes): void;
  delete(key: Bytes): void;
}

export interface TransactionOptions extends CallOptions {
  /** Runs of fn before giving up with StmConflictError (default 10). */
  maxAttempts?: number;
}

/** Every attempt of a transaction met a concurrent change of what it read. */
export class StmConflictError extends Error {
  constructor(readonly attempts: number) {
    super(`transaction conflicted on each of ${attempts} attempts`);
    this.name = 'StmConflictError';
  }
}

class Attempt implements Stm {
  /** Key (latin1) -> mod_revision seen (0: absent) and value. */
  readonly reads = new Map<string, { key: Buffer; modRevision: number; value: Buffer | undefined }>();
  /** Key (latin1) -> value to put, or null to delete; in the order written. */
  readonly writes = new Map<string, { key: Buffer; value: Buffer | null }>();
  private revision = 0;

  constructor(private readonly kv: KVClient, private readonly opts: CallOptions) {}

  async get(key: Bytes): Promise<Buffer | undefined> {
    const k = toBuffer(key);
    const id = k.toString('latin1');
    const written = this.writes.get(id);
    if (written) return written.value ?? undefined;
    const seen = this.reads.get(id);
    if (seen) return seen.value;
    const res = await this.kv.get(k, { ...this.opts, revision: this.revision });
    if (this.revision === 0) this.revision = res.header!.revision;
    const kv = res.kvs[0];
    this.reads.set(id, { key: k, modRevision: kv?.modRevision ?? 0, value: kv?.value });
    return kv?.value;
  }

  put(key: Bytes, value: Bytes): void {
    const k = toBuffer(key);
    this.writes.set(k.toString('latin1'), { key: k, value: toBuffer(value) });
  }

  delete(key: Bytes): void {
    const k = toBuffer(key);
    this.writes.set(k.toString('latin1'), { key: k, value: null });
  }

  commit(): Promise<pb.TxnResponse> {
    const compares = [...this.reads.values()].map((r) => Compare.modRevision(r.key, '=', r.modRevision));
    const ops = [...this.writes.values()].map((w) => (w.value === null ? Op.delete(w.key) : Op.put(w.key, w.value)));
    return this.kv.txn().if(...compares).then(...ops).commit(this.opts);
  }
}

/** Runs fn until its reads and writes commit atomically; resolves with fn's result. */
export async function transaction<T>(kv: KVClient, fn: (stm: Stm) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
  const maxAttempts = opts.maxAttempts ?? 10;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const stm = new Attempt(kv, { timeoutMs: opts.timeoutMs, signal: opts.signal });
    const result = await fn(stm);
    if ((await stm.commit()).succeeded) return result;
  }
  throw new StmConflictError(maxAttempts);
}
