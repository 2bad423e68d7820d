/**
 * One member: the EtcdService the API calls. Writes are proposed through raft and answered
 * when applied; linearizable reads wait for a ReadIndex round and the applied index;
 * serializable reads go straight to the store.
 */
import {
  AlarmRequest_AlarmAction as AlarmAction, AlarmRequest, AlarmResponse, AlarmType, CompactionRequest, CompactionResponse,
  DefragmentResponse, DeleteRangeRequest, DeleteRangeResponse, HashKVRequest, HashKVResponse,
  HashResponse, MemberListRequest, MemberListResponse, MoveLeaderRequest, MoveLeaderResponse,
  PutRequest, PutResponse, RangeRequest, RangeResponse, RequestOp, ResponseHeader,
  StatusResponse, TxnRequest, TxnResponse,
} from '../proto/gen/etcdserverpb/rpc.js';
import { EntryType, decodeConfChange, type Entry } from '../proto/raftpb.js';
import { etcdError, EtcdError } from '../errors/index.js';
import type { MvccStore } from '../mvcc/index.js';
import type { Logger } from '../log/index.js';
import type { BackendSnapshot, EtcdService, HealthReport, WatchHost } from './service.js';
import type { ServerConfig } from './config.js';
import { RaftNode } from './raft-node.js';
import { AlarmSet, alarmName } from './alarms.js';
import {
  Membership, idToHex, memberFromJson, parseMemberAttributesPath, attributesFromJson, attributesToJson, memberAttributesPath,
} from './membership.js';
import { decodeRaftRequest, encodeRaftRequest, peekRequestId, type RaftRequest } from './request-codec.js';
import { RequestIdGenerator, WaitRegistry } from './wait.js';
import { AppliedIndexWaiter, ReadIndexBatcher } from './read-index.js';
import { ConfChangeType } from '../proto/raftpb.js';

export { etcdServerVersion as serverVersion, etcdClusterVersion as clusterVersion } from '../version.js';
import { etcdServerVersion as serverVersion } from '../version.js';

/** Bytes etcd adds per key when estimating a put's cost against the quota. */
const kvOverhead = 256;
/** The v2 store key etcd keeps the cluster version under. */
const clusterVersionPath = '/0/version';
/** How stale the cached backend size used by the quota check may be. */
const dbSizeRefreshMs = 20;
/**
 * Proposals waiting for their entry to apply, beyond which new ones are refused with etcd's
 * "too many requests". etcd refuses once commit runs 5,000 entries ahead of apply; here apply
 * keeps pace with commit on the Ready loop, so the queue that can grow is proposals waiting
 * for a WAL save, and this bounds it instead.
 */
const maxPendingProposals = 20_000;

export interface EtcdServerDeps {
  config: ServerConfig;
  log: Logger;
  memberId: bigint;
  membership: Membership;
  store: MvccStore;
  alarms: AlarmSet;
  persistAlarms(alarms: AlarmSet): void;
  persistMembership(m: Membership): void;
  persistClusterVersion(v: string): void;
  clusterVersion: string | undefined;
  quotaBytes: number;
}

export class EtcdServer implements EtcdService {
  readonly limits: { maxTxnOps: number; maxRequestBytes: number };
  /** Set by startServer once the watchable store is open (index.ts). */
  watch: WatchHost | undefined = undefined;
  readonly memberId: bigint;
  readonly membership: Membership;
  private readonly store: MvccStore;
  private readonly log: Logger;
  private readonly alarms: AlarmSet;
  private readonly deps: EtcdServerDeps;
  private readonly waits = new WaitRegistry();
  private readonly ids: RequestIdGenerator;
  private readonly applied = new AppliedIndexWaiter();
  private readonly reads: ReadIndexBatcher;
  private raft!: RaftNode;
  leader = 0n;
  private isLeader = false;
  /** Term of the last applied entry: a leader serves reads once it equals the current term. */
  private appliedTerm = 0;
  private stopped = false;

  constructor(deps: EtcdServerDeps) {
    this.deps = deps;
    this.store = deps.store;
    this.log = deps.log;
    this.alarms = deps.alarms;
    this.memberId = deps.memberId;
    this.membership = deps.membership;
    this.limits = { maxTxnOps: deps.config.maxTxnOps, maxRequestBytes: deps.config.maxRequestBytes };
    this.ids = new RequestIdGenerator(deps.memberId, Date.now());
    this.clusterVersion = deps.clusterVersion;
    this.reads = new ReadIndexBatcher({
      requestRound: (ctx) => this.raft.raw.readIndex(ctx),
      kick: () => this.raft.kick(),
    });
  }

  attachRaft(raft: RaftNode, appliedIndex: number): void {
    this.raft = raft;
    this.applied.advance(appliedIndex);
  }

  get appliedIndex(): number {
    return this.applied.index;
  }

  get term(): number {
    return this.raft.term;
  }

  // ------------------------------------------------------------------ raft hooks

  onSoftState(leader: bigint, isLeader: boolean): void {
    const was = this.leader;
    this.leader = leader;
    this.isLeader = isLeader;
    if (was !== leader) {
      if (leader === 0n) this.log.info('raft.node: lost leader', { 'local-member-id': idToHex(this.memberId), term: this.raft.term });
      this.reads.leaderChanged();
    }
  }

  onReadState(ctx: Uint8Array, index: number): void {
    this.reads.roundDone(ctx, index);
  }

  /** Applies committed entries in order. Runs on the raft loop; must not await. */
  apply(entries: Entry[]): void {
    const storeCi = this.store.consistentIndex();
    for (const e of entries) {
      if (e.index <= this.applied.index) continue;
      if (e.type === EntryType.EntryNormal) this.applyNormal(e, e.index > storeCi);
      else if (e.type === EntryType.EntryConfChange) this.applyConfChange(e, e.index > storeCi);
      this.appliedTerm = e.term;
      this.applied.advance(e.index);
    }
  }

  private applyNormal(e: Entry, shouldApply: boolean): void {
    const data = e.data;
    if (!data || data.length === 0) {
      // A new leader's empty entry: nothing to do but remember its index.
      if (shouldApply) this.store.setConsistentIndex(e.index, e.term);
      return;
    }
    const peeked = peekRequestId(data);
    let waiter = peeked !== undefined ? this.waits.take(peeked) : undefined;
    let request: RaftRequest;
    if (waiter) request = waiter.request;
    else {
      const d = decodeRaftRequest(data);
      request = d.request;
      if (peeked === undefined) waiter = this.waits.take(d.id);
    }
    if (!shouldApply) {
      // Already in the backend. v2 requests (membership attributes, cluster version) live
      // outside it and are idempotent: replay them.
      if (request.kind === 'v2') this.applyRequest(request);
      waiter?.reject(etcdError('Stopped'));
      return;
    }
    this.store.setConsistentIndex(e.index, e.term);
    try {
      const result = this.applyRequest(request);
      waiter?.resolve(result);
    } catch (err) {
      if (!(err instanceof EtcdError)) throw err; // invariant broken: crash loudly
      waiter?.reject(err);
    }
  }

  private applyRequest(r: RaftRequest): unknown {
    switch (r.kind) {
      case 'put':
        if (this.alarms.has(AlarmType.NOSPACE) || this.alarms.has(AlarmType.CORRUPT)) throw etcdError(this.alarms.has(AlarmType.CORRUPT) ? 'Corrupt' : 'NoSpace');
        return this.withHeader(this.store.put(r.req));
      case 'deleteRange':
        if (this.alarms.has(AlarmType.CORRUPT)) throw etcdError('Corrupt');
        return this.withHeader(this.store.deleteRange(r.req));
      case 'txn':
        if (this.alarms.has(AlarmType.CORRUPT)) throw etcdError('Corrupt');
        if (this.alarms.has(AlarmType.NOSPACE) && txnHasPut(r.req)) throw etcdError('NoSpace');
        return this.withHeader(this.store.txn(r.req));
      case 'range':
        return this.withHeader(this.store.range(r.req));
      case 'compaction': {
        // Physical removal runs in the background; a physical request waits for it.
        const done = this.store.compact(r.req.revision);
        return { resp: CompactionResponse.fromPartial({ header: this.header() }), done } satisfies CompactionResult;
      }
      case 'alarm':
        return this.applyAlarm(r.req);
      case 'v2':
        return this.applyV2(r.req.Method ?? '', r.req.Path ?? '', r.req.Val ?? '');
      case 'unsupported':
        this.log.warn('skipped applying an unsupported request', { request: r.name });
        return undefined;
    }
  }

  private applyAlarm(req: AlarmRequest): AlarmResponse {
    const resp = AlarmResponse.fromPartial({});
    switch (req.action) {
      case AlarmAction.GET:
        resp.alarms = this.alarms.get(req.alarm);
        break;
      case AlarmAction.ACTIVATE:
        if (req.alarm === AlarmType.NONE) break;
        if (this.alarms.add(req.memberID, req.alarm)) {
          this.log.warn('alarm raised', { alarm: alarmName(req.alarm), from: idToHex(req.memberID) });
          this.deps.persistAlarms(this.alarms);
        }
        resp.alarms = [{ memberID: req.memberID, alarm: req.alarm }];
        break;
      case AlarmAction.DEACTIVATE:
        if (this.alarms.remove(req.memberID, req.alarm)) {
          this.log.warn('alarm disarmed', { alarm: alarmName(req.alarm), from: idToHex(req.memberID) });
          this.deps.persistAlarms(this.alarms);
          resp.alarms = [{ memberID: req.memberID, alarm: req.alarm }];
        }
        break;
    }
    resp.header = this.header();
    return resp;
  }

  /** The v2 requests etcd 3.4 still sends through raft: member attributes and cluster version. */
  private applyV2(method: string, path: string, val: string): unknown {
    if (method !== 'PUT') return undefined;
    if (path === clusterVersionPath) {
      const first = this.clusterVersion === undefined;
      if (val === this.clusterVersion) return undefined;
      this.clusterVersion = val;
      this.deps.persistClusterVersion(val);
      const short = val.split('.').slice(0, 2).join('.');
      if (first) this.log.info('set initial cluster version', { 'cluster-id': idToHex(this.membership.clusterId), 'local-member-id': idToHex(this.memberId), 'cluster-version': short });
      this.log.info('enabled capabilities for version', { 'cluster-version': short });
      this.log.info('cluster version is updated', { 'cluster-version': short });
      return undefined;
    }
    const id = parseMemberAttributesPath(path);
    if (id !== undefined) {
      this.membership.setAttributes(id, attributesFromJson(val));
      this.deps.persistMembership(this.membership);
    }
    return undefined;
  }

  private applyConfChange(e: Entry, shouldApply: boolean): void {
    const cc = decodeConfChange(e.data ?? new Uint8Array());
    this.raft.raw.applyConfChange(cc);
    if (shouldApply) this.store.setConsistentIndex(e.index, e.term);
    switch (cc.type) {
      case ConfChangeType.ConfChangeAddNode:
      case ConfChangeType.ConfChangeAddLearnerNode:
      case ConfChangeType.ConfChangeUpdateNode: {
        if (!cc.context || cc.context.length === 0) break;
        const m = memberFromJson(Buffer.from(cc.context).toString('utf8'));
        if (!this.membership.get(m.id)) {
          this.log.info('added member', {
            'cluster-id': idToHex(this.membership.clusterId), 'local-member-id': idToHex(this.memberId),
            'added-peer-id': idToHex(m.id), 'added-peer-peer-urls': m.peerURLs,
          });
        }
        this.membership.add(m);
        this.deps.persistMembership(this.membership);
        break;
      }
      case ConfChangeType.ConfChangeRemoveNode:
        this.membership.remove(cc.nodeId);
        this.deps.persistMembership(this.membership);
        break;
    }
    const w = cc.id !== 0n ? this.waits.take(cc.id) : undefined;
    w?.resolve(undefined);
  }

  // ------------------------------------------------------------------ proposals

  private propose<T>(request: RaftRequest): Promise<T> {
    if (this.stopped) return Promise.reject(etcdError('Stopped'));
    if (this.leader === 0n) return Promise.reject(etcdError('NoLeader'));
    if (this.waits.size >= maxPendingProposals) return Promise.reject(etcdError('RequestTooManyRequests'));
    const id = this.ids.next();
    const data = encodeRaftRequest(id, request);
    if (data.length > this.limits.maxRequestBytes) return Promise.reject(etcdError('RequestTooLarge'));
    return new Promise<T>((resolve, reject) => {
      this.waits.register(id, { request, resolve: resolve as (r: unknown) => void, reject });
      try {
        this.raft.raw.propose(data);
      } catch (e) {
        this.waits.take(id);
        reject(e instanceof EtcdError ? e : etcdError('NoLeader'));
        return;
      }
      this.raft.kick();
    });
  }

  private withHeader<T extends { header?: ResponseHeader | undefined }>(resp: T): T {
    resp.header = this.header();
    return resp;
  }

  header(): ResponseHeader {
    return {
      clusterId: this.membership.clusterId,
      memberId: this.memberId,
      revision: this.store.currentRevision,
      raftTerm: this.raft?.term ?? 0,
    };
  }

  /** Waits until this member may serve a linearizable read. */
  private async linearizableBarrier(): Promise<void> {
    if (this.stopped) throw etcdError('Stopped');
    if (this.leader === 0n) throw etcdError('NoLeader');
    // One voter, leading, with an entry of its own term applied: its commit index is the
    // read index (what a ReadIndex round would answer), no round needed.
    if (this.isLeader && this.membership.size === 1 && this.appliedTerm === this.raft.term) {
      const idx = this.raft.commitIndex;
      if (this.applied.index >= idx) return;
      return this.applied.wait(idx);
    }
    const index = await this.reads.read();
    if (this.applied.index < index) await this.applied.wait(index);
  }

  // ------------------------------------------------------------------ quota

  /**
   * The backend file size as of the last refresh (a stat per request would cost more than
   * the rest of a put). The file only grows when the batched backend commit runs, so a
   * refresh every `dbSizeRefreshMs` sees what a per-request stat would, give or take a batch.
   */
  private dbSize = 0;
  private dbSizeAt = 0;

  private quotaAvailable(cost: number): boolean {
    if (cost === 0) return true;
    const now = performance.now();
    if (now - this.dbSizeAt > dbSizeRefreshMs) {
      this.dbSize = this.store.backend.size();
      this.dbSizeAt = now;
    }
    return this.dbSize + cost < this.deps.quotaBytes;
  }

  /** Refuses a growing write past the quota and raises NOSPACE (through raft), as etcd does. */
  private async checkQuota(cost: number): Promise<void> {
    if (this.alarms.has(AlarmType.NOSPACE)) throw etcdError('NoSpace');
    if (this.quotaAvailable(cost)) return;
    await this.propose({
      kind: 'alarm',
      req: AlarmRequest.fromPartial({ action: AlarmAction.ACTIVATE, memberID: this.memberId, alarm: AlarmType.NOSPACE }),
    }).catch(() => undefined);
    throw etcdError('NoSpace');
  }

  // ------------------------------------------------------------------ KV

  async range(req: RangeRequest): Promise<RangeResponse> {
    if (!req.serializable) await this.linearizableBarrier();
    if (this.defragging) await this.defragging;
    const resp = this.store.range(req);
    resp.header = this.header();
    return resp;
  }

  async put(req: PutRequest, raw?: Uint8Array): Promise<PutResponse> {
    if (this.alarms.empty === false || !this.quotaAvailable(kvOverhead + req.key.length + req.value.length)) {
      await this.checkQuota(kvOverhead + req.key.length + req.value.length);
    }
    return this.propose<PutResponse>({ kind: 'put', req, raw });
  }

  deleteRange(req: DeleteRangeRequest): Promise<DeleteRangeResponse> {
    return this.propose<DeleteRangeResponse>({ kind: 'deleteRange', req });
  }

  async txn(req: TxnRequest): Promise<TxnResponse> {
    if (isTxnReadOnly(req)) {
      await this.linearizableBarrier();
      if (this.defragging) await this.defragging;
      const resp = this.store.txn(req);
      resp.header = this.header();
      return resp;
    }
    const cost = Math.max(txnPutCost(req.success), txnPutCost(req.failure));
    if (cost > 0 && (!this.alarms.empty || !this.quotaAvailable(cost))) await this.checkQuota(cost);
    return this.propose<TxnResponse>({ kind: 'txn', req });
  }

  async compact(req: CompactionRequest): Promise<CompactionResponse> {
    const r = await this.propose<CompactionResult>({ kind: 'compaction', req });
    if (req.physical) {
      await r.done;
      await this.store.forceCommit();
    }
    r.resp.header = this.header();
    return r.resp;
  }

  // ------------------------------------------------------------------ Maintenance

  async status(): Promise<StatusResponse> {
    const errors = this.alarms.get(AlarmType.NONE).map((a) => `memberID:${a.memberID} alarm:${alarmName(a.alarm)} `);
    return StatusResponse.fromPartial({
      header: this.header(),
      version: serverVersion,
      dbSize: this.store.backend.size(),
      dbSizeInUse: this.store.backend.sizeInUse(),
      leader: this.leader,
      raftIndex: this.raft.commitIndex,
      raftTerm: this.raft.term,
      raftAppliedIndex: this.applied.index,
      errors,
      isLearner: false,
    });
  }

  async defragment(): Promise<DefragmentResponse> {
    this.log.info('defragmenting', { path: this.store.backend.path });
    // Applies pause (exclusive) and reads wait (the file is swapped underneath them).
    const done = this.raft.exclusive(() => this.store.backend.defrag());
    this.defragging = done.catch(() => undefined);
    try {
      await done;
    } finally {
      this.defragging = undefined;
    }
    return DefragmentResponse.fromPartial({ header: this.header() });
  }

  /** Set while a defragmentation runs: reads wait for it. */
  private defragging: Promise<unknown> | undefined;

  async hash(): Promise<HashResponse> {
    const h = this.store.hash();
    return HashResponse.fromPartial({ header: this.header(), hash: h.hash });
  }

  async hashKV(req: HashKVRequest): Promise<HashKVResponse> {
    const h = this.store.hashKV(req.revision);
    return HashKVResponse.fromPartial({ header: { ...this.header(), revision: h.revision }, hash: h.hash, compactRevision: h.compactRevision });
  }

  async alarm(req: AlarmRequest): Promise<AlarmResponse> {
    return this.propose<AlarmResponse>({ kind: 'alarm', req });
  }

  async moveLeader(req: MoveLeaderRequest): Promise<MoveLeaderResponse> {
    if (!this.isLeader) throw etcdError('NotLeader');
    const target = this.membership.get(req.targetID);
    if (!target || target.isLearner) throw etcdError('BadLeaderTransferee');
    if (req.targetID !== this.memberId) {
      this.raft.raw.transferLeader(req.targetID);
      this.raft.kick();
      const deadline = Date.now() + this.deps.config.electionTimeoutMs * 5;
      while (this.leader !== req.targetID) {
        if (Date.now() > deadline) throw etcdError('TimeoutLeaderTransfer');
        await new Promise((r) => setTimeout(r, this.deps.config.heartbeatIntervalMs));
      }
    }
    return MoveLeaderResponse.fromPartial({ header: this.header() });
  }

  async snapshot(): Promise<BackendSnapshot> {
    return this.raft.exclusive(() => this.store.backend.snapshot());
  }

  // ------------------------------------------------------------------ Cluster

  async memberList(_req: MemberListRequest): Promise<MemberListResponse> {
    // etcd's cluster service header carries no revision.
    return MemberListResponse.fromPartial({ header: { ...this.header(), revision: 0 }, members: this.membership.toProto() });
  }

  health(): HealthReport {
    if (!this.alarms.empty) {
      return { health: false, reason: this.alarms.get(AlarmType.NONE).map((a) => `ALARM ${alarmName(a.alarm)}`).join(',') };
    }
    if (this.leader === 0n) return { health: false, reason: 'RAFT NO LEADER' };
    return { health: true, reason: '' };
  }

  /** The cluster version, once decided ("3.4.0" style), as etcd keeps it in /0/version. */
  clusterVersion: string | undefined;

  /** As the leader, sets the cluster version (etcd's first entry after election). */
  async setClusterVersion(version: string): Promise<void> {
    this.log.info('setting up initial cluster version', { 'cluster-version': version.split('.').slice(0, 2).join('.') });
    await this.propose<void>({ kind: 'v2', req: { ID: 0n, Method: 'PUT', Path: clusterVersionPath, Val: version } });
  }

  /** Publishes this member's name and client URLs through raft; resolves once applied. */
  async publish(name: string, clientURLs: string[]): Promise<void> {
    await this.propose<void>({
      kind: 'v2',
      req: { ID: 0n, Method: 'PUT', Path: memberAttributesPath(this.memberId), Val: attributesToJson(name, clientURLs) },
    });
  }

  stop(): void {
    this.stopped = true;
    this.waits.failAll(etcdError('Stopped'));
    this.reads.failAll(etcdError('Stopped'));
    this.applied.failAll(etcdError('Stopped'));
  }
}

interface CompactionResult {
  resp: CompactionResponse;
  done: Promise<void>;
}

function txnHasPut(req: TxnRequest): boolean {
  const has = (ops: RequestOp[]): boolean => ops.some((op) => op.requestPut !== undefined || (op.requestTxn !== undefined && txnHasPut(op.requestTxn)));
  return has(req.success) || has(req.failure);
}

function txnPutCost(ops: RequestOp[]): number {
  let cost = 0;
  for (const op of ops) {
    if (op.requestPut) cost += kvOverhead + op.requestPut.key.length + op.requestPut.value.length;
    else if (op.requestTxn) cost += Math.max(txnPutCost(op.requestTxn.success), txnPutCost(op.requestTxn.failure));
  }
  return cost;
}

function isTxnReadOnly(req: TxnRequest): boolean {
  const ro = (ops: RequestOp[]): boolean => ops.every((op) => op.requestRange !== undefined || (op.requestTxn !== undefined && isTxnReadOnly(op.requestTxn)));
  return ro(req.success) && ro(req.failure);
}
