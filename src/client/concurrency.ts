// Lock and election through etcd's v3lock and v3election services. Both hand out the revision
// that ordered the holder (the lock key's create revision; the leader key's revision) as a
// fencing token: a resource guarded by a lock must reject writes that carry a smaller token,
// since a holder can lose its lease (and so the lock) without knowing it yet.
import type * as grpc from '@grpc/grpc-js';
import type { v3electionpb } from '../proto/index.js';
import type { Connection, CallOptions } from './connection.js';
import { streamError } from './connection.js';
import { Lock, Election, KV } from './rpcs.js';
import { rangeRequest } from './kv.js';
import type { LeaseClient, KeepAlive } from './lease.js';
import { toBuffer, type Bytes } from './bytes.js';
import { AsyncQueue } from './queue.js';

export interface LeaseChoice {
  /** Hold under this lease (the caller keeps it alive); default: a new session lease. */
  lease?: bigint;
  /** TTL of the session lease made when `lease` is not given (default 60 s). */
  ttl?: number;
}

/** A held lock. */
export interface HeldLock {
  /** The lock's key: `name/<lease id in hex>`. */
  key: Buffer;
  /** The lock key's create revision: increases with every acquisition of this lock. */
  fencingToken: number;
  lease: bigint;
  /** Releases the lock (and revokes the session lease the lock made, if any). */
  unlock(opts?: CallOptions): Promise<void>;
}

/** A won election. */
export interface Leadership {
  leader: v3electionpb.LeaderKey;
  /** The leader key's revision: increases with every new leader. */
  fencingToken: number;
  proclaim(value: Bytes, opts?: CallOptions): Promise<void>;
  resign(opts?: CallOptions): Promise<void>;
}

async function leaseFor(leases: LeaseClient, choice: LeaseChoice | undefined, opts?: CallOptions): Promise<{ id: bigint; session?: KeepAlive }> {
  if (choice?.lease !== undefined) return { id: choice.lease };
  const session = await leases.session(choice?.ttl ?? 60, opts);
  return { id: session.id, session };
}

async function endSession(leases: LeaseClient, session: KeepAlive | undefined, opts?: CallOptions): Promise<void> {
  if (!session) return;
  session.close();
  await leases.revoke(session.id, opts);
}

export class LockClient {
  constructor(private readonly conn: Connection, private readonly leases: LeaseClient) {}

  /** Waits until the lock is held (bounded by opts.timeoutMs / opts.signal). */
  async lock(name: Bytes, opts?: CallOptions & LeaseChoice): Promise<HeldLock> {
    const { id, session } = await leaseFor(this.leases, opts, opts);
    try {
      const res = await this.conn.unary(Lock.lock, { name: toBuffer(name), lease: id }, opts);
      // The response header's revision is not the key's: read the key's create revision.
      const held = await this.conn.unary(KV.range, rangeRequest(res.key), opts);
      const kv = held.kvs[0];
      if (!kv) throw new Error('lock key vanished right after acquisition (lease lost)');
      const key = res.key;
      return {
        key, fencingToken: kv.createRevision, lease: id,
        unlock: async (o?: CallOptions) => {
          await this.conn.unary(Lock.unlock, { key }, o);
          await endSession(this.leases, session, o);
        },
      };
    } catch (e) {
      await endSession(this.leases, session).catch(() => { /* the original error matters */ });
      throw e;
    }
  }
}

export class ElectionClient {
  constructor(private readonly conn: Connection, private readonly leases: LeaseClient) {}

  /** Waits until elected leader of `name` with `value`. */
  async campaign(name: Bytes, value: Bytes, opts?: CallOptions & LeaseChoice): Promise<Leadership> {
    const { id, session } = await leaseFor(this.leases, opts, opts);
    try {
      const res = await this.conn.unary(Election.campaign, { name: toBuffer(name), lease: id, value: toBuffer(value) }, opts);
      const leader = res.leader!;
      return {
        leader, fencingToken: leader.rev,
        proclaim: async (v: Bytes, o?: CallOptions) => { await this.conn.unary(Election.proclaim, { leader, value: toBuffer(v) }, o); },
        resign: async (o?: CallOptions) => {
          await this.conn.unary(Election.resign, { leader }, o);
          await endSession(this.leases, session, o);
        },
      };
    } catch (e) {
      await endSession(this.leases, session).catch(() => { /* the original error matters */ });
      throw e;
    }
  }

  /** The current leader's key-value, or undefined when there is none. */
  async leader(name: Bytes, opts?: CallOptions): Promise<v3electionpb.LeaderResponse['kv']> {
    return (await this.conn.unary(Election.leader, { name: toBuffer(name) }, opts)).kv;
  }

  /** Every leader of `name` from now on (the current one first). */
  async observe(name: Bytes, opts?: CallOptions): Promise<AsyncIterableIterator<v3electionpb.LeaderResponse>> {
    const { call } = await this.conn.serverStream(Election.observe, { name: toBuffer(name) }, opts);
    const queue = new AsyncQueue<v3electionpb.LeaderResponse>(64, () => call.resume(), () => call.cancel());
    opts?.signal?.addEventListener('abort', () => { call.cancel(); queue.fail(opts.signal!.reason); }, { once: true });
    call.on('data', (res: v3electionpb.LeaderResponse) => { if (!queue.push(res)) call.pause(); });
    call.on('error', (e: grpc.ServiceError) => queue.fail(streamError(e)));
    call.on('end', () => queue.end());
    return queue;
  }
}
