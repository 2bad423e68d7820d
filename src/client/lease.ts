// Leases: grant, revoke, time-to-live, list, and keep-alive that renews by itself (a third of
// the TTL after each renewal, as etcd's clientv3) and reports loss: the lease is lost when the
// server says it is gone (TTL <= 0) or when its last known expiry passes without a renewal.
import type * as grpc from '@grpc/grpc-js';
import type { etcdserverpb as pb } from '../proto/index.js';
import type { Connection, CallOptions } from './connection.js';
import { Lease } from './rpcs.js';
import { streamError } from './connection.js';
import { LeaseLostError } from './errors.js';

/** A running keep-alive. */
export class KeepAlive {
  /** Resolves with the reason once the lease is lost (never, if closed first). */
  readonly lost: Promise<LeaseLostError>;
  /** TTL the server granted at the last renewal (seconds). */
  ttl = 0;
  private reportLost!: (e: LeaseLostError) => void;
  private call: grpc.ClientDuplexStream<pb.LeaseKeepAliveRequest, pb.LeaseKeepAliveResponse> | undefined;
  private expiresAt: number;
  private renewTimer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** When the last renewal was sent: the new expiry counts from then, not from its answer. */
  private sentAt = 0;

  constructor(
    private readonly conn: Connection,
    readonly id: bigint,
    initialTtlSeconds: number,
    /** Called with every renewal the server answers (concordctl prints them). */
    private readonly onRenew?: (res: pb.LeaseKeepAliveResponse) => void,
  ) {
    this.lost = new Promise((r) => { this.reportLost = r; });
    this.expiresAt = Date.now() + initialTtlSeconds * 1000;
    this.armExpiry();
    void this.renew();
  }

  /** Stops renewing (the lease then expires on its own unless revoked). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.renewTimer);
    clearTimeout(this.expiryTimer);
    this.call?.cancel();
  }

  private lose(why: string): void {
    if (this.closed) return;
    this.close();
    this.reportLost(new LeaseLostError(this.id, why));
  }

  private armExpiry(): void {
    clearTimeout(this.expiryTimer);
    this.expiryTimer = setTimeout(() => this.lose('expired before it could be renewed'), Math.max(0, this.expiresAt - Date.now()));
    this.expiryTimer.unref();
  }

  private scheduleRenew(ms: number): void {
    clearTimeout(this.renewTimer);
    this.renewTimer = setTimeout(() => void this.renew(), ms);
    this.renewTimer.unref();
  }

  private async renew(): Promise<void> {
    if (this.closed) return;
    if (!this.call) {
      try {
        const { ep, call } = await this.conn.bidi(Lease.keepAlive);
        if (this.closed) { call.cancel(); return; }
        this.call = call;
        call.on('data', (res: pb.LeaseKeepAliveResponse) => this.onResponse(res));
        call.on('error', () => { /* reported by 'status' */ });
        call.on('status', () => {
          if (this.call !== call) return;
          this.call = undefined;
          this.conn.markFailed(ep);
          this.scheduleRenew(200);
        });
      } catch {
        this.scheduleRenew(200);
        return;
      }
    }
    this.sentAt = Date.now();
    this.call.write({ ID: this.id });
  }

  private onResponse(res: pb.LeaseKeepAliveResponse): void {
    if (this.closed) return;
    if (res.TTL <= 0) { this.lose('expired or revoked'); return; }
    this.ttl = res.TTL;
    this.onRenew?.(res);
    this.expiresAt = this.sentAt + res.TTL * 1000;
    this.armExpiry();
    this.scheduleRenew(Math.max(500, (res.TTL * 1000) / 3));
  }
}

export class LeaseClient {
  private readonly keepAlives = new Set<KeepAlive>();

  constructor(private readonly conn: Connection) {}

  /** Grants a lease of ttl seconds (id 0: the server picks one); the response has ID and TTL. */
  grant(ttlSeconds: number, opts?: CallOptions & { id?: bigint }): Promise<pb.LeaseGrantResponse> {
    return this.conn.unary(Lease.grant, { TTL: ttlSeconds, ID: opts?.id ?? 0n }, opts);
  }

  revoke(id: bigint, opts?: CallOptions): Promise<pb.LeaseRevokeResponse> {
    return this.conn.unary(Lease.revoke, { ID: id }, opts);
  }

  /** Seconds left (TTL, -1 when the lease is gone), grantedTTL, and the keys attached if asked. */
  timeToLive(id: bigint, opts?: CallOptions & { keys?: boolean }): Promise<pb.LeaseTimeToLiveResponse> {
    return this.conn.unary(Lease.timeToLive, { ID: id, keys: opts?.keys ?? false }, opts);
  }

  leases(opts?: CallOptions): Promise<pb.LeaseLeasesResponse> {
    return this.conn.unary(Lease.leases, {}, opts);
  }

  /** Renews once (a TTL <= 0 in the answer: the lease is gone). */
  async keepAliveOnce(id: bigint, opts?: CallOptions): Promise<pb.LeaseKeepAliveResponse> {
    const { call } = await this.conn.bidi(Lease.keepAlive, opts);
    return new Promise((resolve, reject) => {
      call.on('data', (res: pb.LeaseKeepAliveResponse) => { resolve(res); call.cancel(); });
      call.on('error', (e: grpc.ServiceError) => reject(streamError(e)));
      call.on('end', () => reject(new Error('keep-alive stream ended without an answer')));
      call.write({ ID: id });
    });
  }

  /** Keeps the lease alive until close() or until it is lost (see KeepAlive.lost). */
  keepAlive(id: bigint, ttlSeconds: number, onRenew?: (res: pb.LeaseKeepAliveResponse) => void): KeepAlive {
    const ka = new KeepAlive(this.conn, id, ttlSeconds, onRenew);
    this.keepAlives.add(ka);
    void ka.lost.then(() => this.keepAlives.delete(ka));
    return ka;
  }

  /** A lease tied to this client's lifetime: granted now, kept alive until the client closes. */
  async session(ttlSeconds = 60, opts?: CallOptions): Promise<KeepAlive> {
    const { ID, TTL } = await this.grant(ttlSeconds, opts);
    return this.keepAlive(ID, TTL);
  }

  /** Stops every keep-alive (Client.close). */
  closeAll(): void {
    for (const ka of this.keepAlives) ka.close();
    this.keepAlives.clear();
  }
}
