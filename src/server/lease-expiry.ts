/**
 * Lease expiry, decided by the leader alone (etcd's lessor runLoop + revokeExpiredLeases):
 * every half second the primary lessor is asked which leases have expired, and their
 * revocation is proposed through raft, so expiry is one decision the whole cluster applies.
 * At most `leaseRevokeRate`/2 leases are taken per half second (1,000/s) and at most
 * `maxPendingRevokes` revoke proposals are in flight, so a mass expiry never starves
 * client writes. With checkpoints on, due remaining-TTL checkpoints are proposed the same way.
 *
 * Leadership: promoted when this member, as leader, applies its term's first (empty) entry;
 * demoted when it loses leadership (leases stop expiring here; the next leader decides).
 */
import {
  Lessor, leaseRevokeRate, maxCheckpointBatch,
} from '../lease/index.js';
import type { Logger } from '../log/index.js';
import type { RaftRequest } from './request-codec.js';
import type { AuthInfo } from './auth-server.js';
import { rootUser } from '../auth/index.js';

/** How often the loop runs (etcd's runLoop: 500 ms). */
export const expiryTickMs = 500;
/** etcd's maxPendingRevokes: revoke proposals in flight at once. */
export const maxPendingRevokes = 16;
/** Expired lease ids waiting to be proposed (etcd's expiredC holds 16 batches of 500). */
export const maxQueuedRevokes = 16 * (leaseRevokeRate / 2);

/** etcd's minTTL: ceil(((3 * electionTicks) / 2) heartbeats), in seconds (integer division as in Go). */
export function minLeaseTtlSeconds(electionTimeoutMs: number, heartbeatIntervalMs: number): number {
  const electionTicks = Math.max(1, Math.round(electionTimeoutMs / heartbeatIntervalMs));
  return Math.ceil((Math.floor((3 * electionTicks) / 2) * heartbeatIntervalMs) / 1000);
}

export interface LeaseExpiryOptions {
  lessor: Lessor;
  /** The lessor's clock (ms, monotonic). */
  clock(): number;
  /** Proposes through raft with `ai` in the entry's header; resolves when applied. */
  propose(r: RaftRequest, ai?: AuthInfo): Promise<unknown>;
  /**
   * Who revokes an expired lease: root at the current auth revision while auth is on, so the
   * revoke passes the apply-time WRITE checks on the lease's keys (etcd's authStore.WithRoot);
   * undefined (nobody) while it is off.
   */
  revoker(): AuthInfo | undefined;
  log: Logger;
  /** --election-timeout: a promoted lessor gives every lease this much extra (etcd's Promote(electionTimeout)). */
  electionTimeoutMs: number;
  /** Checkpoints proposed when due (--experimental-enable-lease-checkpoint). */
  checkpoints: boolean;
}

export class LeaseExpiry {
  private timer: NodeJS.Timeout | undefined;
  private readonly queue: bigint[] = [];
  private inFlight = 0;
  private readonly o: LeaseExpiryOptions;

  constructor(opts: LeaseExpiryOptions) {
    this.o = opts;
  }

  start(): void {
    this.timer = setInterval(() => this.tick(), expiryTickMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.queue.length = 0;
  }

  /** This member leads and has applied every entry of earlier terms: its lessor becomes the primary. */
  promote(): void {
    this.o.lessor.promote(this.o.electionTimeoutMs, this.o.clock());
  }

  /** Leadership lost: expiry is the next leader's to decide. */
  demote(): void {
    this.o.lessor.demote();
    this.queue.length = 0;
  }

  /** One round of the loop (public so tests may drive it). */
  tick(): void {
    const { lessor } = this.o;
    if (!lessor.isPrimary) return;
    const now = this.o.clock();
    const room = Math.min(leaseRevokeRate / 2, maxQueuedRevokes - this.queue.length);
    if (room > 0) for (const l of lessor.expired(now, room)) this.queue.push(l.id);
    this.pump();
    if (this.o.checkpoints) this.proposeCheckpoints(now);
  }

  private pump(): void {
    while (this.inFlight < maxPendingRevokes && this.queue.length > 0) {
      const id = this.queue.shift()!;
      this.inFlight++;
      this.o.propose({ kind: 'leaseRevoke', req: { ID: id } }, this.o.revoker())
        .catch((err: unknown) => {
          // Not found: revoked meanwhile by a client. Anything else: offered again later.
          if ((err as { kind?: string }).kind !== 'LeaseNotFound') {
            this.o.log.warn('failed to revoke lease', { 'lease-id': hex16(id), error: (err as Error).message });
          }
        })
        .finally(() => {
          this.inFlight--;
          this.pump();
        });
    }
  }

  /** etcd's checkpointScheduledLeases: batches of up to 1,000, at most 500 batches a round. */
  private proposeCheckpoints(now: number): void {
    for (let i = 0; i < leaseRevokeRate / 2; i++) {
      const cps = this.o.lessor.dueCheckpoints(now, maxCheckpointBatch);
      if (cps.length > 0) {
        this.o.propose({ kind: 'leaseCheckpoint', req: { checkpoints: cps } }).catch((err: unknown) => {
          this.o.log.warn('failed to checkpoint leases', { error: (err as Error).message });
        });
      }
      if (cps.length < maxCheckpointBatch) return;
    }
  }
}

/** etcd's authStore.WithRoot for the revoker: root at the current auth revision while auth is on, else nobody. */
export function rootWhileAuthOn(auth: { readonly enabled: boolean; readonly revision: number }): () => AuthInfo | undefined {
  return () => (auth.enabled ? { username: rootUser, revision: auth.revision } : undefined);
}

/** etcd prints lease ids as %016x. */
export function hex16(id: bigint): string {
  return BigInt.asUintN(64, id).toString(16).padStart(16, '0');
}
