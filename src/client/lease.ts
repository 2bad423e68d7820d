// Leases: grant, revoke, time-to-live, list, and keep-alive that renews by itself (a third of
// the TTL after each renewal, as etcd's clientv3) and reports loss: the lease is lost when the
// server says it is gone (TTL <= 0) or when its last known expiry passes without a renewal.
import type * as grpc from '@grpc/grpc-js';
import type { etcdserverpb as pb } from '../proto/index.js';
import type { Connection, CallOptions } from './connection.js';
import { Lease } from './rpcs.js';
import { streamError } from './connection.js';
import { LeaseLostError } from './errors.js';

export interface TimeToLive {
  id: bigint;
  /** Seconds left (-1 when the lease does not exist). */
  ttl: number;
  grantedTtl: number;
  keys: Buffer[];
}

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

  constructor(private readonly conn: Connection, readonly id: bigint, initialTtlSeconds: number) {
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

  private sentAt = 0;

  private onResponse(res: pb.LeaseKeepAliveResponse): void {
    if (this.closed) return;
    if (res.TTL <= 0) { this.lose('expired or revoked'); return; }
    this.ttl = res.TTL;
    this.expiresAt = this.sentAt + res.TTL * 1000;
    this.armExpiry();
    this.scheduleRenew(Math.max(500, (res.TTL * 1000) / 3));
  }
}

export class LeaseClient {
  private readonly keepAlives = new Set<KeepAlive>();

  constructor(private readonly conn: Connection) {}

  /** Grants a lease of ttl seconds (id 0: the server picks one). */
  async grant(ttlSeconds: number, opts?: CallOptions & { id?: bigint }): Promise<{ id: bigint; ttl: number }> {
    const res = await this.conn.unary(Lease.grant, { TTL: ttlSeconds, ID: opts?.id ?? 0n }, opts);
    return { id: res.ID, ttl: res.TTL };
  }

  revoke(id: bigint, opts?: CallOptions): Promise<pb.LeaseRevokeResponse> {
    return this.conn.unary(Lease.revoke, { ID: id }, opts);
  }

  async timeToLive(id: bigint, opts?: CallOptions & { keys?: boolean }): Promise<TimeToLive> {
    const res = await this.conn.unary(Lease.timeToLive, { ID: id, keys: opts?.keys ?? false }, opts);
    return { id: res.ID, ttl: res.TTL, grantedTtl: res.grantedTTL, keys: res.keys };
  }

  async leases(opts?: CallOptions): Promise<bigint[]> {
    const res = await this.conn.unary(Lease.leases, {}, opts);
    return res.leases.map((l) => l.ID);
  }

  /** Renews once; returns the new TTL (<= 0: the lease is gone). */
  async keepAliveOnce(id: bigint, opts?: CallOptions): Promise<number> {
    const { call } = await this.conn.bidi(Lease.keepAlive, opts);
    return new Promise((resolve, reject) => {
      call.on('data', (res: pb.LeaseKeepAliveResponse) => { resolve(res.TTL); call.cancel(); });
      call.on('error', (e: grpc.ServiceError) => reject(streamError(e)));
      call.write({ ID: id });
    });
  }

  /** Keeps the lease alive until close() or until it is lost (see KeepAlive.lost). */
  keepAlive(id: bigint, ttlSeconds: number): KeepAlive {
    const ka = new KeepAlive(this.conn, id, ttlSeconds);
    this.keepAlives.add(ka);
    void ka.lost.then(() => this.keepAlives.delete(ka));
    return ka;
  }

  /** A lease tied to this client's lifetime: granted now, kept alive until the client closes. */
  async session(ttlSeconds = 60, opts?: CallOptions): Promise<KeepAlive> {
    const { id, ttl } = await this.grant(ttlSeconds, opts);
    return this.keepAlive(id, ttl);
  }

  /** Stops every keep-alive (Client.close). */
  closeAll(): void {
    for (const ka of this.keepAlives) ka.close();
    this.keepAlives.clear();
  }
}
