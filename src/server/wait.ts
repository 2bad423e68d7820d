/**
 * Proposals waiting to be applied, keyed by request ID. The applier triggers a waiter with
 * the result of applying the entry that carries the same ID; a proposal that raft drops or
 * that never commits (leader change, shutdown) is failed by whoever notices.
 *
 * The registry is the bound on proposals in flight, in count and in bytes: a proposal that
 * would pass either is refused before it reaches raft (etcd's "too many requests").
 */
import { strict as assert } from 'node:assert';

export interface Waiter {
  resolve(result: unknown): void;
  reject(err: Error): void;
}

interface Entry extends Waiter {
  readonly bytes: number;
}

export interface WaitLimits {
  maxProposalsInFlight: number;
  maxProposalBytesInFlight: number;
}

export class WaitRegistry {
  private readonly waiters = new Map<bigint, Entry>();
  private bytesInFlight = 0;
  private readonly limits: WaitLimits;

  constructor(limits: WaitLimits) {
    this.limits = limits;
  }

  get size(): number {
    return this.waiters.size;
  }

  get bytes(): number {
    return this.bytesInFlight;
  }

  /** Whether a proposal of `bytes` more would stay within both bounds. */
  hasRoomFor(bytes: number): boolean {
    return this.waiters.size < this.limits.maxProposalsInFlight
      && this.bytesInFlight + bytes <= this.limits.maxProposalBytesInFlight;
  }

  register(id: bigint, bytes: number, w: Waiter): void {
    this.add(id, { bytes, resolve: w.resolve, reject: w.reject });
  }

  /**
   * Registers a proposal under `id` and returns the promise its waiter settles: the hot path,
   * one record per proposal (register() copies a caller's waiter into its own).
   */
  wait<T>(id: bigint, bytes: number): Promise<T> {
    let entry!: Entry;
    const settled = new Promise<T>((resolve, reject) => { entry = { bytes, resolve: resolve as (r: unknown) => void, reject }; });
    this.add(id, entry);
    return settled;
  }

  private add(id: bigint, e: Entry): void {
    // Not assert.ok(cond, `...${id}`): that would format the bigint id on every proposal.
    if (this.waiters.has(id)) assert.fail(`wait: request id ${id} registered twice`);
    this.waiters.set(id, e);
    this.bytesInFlight += e.bytes;
  }

  take(id: bigint): Waiter | undefined {
    const w = this.waiters.get(id);
    if (w === undefined) return undefined;
    this.waiters.delete(id);
    this.bytesInFlight -= w.bytes;
    return w;
  }

  /** Fails every waiter (shutdown, or leadership lost with proposals in flight). */
  failAll(err: Error): void {
    const all = [...this.waiters.values()];
    this.waiters.clear();
    this.bytesInFlight = 0;
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
