/**
 * Proposals waiting to be applied, keyed by request ID. The applier triggers a waiter with
 * the result of applying the entry that carries the same ID; a proposal that raft drops or
 * that never commits (leader change, shutdown) is failed by whoever notices.
 *
 * The registry is the bound on proposals in flight, in count and in bytes: a proposal that
 * would pass either is refused before it reaches raft (etcd's "too many requests").
 */
import { strict as assert } from 'node:assert';

/**
 * Whoever waits for a proposal's apply: the applier calls exactly one of these, once. The
 * registry holds the caller's object as it is (no record or promise of its own per proposal):
 * a gRPC call can be its own waiter (api/services.ts), so nothing is made per put to wait.
 */
export interface Waiter {
  resolve(result: unknown): void;
  reject(err: Error): void;
}

export interface WaitLimits {
  maxProposalsInFlight: number;
  maxProposalBytesInFlight: number;
  /** Milliseconds, monotonic: when a waiter registers (expireOlderThan compares). Default performance.now. */
  clock?: () => number;
}

/**
 * Slots of the ring the registry keeps waiters in: a power of two, far above the proposals a
 * member has in flight at once under load (a few hundred), so a slot is almost always free.
 */
const ringBits = 12;
const ringSlots = 1 << ringBits;

export class WaitRegistry {
  /**
   * Waiters by the low bits of their request id, with the id and the proposal's bytes beside
   * them. A member's request ids are consecutive (RequestIdGenerator), so proposals in flight
   * fall in distinct slots and a slot is reused only ringSlots proposals later. A Map keyed
   * by id rebuilt its table every few hundred puts under churn (new tables that outlived
   * scavenges) and held an entry per proposal; these arrays are made once.
   */
  private readonly slotWaiters: (Waiter | undefined)[] = new Array(ringSlots).fill(undefined);
  private readonly slotIds: (bigint | undefined)[] = new Array(ringSlots).fill(undefined);
  private readonly slotBytes = new Float64Array(ringSlots);
  /** When each slot's waiter registered (clock ms). */
  private readonly slotStarted = new Float64Array(ringSlots);
  /** Proposals whose slot was taken (a waiter pending for ringSlots proposals, or ids not made consecutively). */
  private readonly spilled = new Map<bigint, { waiter: Waiter; bytes: number; startedMs: number }>();
  private readonly clock: () => number;
  private count = 0;
  private bytesInFlight = 0;
  private readonly limits: WaitLimits;

  constructor(limits: WaitLimits) {
    this.limits = limits;
    this.clock = limits.clock ?? (() => performance.now());
  }

  get size(): number {
    return this.count;
  }

  get bytes(): number {
    return this.bytesInFlight;
  }

  /** Whether a proposal of `bytes` more would stay within both bounds. */
  hasRoomFor(bytes: number): boolean {
    return this.count < this.limits.maxProposalsInFlight
      && this.bytesInFlight + bytes <= this.limits.maxProposalBytesInFlight;
  }

  /** Registers `w` as the waiter of the proposal `id` of `bytes` (held as is until taken). */
  register(id: bigint, bytes: number, w: Waiter): void {
    // Not assert.ok(cond, `...${id}`): that would format the bigint id on every proposal.
    const slot = slotOf(id);
    if (this.slotIds[slot] === id || (this.spilled.size > 0 && this.spilled.has(id))) assert.fail(`wait: request id ${id} registered twice`);
    const startedMs = this.clock();
    if (this.slotIds[slot] === undefined) {
      this.slotWaiters[slot] = w;
      this.slotIds[slot] = id;
      this.slotBytes[slot] = bytes;
      this.slotStarted[slot] = startedMs;
    } else {
      this.spilled.set(id, { waiter: w, bytes, startedMs });
    }
    this.count++;
    this.bytesInFlight += bytes;
  }

  take(id: bigint): Waiter | undefined {
    const slot = slotOf(id);
    if (this.slotIds[slot] === id) {
      const w = this.slotWaiters[slot]!;
      this.slotWaiters[slot] = undefined;
      this.slotIds[slot] = undefined;
      this.freed(this.slotBytes[slot]!);
      return w;
    }
    if (this.spilled.size === 0) return undefined;
    const e = this.spilled.get(id);
    if (e === undefined) return undefined;
    this.spilled.delete(id);
    this.freed(e.bytes);
    return e.waiter;
  }

  private freed(bytes: number): void {
    this.count--;
    this.bytesInFlight -= bytes;
  }

  /**
   * Takes every waiter registered before `cutoffMs` and rejects it with `errorFor(its start)`;
   * returns how many. For proposals raft accepted but will never apply (a leader lost with the
   * entry uncommitted, a forwarded MsgProp dropped): etcd answers those once its request
   * timeout passes and frees the wait (processInternalRaftRequestOnce's "GC wait"); without
   * this they would wait forever and hold their share of the in-flight bound. An entry applied
   * later finds no waiter, as in etcd.
   */
  expireOlderThan(cutoffMs: number, errorFor: (startedMs: number) => Error): number {
    if (this.count === 0) return 0; // an idle member's sweep: no scan of the ring
    const expired: Array<[Waiter, number]> = [];
    for (let slot = 0; slot < ringSlots; slot++) {
      const w = this.slotWaiters[slot];
      if (w === undefined || this.slotStarted[slot]! >= cutoffMs) continue;
      expired.push([w, this.slotStarted[slot]!]);
      this.slotWaiters[slot] = undefined;
      this.slotIds[slot] = undefined;
      this.freed(this.slotBytes[slot]!);
    }
    for (const [id, e] of this.spilled) {
      if (e.startedMs >= cutoffMs) continue;
      expired.push([e.waiter, e.startedMs]);
      this.spilled.delete(id);
      this.freed(e.bytes);
    }
    for (const [w, startedMs] of expired) w.reject(errorFor(startedMs));
    return expired.length;
  }

  /** Fails every waiter (shutdown, or leadership lost with proposals in flight). */
  failAll(err: Error): void {
    const all: Waiter[] = [];
    for (let slot = 0; slot < ringSlots; slot++) {
      const w = this.slotWaiters[slot];
      if (w === undefined) continue;
      all.push(w);
      this.slotWaiters[slot] = undefined;
      this.slotIds[slot] = undefined;
    }
    for (const e of this.spilled.values()) all.push(e.waiter);
    this.spilled.clear();
    this.count = 0;
    this.bytesInFlight = 0;
    for (const w of all) w.reject(err);
  }
}

/** The ring slot of request `id`: its low bits (consecutive ids, consecutive slots). */
function slotOf(id: bigint): number {
  return Number(BigInt.asUintN(ringBits, id));
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
