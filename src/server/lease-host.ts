/**
 * The member's Lease requests (etcd's v3_server.go Lease*): grants and revokes go through
 * raft and are answered once applied; renewals and TTL queries are answered by the primary
 * lessor (the leader's) without raft, as etcd does; a follower forwards those to the leader
 * over the peer URLs (etcd's leasehttp: lease-forward.ts).
 */
import { etcdError } from '../errors/index.js';
import {
  LeaseGrantRequest, LeaseGrantResponse, LeaseRevokeRequest, LeaseRevokeResponse,
  LeaseTimeToLiveRequest, LeaseTimeToLiveResponse, LeaseLeasesResponse, ResponseHeader,
} from '../proto/index.js';
import { NotPrimaryError, type Lessor } from '../lease/index.js';
import type { LeaseService } from './service.js';
import type { AuthInfo } from './auth-server.js';
import type { RaftRequest } from './request-codec.js';
import { RequestIdGenerator } from './wait.js';
import type { LeaseForwarder } from './lease-forward.js';

/** What a lease TTL query reports for a lease that does not expire here (Go's MaxInt64 ns, in s). */
const foreverSeconds = 9_223_372_036;

export interface LeaseHostOptions {
  memberId: bigint;
  lessor: Lessor;
  clock(): number;
  /** Proposes through raft with `ai` in the entry's header; resolves when applied. */
  propose<T>(r: RaftRequest, ai?: AuthInfo): Promise<T>;
  header(): ResponseHeader;
  /** Undefined when every committed entry is applied, else a promise of that (etcd's waitAppliedIndex before a renew). */
  appliedCaughtUp(): Promise<void> | undefined;
  /** Whether this member leads (TTL queries are answered by the leader). */
  isLeader(): boolean;
  /** A follower's way to the leader's lessor (absent: a renewal without a primary answers "no leader"). */
  forwarder?: LeaseForwarder;
}

export class LeaseHost implements LeaseService {
  private readonly ids: RequestIdGenerator;
  private readonly o: LeaseHostOptions;

  constructor(opts: LeaseHostOptions) {
    this.o = opts;
    this.ids = new RequestIdGenerator(opts.memberId, Date.now());
  }

  leaseGrant(req: LeaseGrantRequest, ai?: AuthInfo): Promise<LeaseGrantResponse> {
    let id = req.ID;
    // No id given: choose one, positive (etcd: reqIDGen.Next() & (1<<63 - 1)).
    while (id === 0n) id = this.ids.next() & ((1n << 63n) - 1n);
    return this.o.propose<LeaseGrantResponse>({ kind: 'leaseGrant', req: { ID: id, TTL: req.TTL } }, ai);
  }

  leaseRevoke(req: LeaseRevokeRequest, ai?: AuthInfo): Promise<LeaseRevokeResponse> {
    return this.o.propose<LeaseRevokeResponse>({ kind: 'leaseRevoke', req: { ID: req.ID } }, ai);
  }

  /** Renews on the primary (this member's lessor, or the leader's through the forwarder); returns the TTL. */
  async leaseRenew(id: bigint): Promise<number> {
    try {
      return await this.renewAsPrimary(id);
    } catch (e) {
      if (!(e instanceof NotPrimaryError)) throw e;
      if (this.o.forwarder === undefined) throw etcdError('NoLeader');
      return this.o.forwarder.renew(id);
    }
  }

  /**
   * Renews on this member's lessor; throws NotPrimaryError when it is not the primary. An
   * expired lease is never renewed: its revocation is awaited, then LeaseNotFound.
   */
  async renewAsPrimary(id: bigint): Promise<number> {
    const behind = this.o.appliedCaughtUp();
    if (behind !== undefined) await behind; // the hot path (caught up) skips a turn
    const { lessor } = this.o;
    for (;;) {
      const r: ReturnType<Lessor['renew']> = lessor.renew(id, this.o.clock());
      if ('ttl' in r) {
        if (lessor.renewClearsCheckpoint(id)) {
          // The checkpointed remainder no longer holds: clear it everywhere (etcd's Renew).
          void this.o.propose({ kind: 'leaseCheckpoint', req: { checkpoints: [{ ID: id, remainingTTL: 0 }] } }).catch(() => undefined);
        }
        return r.ttl;
      }
      await r.expired.whenRevoked();
    }
  }

  async leaseTimeToLive(req: LeaseTimeToLiveRequest): Promise<LeaseTimeToLiveResponse> {
    if (this.o.isLeader() || this.o.forwarder === undefined) return this.timeToLiveHere(req);
    const r = await this.o.forwarder.timeToLive(req);
    return { ...r, header: this.o.header() };
  }

  /** The TTL as this member's lessor knows it (the leader's is the one that counts down). */
  async timeToLiveHere(req: LeaseTimeToLiveRequest): Promise<LeaseTimeToLiveResponse> {
    await this.o.appliedCaughtUp();
    const l = this.o.lessor.lookup(req.ID);
    if (l === undefined) throw etcdError('LeaseNotFound');
    const remainingMs = l.remainingMs(this.o.clock());
    const ttl = remainingMs === Infinity ? foreverSeconds : Math.trunc(remainingMs / 1000);
    return {
      header: this.o.header(), ID: req.ID, TTL: ttl, grantedTTL: l.ttl,
      keys: req.keys ? [...l.keys].map((k) => Buffer.from(k, 'latin1')) : [],
    };
  }

  async leaseLeases(): Promise<LeaseLeasesResponse> {
    return { header: this.o.header(), leases: this.o.lessor.list().map((l) => ({ ID: l.id })) };
  }
}
