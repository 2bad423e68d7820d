/**
 * Proposals waiting to be applied, keyed by request ID. The applier triggers a waiter with
 * the result of applying the entry that carries the same ID; a proposal that raft drops or
 * that never commits (leader change, shutdown) is failed by whoever notices.
 */
import type { RaftRequest } from './request-codec.js';

export interface Waiter {
  /** The request object the proposer holds, so the applier need not decode its own entries. */
  readonly request: RaftRequest;
  resolve(result: unknown): void;
  reject(err: Error): void;
}

export class WaitRegistry {
  private readonly waiters = new Map<bigint, Waiter>();

  /** Bounded by the proposal limit enforced in front of raft (maxPendingProposals). */
  get size(): number {
    return this.waiters.size;
  }

  register(id: bigint, w: Waiter): void {
    this.waiters.set(id, w);
  }

  take(id: bigint): Waiter | undefined {
    const w = this.waiters.get(id);
    if (w !== undefined) this.waiters.delete(id);
    return w;
  }

  /** Fails every waiter (shutdown, or leadership lost with proposals in flight). */
  failAll(err: Error): void {
    const all = [...this.waiters.values()];
    this.waiters.clear();
    for (const w of all) w.reject(err);
  }
}

/**
 * Request IDs as etcd's idutil makes them: the low 16 bits of the member id in the top 16
 * bits, then a 48-bit counter that starts from the clock so IDs stay unique across restarts.
 */
export class RequestIdGenerator {
  private readonly prefix: bigint;
  private suffix: number;

  constructor(memberId: bigint, nowMs: number) {
    this.prefix = (memberId & 0xffffn) << 48n;
    // etcd: (unix ms << 8) within 40 bits of suffix space; any monotone start works.
    this.suffix = (nowMs * 256) % 2 ** 48;
  }

  next(): bigint {
    this.suffix = (this.suffix + 1) % 2 ** 48;
    return this.prefix | BigInt(this.suffix);
  }
}
