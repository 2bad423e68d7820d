/**
 * The lessor (etcd's lease/lessor.go): leases, the keys attached to each, and when each
 * expires. Pure bookkeeping: it keeps no timers and reads no clock — every call that needs
 * the time is given `nowMs` (a monotonic millisecond clock the server owns) — and it never
 * proposes anything. The server (server/lease-expiry.ts) asks it which leases have expired
 * and proposes their revocation through raft; apply then calls `revoke` on every member.
 *
 * State that is part of the replicated state machine (which leases exist, their TTL, the
 * remaining TTL a checkpoint recorded, which keys are attached) changes only by apply.
 * Expiry times are local: only the primary (the leader's lessor) keeps them; elsewhere a
 * lease never expires ("forever"), exactly as in etcd. Promotion gives every lease its
 * remaining TTL plus `extend` afresh, so a restart or a leader change never expires a lease
 * early.
 *
 * Persistence: the backend's `lease` bucket holds leasepb.Lease{ID, TTL, RemainingTTL}
 * under the 8-byte big-endian id, as etcd writes it. Attached keys are not stored there:
 * they are rebuilt from the key bucket (each key's `lease` field) when the MVCC store opens,
 * which calls `attachKey` for every live key (etcd's kvstore restore does the same).
 */
import { etcdError } from '../errors/index.js';
import { LeaseRecord, type LeaseCheckpoint } from '../proto/index.js';
import type { Backend } from '../storage/index.js';
import { DeadlineQueue } from './deadline-queue.js';

/** etcd's MaxLeaseTTL: 9,000,000,000 seconds. */
export const maxLeaseTtlSeconds = 9_000_000_000;
/** etcd's leaseRevokeRate: expired leases revoked per second at most. */
export const leaseRevokeRate = 1000;
/** etcd's defaultLeaseCheckpointInterval: 5 minutes. */
export const defaultCheckpointIntervalMs = 5 * 60 * 1000;
/** etcd's maxLeaseCheckpointBatchSize: checkpoints per raft entry. */
export const maxCheckpointBatch = 1000;

/** Renew was asked of a lessor that is not the primary (etcd's ErrNotPrimary; never sent to a client). */
export class NotPrimaryError extends Error {
  constructor() {
    super('not a primary lessor');
    this.name = 'NotPrimaryError';
  }
}

/** One lease. Keys are held as latin1 strings (one char per byte: lossless, cheap to hash). */
export class Lease {
  /** Milliseconds on the lessor's clock; Infinity while not primary ("forever"). */
  expiryMs = Infinity;
  readonly keys = new Set<string>();
  private revokedWaiters: Array<() => void> = [];

  constructor(
    readonly id: bigint,
    /** Granted TTL in seconds (raised to the minimum TTL). */
    readonly ttl: number,
    /** Seconds left as of the last checkpoint; 0 = unset, use the full TTL. */
    public remainingTtl: number,
  ) {}

  /** The TTL a refresh starts from: the checkpointed remainder if one is set. */
  get refreshTtl(): number {
    return this.remainingTtl > 0 ? this.remainingTtl : this.ttl;
  }

  /** Milliseconds until expiry as of `nowMs` (Infinity when not primary). */
  remainingMs(nowMs: number): number {
    return this.expiryMs - nowMs;
  }

  expired(nowMs: number): boolean {
    return this.remainingMs(nowMs) <= 0;
  }

  /** The attached keys, sorted bytewise (the order revoke deletes them in, as etcd sorts). */
  sortedKeys(): Buffer[] {
    return [...this.keys].sort().map((k) => Buffer.from(k, 'latin1'));
  }

  /**
   * Resolves when the lease is revoked or the lessor demoted (a keep-alive of an expired
   * lease waits for that, as etcd's does, then asks again).
   */
  whenRevoked(): Promise<void> {
    return new Promise((resolve) => this.revokedWaiters.push(resolve));
  }

  /** @internal the lessor calls it when the lease is gone or the lessor demoted. */
  wakeWaiters(): void {
    const ws = this.revokedWaiters;
    this.revokedWaiters = [];
    for (const w of ws) w();
  }
}

export interface LessorOptions {
  backend: Backend;
  /** etcd's minLeaseTTL: grants below it are raised to it (seconds). */
  minTtlSeconds: number;
  /** How often the primary checkpoints a long lease's remaining TTL (ms); 0 = checkpoints off. */
  checkpointIntervalMs?: number;
  /** Write checkpointed remaining TTLs to the backend (--experimental-enable-lease-checkpoint-persist). */
  checkpointPersist?: boolean;
  /** An expired lease whose revoke did not land is offered again after this long (etcd: the request timeout). */
  expiredRetryMs: number;
}

export class Lessor {
  private readonly leases = new Map<bigint, Lease>();
  /** Key (latin1) → the lease it is attached to (etcd's itemMap). */
  private readonly keyLease = new Map<string, bigint>();
  private readonly expiries = new DeadlineQueue();
  private readonly checkpoints = new DeadlineQueue();
  private primary = false;
  private readonly o: LessorOptions;

  constructor(opts: LessorOptions) {
    this.o = opts;
    this.recover();
  }

  get isPrimary(): boolean {
    return this.primary;
  }

  get minTtlSeconds(): number {
    return this.o.minTtlSeconds;
  }

  get size(): number {
    return this.leases.size;
  }

  /**
   * The lease bucket was replaced (a leader's snapshot installed): every lease and attached
   * key is forgotten and the bucket read again (etcd's Recover); the store re-attaches keys as
   * it rebuilds. A primary stays primary over the new leases.
   */
  reload(nowMs: number): void {
    const wasPrimary = this.primary;
    this.demote();
    this.leases.clear();
    this.keyLease.clear();
    this.recover();
    if (wasPrimary) this.promote(0, nowMs);
  }

  /** The leases the lease bucket holds, every one "forever" until promotion. */
  private recover(): void {
    for (const [k, v] of this.o.backend.scan('lease')) {
      let rec: LeaseRecord;
      try {
        rec = LeaseRecord.decode(v);
      } catch (e) {
        throw new Error(`failed to Unmarshal lease proto item; lease ID=${k.toString('hex')}`, { cause: e });
      }
      const ttl = Math.max(rec.TTL, this.o.minTtlSeconds);
      this.leases.set(rec.ID, new Lease(rec.ID, ttl, rec.RemainingTTL));
    }
  }

  has(id: bigint): boolean {
    return this.leases.has(id);
  }

  lookup(id: bigint): Lease | undefined {
    return this.leases.get(id);
  }

  // ------------------------------------------------------------ applied changes

  /** Grants lease `id` (apply of LeaseGrant). Throws etcd's errors for id 0, too large a TTL, an existing id. */
  grant(id: bigint, ttlSeconds: number, nowMs: number): Lease {
    if (id === 0n) throw etcdError('LeaseNotFound');
    if (ttlSeconds > maxLeaseTtlSeconds) throw etcdError('LeaseTTLTooLarge');
    if (this.leases.has(id)) throw etcdError('LeaseExist');
    const l = new Lease(id, Math.max(ttlSeconds, this.o.minTtlSeconds), 0);
    this.leases.set(id, l);
    this.persist(l);
    if (this.primary) {
      this.refresh(l, 0, nowMs);
      this.scheduleCheckpoint(l, nowMs);
    }
    return l;
  }

  /**
   * Revokes lease `id` (apply of LeaseRevoke): `deleteKeys` receives the attached keys,
   * sorted, and must delete them all in one write (one revision); then the lease is gone
   * from memory and the backend. Throws LeaseNotFound for an unknown id.
   */
  revoke(id: bigint, deleteKeys: (keys: Buffer[]) => void): void {
    const l = this.leases.get(id);
    if (l === undefined) throw etcdError('LeaseNotFound');
    const keys = l.sortedKeys();
    if (keys.length > 0) deleteKeys(keys);
    this.leases.delete(id);
    for (const k of l.keys) this.keyLease.delete(k);
    this.expiries.delete(id);
    this.checkpoints.delete(id);
    this.o.backend.del('lease', leaseKey(id));
    l.wakeWaiters();
  }

  /** Records a lease's remaining TTL (apply of LeaseCheckpoint); unknown ids are ignored, as etcd does. */
  checkpoint(id: bigint, remainingTtl: number, nowMs: number): void {
    const l = this.leases.get(id);
    if (l === undefined) return;
    l.remainingTtl = remainingTtl;
    if (this.o.checkpointPersist) this.persist(l);
    if (this.primary) this.scheduleCheckpoint(l, nowMs);
  }

  /**
   * The MVCC store's hook: `key` now carries `lease` (0n: none, or deleted). Moves the key
   * between leases as needed. Free when no key has a lease and none is given (the hot path).
   */
  attachKey(key: Uint8Array, lease: bigint): void {
    if (lease === 0n && this.keyLease.size === 0) return;
    const k = Buffer.from(key.buffer, key.byteOffset, key.length).toString('latin1');
    const old = this.keyLease.get(k);
    if (old === lease) return;
    if (old !== undefined) {
      this.leases.get(old)?.keys.delete(k);
      this.keyLease.delete(k);
    }
    if (lease === 0n) return;
    const l = this.leases.get(lease);
    // The store checks the lease before it writes; at restore a key may name a lease that is
    // gone only if the backend lost a write, which etcd also just logs.
    if (l === undefined) return;
    l.keys.add(k);
    this.keyLease.set(k, lease);
  }

  // ------------------------------------------------------------ primary only (local, not replicated)

  /**
   * Becomes the primary: every lease expires `extendMs` after its (checkpointed) remaining
   * TTL from now. With many leases, expiries bunched into one second are spread so that at
   * most 3/4 of the revoke rate fall in any second (etcd's Promote).
   */
  promote(extendMs: number, nowMs: number): void {
    this.primary = true;
    for (const l of this.leases.values()) {
      this.refresh(l, extendMs, nowMs);
      this.scheduleCheckpoint(l, nowMs);
    }
    if (this.leases.size < leaseRevokeRate) return;
    const sorted = [...this.leases.values()].sort((a, b) => a.expiryMs - b.expiryMs);
    const target = Math.floor((3 * leaseRevokeRate) / 4);
    let baseWindow = sorted[0]!.remainingMs(nowMs);
    let nextWindow = baseWindow + 1000;
    let expires = 0;
    for (const l of sorted) {
      const remaining = l.remainingMs(nowMs);
      if (remaining > nextWindow) {
        baseWindow = remaining;
        nextWindow = baseWindow + 1000;
        expires = 1;
        continue;
      }
      expires++;
      if (expires <= target) continue;
      const delay = (1000 * expires) / target - (remaining - baseWindow);
      nextWindow = baseWindow + delay;
      this.refresh(l, delay + extendMs, nowMs);
      this.scheduleCheckpoint(l, nowMs);
    }
  }

  /** Stops being the primary: leases no longer expire here. */
  demote(): void {
    this.primary = false;
    for (const l of this.leases.values()) {
      l.expiryMs = Infinity;
      l.wakeWaiters();
    }
    this.expiries.clear();
    this.checkpoints.clear();
  }

  /**
   * Renews lease `id` on the primary: it expires a full TTL from now. Returns the TTL.
   * Throws NotPrimaryError off the primary, LeaseNotFound for an unknown lease. An expired
   * lease is not renewed: the caller waits for its revocation (Lease.whenRevoked), as etcd's does.
   */
  renew(id: bigint, nowMs: number): { ttl: number } | { expired: Lease } {
    if (!this.primary) throw new NotPrimaryError();
    const l = this.leases.get(id);
    if (l === undefined) throw etcdError('LeaseNotFound');
    if (l.expired(nowMs)) return { expired: l };
    this.refresh(l, 0, nowMs, l.ttl);
    return { ttl: l.ttl };
  }

  /** Every lease, soonest expiry first (etcd's Leases). */
  list(): Lease[] {
    return [...this.leases.values()].sort((a, b) => a.expiryMs - b.expiryMs);
  }

  /**
   * Up to `limit` expired leases (etcd's findExpiredLeases). Each one returned is offered
   * again only after expiredRetryMs, so a revoke that is lost (a leader change) is retried,
   * while one in flight is not proposed twice meanwhile.
   */
  expired(nowMs: number, limit: number): Lease[] {
    const out: Lease[] = [];
    while (out.length < limit) {
      const top = this.expiries.peek();
      if (top === undefined || top.time > nowMs) break;
      const l = this.leases.get(top.id);
      if (l === undefined) {
        this.expiries.pop();
        continue;
      }
      this.expiries.set(top.id, nowMs + this.o.expiredRetryMs);
      if (l.expired(nowMs)) out.push(l);
    }
    return out;
  }

  /** Checkpoints due by `nowMs`, at most `limit` (etcd's findDueScheduledCheckpoints). */
  dueCheckpoints(nowMs: number, limit: number): LeaseCheckpoint[] {
    const out: LeaseCheckpoint[] = [];
    while (out.length < limit) {
      const top = this.checkpoints.peek();
      if (top === undefined || top.time > nowMs) break;
      this.checkpoints.pop();
      const l = this.leases.get(top.id);
      if (l === undefined || l.expiryMs <= nowMs) continue;
      const remaining = Math.ceil((l.expiryMs - nowMs) / 1000);
      if (remaining >= l.ttl) continue;
      out.push({ ID: l.id, remainingTTL: remaining });
    }
    return out;
  }

  /** Whether a renew must also clear a checkpointed remaining TTL through raft (etcd's clearRemainingTTL). */
  renewClearsCheckpoint(id: bigint): boolean {
    return this.checkpointsOn && (this.leases.get(id)?.remainingTtl ?? 0) > 0;
  }

  private get checkpointsOn(): boolean {
    return (this.o.checkpointIntervalMs ?? 0) > 0;
  }

  private refresh(l: Lease, extendMs: number, nowMs: number, ttl = l.refreshTtl): void {
    l.expiryMs = nowMs + extendMs + ttl * 1000;
    this.expiries.set(l.id, l.expiryMs);
  }

  private scheduleCheckpoint(l: Lease, nowMs: number): void {
    const interval = this.o.checkpointIntervalMs ?? 0;
    if (interval <= 0) return;
    if (l.refreshTtl > interval / 1000) this.checkpoints.set(l.id, nowMs + interval);
  }

  private persist(l: Lease): void {
    const rec = LeaseRecord.encode({ ID: l.id, TTL: l.ttl, RemainingTTL: l.remainingTtl }).finish();
    this.o.backend.put('lease', leaseKey(l.id), Buffer.from(rec.buffer, rec.byteOffset, rec.length));
  }
}

/** The lease bucket's key: the id as 8 bytes, big-endian (etcd's int64ToBytes). */
export function leaseKey(id: bigint): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64BE(BigInt.asUintN(64, id));
  return b;
}
