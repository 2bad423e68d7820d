/**
 * etcd's v3lock and v3election services: the clientv3/concurrency recipes (Mutex, Election)
 * run inside the server, over the member's own KV and watch, as etcd runs them over an
 * in-process client. A lock or a leadership is a key `<name>/<lease in hex>` held by a lease;
 * the holder is the key with the lowest create revision under the prefix, and a waiter
 * watches the key created just before its own until that one is deleted (no herd).
 */
import type { EtcdService, WatchHost } from '../server/index.js';
import {
  etcdserverpb as pb, Event, Event_EventType, v3electionpb as epb, v3lockpb as lpb,
  Compare_CompareResult, Compare_CompareTarget, prefixRangeEnd, RangeRequest_SortOrder, RangeRequest_SortTarget,
} from '../proto/index.js';
import { GrpcCode } from '../errors/index.js';
import type { GrpcServer, ServerCall } from './grpc/index.js';
import { GrpcStatusError } from './grpc/index.js';

/** grpc-go's status for a plain Go error (the concurrency package's errors reach clients so). */
const goError = (message: string): GrpcStatusError => new GrpcStatusError(GrpcCode.Unknown, message);
const errNotLeader = 'election: not leader';
const errNoLeader = 'election: no leader';
const errMissingLeaderKey = '"leader" field must be provided';

/** Bounds of one waiter's watch stream (it needs one event at a time). */
const waiterStreamBounds = { maxQueuedResponses: 16, maxQueuedBytes: 1 << 20 };

export function registerLockElection(grpc: GrpcServer, service: EtcdService, host: WatchHost): void {
  const r = new Recipes(service, host);
  grpc.addUnary('/v3lockpb.Lock/Lock', lpb.LockRequest, lpb.LockResponse, (req, call) => r.lock(req, call));
  grpc.addUnary('/v3lockpb.Lock/Unlock', lpb.UnlockRequest, lpb.UnlockResponse, async (req) => {
    const res = await service.deleteRange(pb.DeleteRangeRequest.fromPartial({ key: req.key }));
    return { header: res.header };
  });
  grpc.addUnary('/v3electionpb.Election/Campaign', epb.CampaignRequest, epb.CampaignResponse, (req, call) => r.campaign(req, call));
  grpc.addUnary('/v3electionpb.Election/Proclaim', epb.ProclaimRequest, epb.ProclaimResponse, (req) => r.proclaim(req));
  grpc.addUnary('/v3electionpb.Election/Leader', epb.LeaderRequest, epb.LeaderResponse, async (req) => {
    const res = await r.firstCreated(req.name);
    if (res.kvs.length === 0) throw goError(errNoLeader);
    return { header: res.header, kv: res.kvs[0] };
  });
  grpc.addUnary('/v3electionpb.Election/Resign', epb.ResignRequest, epb.ResignResponse, (req) => r.resign(req));
  grpc.addServerStream('/v3electionpb.Election/Observe', epb.LeaderRequest, epb.LeaderResponse, (req, call) => r.observe(req, call));
}

class Recipes {
  constructor(private readonly service: EtcdService, private readonly host: WatchHost) {}

  /** concurrency.Mutex.Lock with the request's lease as the session. */
  async lock(req: lpb.LockRequest, call: ServerCall<lpb.LockRequest, lpb.LockResponse>): Promise<lpb.LockResponse> {
    const pfx = Buffer.concat([req.name, Buffer.from('/')]);
    const myKey = Buffer.concat([pfx, Buffer.from(req.lease.toString(16))]);
    const res = await this.service.txn(pb.TxnRequest.fromPartial({
      compare: [createRevisionIs(myKey, 0)],
      success: [{ requestPut: { key: myKey, value: Buffer.alloc(0), lease: req.lease } }, { requestRange: firstCreated(pfx) }],
      failure: [{ requestRange: { key: myKey } }, { requestRange: firstCreated(pfx) }],
    }));
    const myRev = res.succeeded ? res.header!.revision : res.responses[0]!.responseRange!.kvs[0]!.createRevision;
    const owner = res.responses[1]!.responseRange!.kvs[0];
    if (owner === undefined || owner.createRevision !== myRev) {
      try {
        await this.waitDeletes(pfx, myRev - 1, call.signal);
      } catch (e) {
        await this.service.deleteRange(pb.DeleteRangeRequest.fromPartial({ key: myKey })); // as Mutex.Lock cleans up
        throw e;
      }
    }
    return { header: this.service.header(), key: myKey };
  }

  /** concurrency.Election.Campaign. */
  async campaign(req: epb.CampaignRequest, call: ServerCall<epb.CampaignRequest, epb.CampaignResponse>): Promise<epb.CampaignResponse> {
    const pfx = Buffer.concat([req.name, Buffer.from('/')]);
    const key = Buffer.concat([pfx, Buffer.from(req.lease.toString(16))]);
    const res = await this.service.txn(pb.TxnRequest.fromPartial({
      compare: [createRevisionIs(key, 0)],
      success: [{ requestPut: { key, value: req.value, lease: req.lease } }],
      failure: [{ requestRange: { key } }],
    }));
    let rev = res.header!.revision;
    if (!res.succeeded) {
      const kv = res.responses[0]!.responseRange!.kvs[0]!;
      rev = kv.createRevision;
      if (!kv.value.equals(req.value)) await this.proclaimAt(key, rev, req.lease, req.value);
    }
    const leader: epb.LeaderKey = { name: req.name, key, rev, lease: req.lease };
    try {
      await this.waitDeletes(pfx, rev - 1, call.signal);
    } catch (e) {
      if (call.signal.aborted) await this.resign({ leader });
      throw e;
    }
    return { header: this.service.header(), leader };
  }

  async proclaim(req: epb.ProclaimRequest): Promise<epb.ProclaimResponse> {
    if (req.leader === undefined) throw goError(errMissingLeaderKey);
    await this.proclaimAt(req.leader.key, req.leader.rev, req.leader.lease, req.value);
    return { header: this.service.header() };
  }

  async resign(req: epb.ResignRequest): Promise<epb.ResignResponse> {
    const leader = req.leader;
    if (leader === undefined) throw goError(errMissingLeaderKey);
    await this.service.txn(pb.TxnRequest.fromPartial({
      compare: [createRevisionIs(leader.key, leader.rev)],
      success: [{ requestDeleteRange: { key: leader.key } }],
    }));
    return { header: this.service.header() };
  }

  /** concurrency.Election.Observe: the leader's key each time leadership or its value changes. */
  async observe(req: epb.LeaderRequest, call: ServerCall<epb.LeaderRequest, epb.LeaderResponse>): Promise<void> {
    const pfx = Buffer.concat([req.name, Buffer.from('/')]);
    while (!call.signal.aborted) {
      const first = await this.firstCreated(req.name);
      let leader = first.kvs[0];
      let from = first.header!.revision + 1;
      if (leader === undefined) {
        // No leader yet: the first key put under the prefix is the next one.
        const ev = await this.nextEvent(pfx, prefixRangeEnd(pfx), from, call.signal, (e) => e.type === Event_EventType.PUT);
        if (ev === undefined) return;
        leader = ev.kv!;
        from = leader.modRevision + 1;
      }
      await call.write({ header: this.service.header(), kv: leader });
      for (;;) {
        const ev = await this.nextEvent(leader.key, undefined, from, call.signal, () => true);
        if (ev === undefined) return;
        if (ev.type === Event_EventType.DELETE) break;
        leader = ev.kv!;
        from = leader.modRevision + 1;
        await call.write({ header: this.service.header(), kv: leader });
      }
    }
  }

  firstCreated(name: Buffer): Promise<pb.RangeResponse> {
    return this.service.range(pb.RangeRequest.fromPartial(firstCreated(Buffer.concat([name, Buffer.from('/')]))));
  }

  private async proclaimAt(key: Buffer, rev: number, lease: bigint, value: Buffer): Promise<void> {
    const res = await this.service.txn(pb.TxnRequest.fromPartial({
      compare: [createRevisionIs(key, rev)],
      success: [{ requestPut: { key, value, lease } }],
    }));
    if (!res.succeeded) throw goError(errNotLeader);
  }

  /** concurrency's waitDeletes: until no key under `pfx` created at or below `maxCreateRev` is left. */
  private async waitDeletes(pfx: Buffer, maxCreateRev: number, signal: AbortSignal): Promise<void> {
    for (;;) {
      const res = await this.service.range(pb.RangeRequest.fromPartial({
        key: pfx, rangeEnd: prefixRangeEnd(pfx), sortOrder: RangeRequest_SortOrder.DESCEND,
        sortTarget: RangeRequest_SortTarget.CREATE, limit: 1, maxCreateRevision: maxCreateRev,
      }));
      const last = res.kvs[0];
      if (last === undefined) return;
      const deleted = await this.nextEvent(last.key, undefined, res.header!.revision, signal, (e) => e.type === Event_EventType.DELETE);
      if (deleted === undefined) throw new GrpcStatusError(GrpcCode.Canceled, 'context canceled');
    }
  }

  /** The first event on [key, end) from `fromRev` that `wanted` accepts; undefined once `signal` aborts. */
  private async nextEvent(key: Buffer, end: Buffer | undefined, fromRev: number, signal: AbortSignal,
    wanted: (e: Event) => boolean): Promise<Event | undefined> {
    const stream = this.host.watchable.newWatchStream<never>(waiterStreamBounds);
    const onAbort = (): void => stream.close();
    signal.addEventListener('abort', onAbort);
    try {
      const w = stream.watch({ id: 0, key, end, startRevision: fromRev, filterPut: false, filterDelete: false });
      if (!w.ok) throw new GrpcStatusError(GrpcCode.Internal, w.reason);
      while (!signal.aborted) {
        await stream.readable();
        for (let r = stream.next(); r !== undefined; r = stream.next()) {
          if (r.kind === 'compacted') throw new GrpcStatusError(GrpcCode.OutOfRange, 'etcdserver: mvcc: required revision has been compacted');
          if (r.kind !== 'events') continue;
          const e = r.events.find(wanted);
          if (e !== undefined) return e as Event;
        }
      }
      return undefined;
    } finally {
      signal.removeEventListener('abort', onAbort);
      stream.close();
    }
  }
}

function createRevisionIs(key: Buffer, rev: number): pb.Compare {
  return pb.Compare.fromPartial({ key, target: Compare_CompareTarget.CREATE, result: Compare_CompareResult.EQUAL, createRevision: rev });
}

/** clientv3's WithFirstCreate over a prefix: the oldest key (the holder). */
function firstCreated(pfx: Buffer): Partial<pb.RangeRequest> {
  return { key: pfx, rangeEnd: prefixRangeEnd(pfx), sortOrder: RangeRequest_SortOrder.ASCEND, sortTarget: RangeRequest_SortTarget.CREATE, limit: 1 };
}
