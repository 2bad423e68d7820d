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
import { GrpcCode, isEtcdError } from '../errors/index.js';
import type { AuthInfo } from '../server/index.js';
import type { GrpcServer, ServerCall } from './grpc/index.js';
import type { Codec } from './grpc/framing.js';
import { GrpcStatusError } from './grpc/index.js';

/** grpc-go's status for a plain Go error (the concurrency package's errors reach clients so). */
const goError = (message: string): GrpcStatusError => new GrpcStatusError(GrpcCode.Unknown, message);
const errNotLeader = 'election: not leader';
const errNoLeader = 'election: no leader';
const errMissingLeaderKey = '"leader" field must be provided';
const errSessionExpired = 'mutex: session is expired';

/** Bounds of one waiter's watch stream (it needs one event at a time). */
const waiterStreamBounds = { maxQueuedResponses: 16, maxQueuedBytes: 1 << 20 };

/** What a recipe call needs from its caller: when to give up, and whose permissions it uses. */
export interface RecipeContext {
  /** Aborted when the caller goes (client cancel, deadline, the gateway's client disconnecting). */
  readonly signal: AbortSignal;
  /** The caller (its `token` / `authorization` metadata): the recipes' KV calls are checked as the caller's, as etcd's in-process client passes the context on. */
  readonly ai?: AuthInfo;
}

/** One Lock or Election method, typed; served by gRPC here and by the JSON gateway (gateway/routes.ts). */
export type RecipeMethod =
  | { readonly kind: 'unary'; readonly path: string; readonly request: Codec<any>; readonly response: Codec<any>;
      run(req: any, ctx: RecipeContext): Promise<any> }
  | { readonly kind: 'serverStream'; readonly path: string; readonly request: Codec<any>; readonly response: Codec<any>;
      run(req: any, ctx: RecipeContext, write: (res: any) => Promise<void>): Promise<void> };

/** v3lockpb.Lock and v3electionpb.Election over `service`'s KV and `host`'s watches. */
export function lockElectionMethods(service: EtcdService, host: WatchHost): RecipeMethod[] {
  const r = new Recipes(service, host);
  const unary = <Req, Res>(path: string, request: Codec<Req>, response: Codec<Res>, run: (req: Req, ctx: RecipeContext) => Promise<Res>): RecipeMethod =>
    ({ kind: 'unary', path, request, response, run: (req: Req, ctx: RecipeContext) => goErrors(run(req, ctx)) });
  return [
    unary('/v3lockpb.Lock/Lock', lpb.LockRequest, lpb.LockResponse, (req, ctx) => r.lock(req, ctx)),
    unary('/v3lockpb.Lock/Unlock', lpb.UnlockRequest, lpb.UnlockResponse, async (req, ctx) => {
      const res = await service.deleteRange(pb.DeleteRangeRequest.fromPartial({ key: req.key }), ctx.ai);
      return { header: res.header };
    }),
    unary('/v3electionpb.Election/Campaign', epb.CampaignRequest, epb.CampaignResponse, (req, ctx) => r.campaign(req, ctx)),
    unary('/v3electionpb.Election/Proclaim', epb.ProclaimRequest, epb.ProclaimResponse, (req, ctx) => r.proclaim(req, ctx)),
    unary('/v3electionpb.Election/Leader', epb.LeaderRequest, epb.LeaderResponse, async (req, ctx) => {
      const res = await r.firstCreated(req.name, ctx);
      if (res.kvs.length === 0) throw goError(errNoLeader);
      return { header: res.header, kv: res.kvs[0] };
    }),
    unary('/v3electionpb.Election/Resign', epb.ResignRequest, epb.ResignResponse, (req, ctx) => r.resign(req, ctx)),
    {
      kind: 'serverStream', path: '/v3electionpb.Election/Observe', request: epb.LeaderRequest, response: epb.LeaderResponse,
      // Observe ends only when its caller goes; etcd's then returns the context's error, a
      // plain Go error: code Unknown, "context canceled" (so it counts in grpc_server_handled_total).
      // Before that, concurrency's observe gives up on any failed read or watch (a bad token, no
      // READ permission, compaction) by closing its channel, and etcd's Observe returns OK.
      run: async (req: epb.LeaderRequest, ctx: RecipeContext, write: (res: epb.LeaderResponse) => Promise<void>) => {
        try {
          await r.observe(req, ctx, write);
        } catch (e) {
          if (ctx.signal.aborted || !(isEtcdError(e) || e instanceof GrpcStatusError)) throw e;
          return;
        }
        throw goError('context canceled');
      },
    },
  ];
}

export function registerLockElection(grpc: GrpcServer, methods: readonly RecipeMethod[], identify: (call: ServerCall) => AuthInfo | undefined): void {
  const contextOf = (call: ServerCall): RecipeContext => recipeContext(call.signal, () => identify(call));
  for (const m of methods) {
    if (m.kind === 'unary') {
      grpc.addUnary(m.path, m.request, m.response, async (req, call) => m.run(req, contextOf(call)));
    } else {
      grpc.addServerStream(m.path, m.request, m.response, async (req, call) => m.run(req, contextOf(call), (res) => call.write(res)));
    }
  }
}

/**
 * A recipe call's context. Its caller is resolved, once, when a recipe first reads `ai` for a
 * KV call: a bad token fails there, as etcd's recipes fail at their first KV call through
 * clientv3 (code Unknown), and Observe can end quietly on it as etcd's does.
 */
export function recipeContext(signal: AbortSignal, identify: () => AuthInfo | undefined): RecipeContext {
  let caller: { ok: true; ai: AuthInfo | undefined } | { ok: false; error: unknown } | undefined;
  const resolve = (): NonNullable<typeof caller> => {
    try {
      return { ok: true, ai: identify() };
    } catch (e) {
      return { ok: false, error: isEtcdError(e) ? goError((e as Error).message) : e };
    }
  };
  return {
    signal,
    get ai(): AuthInfo | undefined {
      caller ??= resolve();
      if (!caller.ok) throw caller.error;
      return caller.ai;
    },
  };
}

/**
 * etcd's recipes call the KV through clientv3, which turns a status into a plain
 * rpctypes.EtcdError: it reaches the Lock/Election caller as code Unknown with the same text.
 */
async function goErrors<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    throw isEtcdError(e) ? goError((e as Error).message) : e;
  }
}

class Recipes {
  constructor(private readonly service: EtcdService, private readonly host: WatchHost) {}

  /** concurrency.Mutex.Lock with the request's lease as the session. */
  async lock(req: lpb.LockRequest, ctx: RecipeContext): Promise<lpb.LockResponse> {
    const pfx = Buffer.concat([req.name, Buffer.from('/')]);
    const myKey = Buffer.concat([pfx, Buffer.from(req.lease.toString(16))]);
    const res = await this.service.txn(pb.TxnRequest.fromPartial({
      compare: [createRevisionIs(myKey, 0)],
      success: [{ requestPut: { key: myKey, value: Buffer.alloc(0), lease: req.lease } }, { requestRange: firstCreated(pfx) }],
      failure: [{ requestRange: { key: myKey } }, { requestRange: firstCreated(pfx) }],
    }), ctx.ai);
    const myRev = res.succeeded ? res.header!.revision : res.responses[0]!.responseRange!.kvs[0]!.createRevision;
    const owner = res.responses[1]!.responseRange!.kvs[0];
    if (owner === undefined || owner.createRevision !== myRev) {
      try {
        await this.waitDeletes(pfx, myRev - 1, ctx);
      } catch (e) {
        await this.service.deleteRange(pb.DeleteRangeRequest.fromPartial({ key: myKey }), ctx.ai); // as Mutex.Lock cleans up
        throw e;
      }
      // The Jepsen fix (etcd #11408, clientv3 3.5's Mutex.Lock): the lease may have expired
      // while we waited, taking our key with it; then the lock is not ours to grant.
      const mine = await this.service.range(pb.RangeRequest.fromPartial({ key: myKey }), ctx.ai);
      if (mine.kvs.length === 0) throw goError(errSessionExpired);
    }
    return { header: this.service.header(), key: myKey };
  }

  /** concurrency.Election.Campaign. */
  async campaign(req: epb.CampaignRequest, ctx: RecipeContext): Promise<epb.CampaignResponse> {
    const pfx = Buffer.concat([req.name, Buffer.from('/')]);
    const key = Buffer.concat([pfx, Buffer.from(req.lease.toString(16))]);
    const res = await this.service.txn(pb.TxnRequest.fromPartial({
      compare: [createRevisionIs(key, 0)],
      success: [{ requestPut: { key, value: req.value, lease: req.lease } }],
      failure: [{ requestRange: { key } }],
    }), ctx.ai);
    let rev = res.header!.revision;
    if (!res.succeeded) {
      const kv = res.responses[0]!.responseRange!.kvs[0]!;
      rev = kv.createRevision;
      if (!kv.value.equals(req.value)) await this.proclaimAt(key, rev, req.lease, req.value, ctx);
    }
    const leader: epb.LeaderKey = { name: req.name, key, rev, lease: req.lease };
    try {
      await this.waitDeletes(pfx, rev - 1, ctx);
    } catch (e) {
      if (ctx.signal.aborted) await this.resign({ leader }, ctx);
      throw e;
    }
    return { header: this.service.header(), leader };
  }

  async proclaim(req: epb.ProclaimRequest, ctx: RecipeContext): Promise<epb.ProclaimResponse> {
    if (req.leader === undefined) throw goError(errMissingLeaderKey);
    await this.proclaimAt(req.leader.key, req.leader.rev, req.leader.lease, req.value, ctx);
    return { header: this.service.header() };
  }

  async resign(req: epb.ResignRequest, ctx: RecipeContext): Promise<epb.ResignResponse> {
    const leader = req.leader;
    if (leader === undefined) throw goError(errMissingLeaderKey);
    await this.service.txn(pb.TxnRequest.fromPartial({
      compare: [createRevisionIs(leader.key, leader.rev)],
      success: [{ requestDeleteRange: { key: leader.key } }],
    }), ctx.ai);
    return { header: this.service.header() };
  }

  /** concurrency.Election.Observe: the leader's key each time leadership or its value changes. */
  async observe(req: epb.LeaderRequest, ctx: RecipeContext, write: (res: epb.LeaderResponse) => Promise<void>): Promise<void> {
    const pfx = Buffer.concat([req.name, Buffer.from('/')]);
    const { signal } = ctx;
    while (!signal.aborted) {
      const first = await this.firstCreated(req.name, ctx);
      let leader = first.kvs[0];
      let from = first.header!.revision + 1;
      if (leader === undefined) {
        // No leader yet: the first key put under the prefix is the next one.
        const ev = await this.nextEvent(pfx, prefixRangeEnd(pfx), from, signal, (e) => e.type === Event_EventType.PUT);
        if (ev === undefined) return;
        leader = ev.kv!;
        from = leader.modRevision + 1;
      }
      await write({ header: this.service.header(), kv: leader });
      for (;;) {
        const ev = await this.nextEvent(leader.key, undefined, from, signal, () => true);
        if (ev === undefined) return;
        if (ev.type === Event_EventType.DELETE) break;
        leader = ev.kv!;
        from = leader.modRevision + 1;
        await write({ header: this.service.header(), kv: leader });
      }
    }
  }

  async firstCreated(name: Buffer, ctx: RecipeContext): Promise<pb.RangeResponse> {
    return this.service.range(pb.RangeRequest.fromPartial(firstCreated(Buffer.concat([name, Buffer.from('/')]))), ctx.ai);
  }

  private async proclaimAt(key: Buffer, rev: number, lease: bigint, value: Buffer, ctx: RecipeContext): Promise<void> {
    const res = await this.service.txn(pb.TxnRequest.fromPartial({
      compare: [createRevisionIs(key, rev)],
      success: [{ requestPut: { key, value, lease } }],
    }), ctx.ai);
    if (!res.succeeded) throw goError(errNotLeader);
  }

  /** concurrency's waitDeletes: until no key under `pfx` created at or below `maxCreateRev` is left. */
  private async waitDeletes(pfx: Buffer, maxCreateRev: number, ctx: RecipeContext): Promise<void> {
    for (;;) {
      const res = await this.service.range(pb.RangeRequest.fromPartial({
        key: pfx, rangeEnd: prefixRangeEnd(pfx), sortOrder: RangeRequest_SortOrder.DESCEND,
        sortTarget: RangeRequest_SortTarget.CREATE, limit: 1, maxCreateRevision: maxCreateRev,
      }), ctx.ai);
      const last = res.kvs[0];
      if (last === undefined) return;
      const deleted = await this.nextEvent(last.key, undefined, res.header!.revision, ctx.signal, (e) => e.type === Event_EventType.DELETE);
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
