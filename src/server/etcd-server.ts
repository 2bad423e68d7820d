/**
 * One member as the API sees it (EtcdService): writes are proposed through the raft loop
 * and answered when the applier has applied their entry; linearizable reads wait for a
 * ReadIndex round and the applied index; serializable reads go straight to the store.
 * Raft's state (leader, term, commit and applied index) is read from the RaftNode, never
 * copied here.
 */
import {
  AlarmMember, AlarmRequest_AlarmAction as AlarmAction, AlarmRequest, AlarmResponse, AlarmType, CompactionRequest, CompactionResponse,
  DefragmentResponse, DeleteRangeRequest, DeleteRangeResponse, HashKVRequest, HashKVResponse,
  HashResponse, MemberListRequest, MemberListResponse, MoveLeaderRequest, MoveLeaderResponse, etcdserverpb as pb,
  PutRequest, PutResponse, RangeRequest, RangeResponse, RequestOp, ResponseHeader,
  StatusResponse, TxnRequest, TxnResponse, type Member as PbMember, type Snapshot,
} from '../proto/index.js';
import { etcdError, EtcdError } from '../errors/index.js';
import { countView, diskMetrics, serverMetrics } from '../metrics/index.js';
import { RaftError } from '../raft/index.js';
import { isOneKeyRead, type HashKVResult, type MvccStore } from '../mvcc/index.js';
import { formatDuration, type Logger } from '../log/index.js';
import type { BackendSnapshot, EtcdService, HealthQuery, HealthReport, LeaseService, RangeAnswer, WatchHost } from './service.js';
import type { ServerConfig } from './config.js';
import type { RaftNode } from './raft-node.js';
import { AlarmSet, alarmName } from './alarms.js';
import { Membership, idToHex, attributesToJson, memberAttributesPath, memberToJson } from './membership.js';
import { encodeRaftRequest, type RaftRequest } from './request-codec.js';
import { RequestIdGenerator, type WaitRegistry, type Waiter } from './wait.js';
import { LinearizableReads } from './read-index.js';
import { LeaderWait } from './leader-wait.js';
import { clusterVersionPath, type Applier, type CompactionResult } from './applier.js';
import { isTxnReadOnly, isTxnSerializable } from './txn-rules.js';
import { applyTxn } from './txn.js';
import type { AuthStore } from '../auth/index.js';
import { AuthServer, type AuthInfo } from './auth-server.js';
import { checkTxn as checkTxnPermission } from './auth-checks.js';
import { ClusterService, noPeerActivity, type PeerActivity } from './cluster-service.js';
import { proposeTimeout, type TimeoutView } from './propose-timeout.js';
import { longestConnected } from './leader-transfer.js';

export { etcdServerVersion as serverVersion, etcdClusterVersion as clusterVersion } from '../version.js';
import { etcdServerVersion as serverVersion } from '../version.js';
import { etcdSnapshot, type BucketReplacements } from '../snapshot/index.js';
import { v2StoreOfMembership } from './v2-store.js';

/** etcd 3.4's /health waits this long for its QGET. */
const healthTimeoutMs = 1000;
/** The local read a serializable health check makes (etcd 3.5: keys only, limit 1). */
const healthRange = RangeRequest.fromPartial({ key: Buffer.from([0]), rangeEnd: Buffer.from([0]), keysOnly: true, limit: 1, serializable: true });

/** Bytes etcd adds per key when estimating a put's cost against the quota. */
const kvOverhead = 256;
/** How stale the cached backend size used by the quota check may be. */
const dbSizeRefreshMs = 20;
/** etcd's maxGapBetweenApplyAndCommitIndex: past it new proposals get "too many requests". */
const maxGapBetweenApplyAndCommitIndex = 5000;
/** Linearizable reads waiting for a ReadIndex round or the applied index, at most. */
export const maxPendingReads = 10_000;

export interface EtcdServerDeps {
  config: ServerConfig;
  log: Logger;
  memberId: bigint;
  membership: Membership;
  store: MvccStore;
  alarms: AlarmSet;
  quotaBytes: number;
  raft: RaftNode;
  applier: Applier;
  /** Proposals in flight (shared with the applier, which answers them); bounds them too. */
  waits: WaitRegistry;
  /** Linearizable reads waiting at most (default maxPendingReads). */
  maxPendingReads?: number;
  auth: AuthStore;
  /** The peer transport's connection times (strict reconfig checks); default: no peers ever connected. */
  peers?: PeerActivity;
  /** Forwards a promotion to the leader when this member does not lead (promote-forward.ts). */
  forwardPromote?: (id: bigint) => Promise<PbMember[]>;
}

/** How long after applying its own removal the member stops (etcd's stopWithDelay). */
const removedStopDelayMs = 1000;

/** A RangeAnswer without the one-key path: every range decoded (EtcdServer.range). */
interface DecodedOnly<T> { response(resp: RangeResponse): T; oneKey?: undefined }
const decodedRange: DecodedOnly<RangeResponse> = { response: (resp) => resp };

/** How often proposals past the request timeout are looked for (the answer comes up to this late). */
const proposalSweepMs = 500;

export class EtcdServer implements EtcdService {
  readonly limits: { maxTxnOps: number; maxRequestBytes: number };
  /** Set by startServer once the watchable store is open (index.ts). */
  watch: WatchHost | undefined = undefined;
  /** Set by startMember once the lessor is up (server/lease-host.ts). */
  lease: LeaseService | undefined = undefined;
  readonly memberId: bigint;
  readonly membership: Membership;
  private readonly store: MvccStore;
  private readonly log: Logger;
  private readonly alarms: AlarmSet;
  private readonly deps: EtcdServerDeps;
  private readonly raft: RaftNode;
  private readonly applier: Applier;
  private readonly waits: WaitRegistry;
  private readonly ids: RequestIdGenerator;
  private readonly reads: LinearizableReads;
  /** Proposals and reads that arrived while no leader is known wait here (leader-wait.ts). */
  private readonly leaderWait: LeaderWait;
  /** etcd's ReqTimeout(): 5 s plus two election timeouts. */
  private readonly requestTimeoutMs: number;
  private stopped = false;
  readonly auth: AuthServer;
  readonly cluster: ClusterService;
  private autoPromoteTimer: ReturnType<typeof setInterval> | undefined;
  /** Expires proposals older than the request timeout (expireProposals). */
  private readonly proposalSweepTimer: ReturnType<typeof setInterval>;
  /** When a leader was last elected after none was known (performance.now ms): etcd's leadElectedTime. */
  private leaderElectedAtMs = Number.NEGATIVE_INFINITY;
  private readonly electionTimeoutMs: number;
  /** The peer transport's connection times (which timeout message a lost proposal gets). */
  private readonly peers: PeerActivity;
  /** Resolves once this member, removed from the cluster, is to stop (the composition root stops the process). */
  readonly removed: Promise<Error>;
  /** removedFromCluster() ran: the member stops once (many peers may say so). */
  private removing = false;
  private markRemoved!: (why: Error) => void;
  private readonly authStore: AuthStore;

  constructor(deps: EtcdServerDeps) {
    this.deps = deps;
    this.store = deps.store;
    this.log = deps.log;
    this.alarms = deps.alarms;
    this.memberId = deps.memberId;
    this.membership = deps.membership;
    this.raft = deps.raft;
    this.applier = deps.applier;
    this.waits = deps.waits;
    this.limits = { maxTxnOps: deps.config.maxTxnOps, maxRequestBytes: deps.config.maxRequestBytes };
    this.ids = new RequestIdGenerator(deps.memberId, Date.now());
    this.requestTimeoutMs = 5000 + 2 * deps.config.electionTimeoutMs; // etcd's ReqTimeout()
    this.electionTimeoutMs = deps.config.electionTimeoutMs;
    this.peers = deps.peers ?? noPeerActivity;
    this.proposalSweepTimer = setInterval(() => this.expireProposals(performance.now()), proposalSweepMs);
    this.proposalSweepTimer.unref();
    this.leaderWait = new LeaderWait({ hasLeader: () => this.raft.leader !== 0n, maxWaiters: deps.maxPendingReads ?? maxPendingReads });
    this.reads = new LinearizableReads({
      raft: deps.raft,
      waitForLeader: () => this.leaderWait.wait(this.requestTimeoutMs, 'Timeout'),
      requestTimeoutMs: this.requestTimeoutMs,
      soleVoter: () => this.membership.size === 1,
      maxPendingReads: deps.maxPendingReads ?? maxPendingReads,
    });
    this.authStore = deps.auth;
    this.auth = new AuthServer({
      store: deps.auth, log: deps.log, bcryptCost: deps.config.auth?.bcryptCost ?? 10,
      propose: (r, ai) => this.propose(r, ai), barrier: () => this.linearizableBarrier(),
    });
    this.cluster = new ClusterService({
      memberId: deps.memberId, membership: deps.membership, raft: deps.raft, waits: deps.waits,
      nextRequestId: () => this.ids.next(), peers: this.peers,
      strictReconfigCheck: deps.config.strictReconfigCheck ?? true,
      requestTimeoutMs: this.requestTimeoutMs,
      header: () => this.header(), log: deps.log,
      ...(deps.forwardPromote ? { forwardPromote: deps.forwardPromote } : {}),
    });
    if (deps.config.autoPromoteLearners) {
      this.autoPromoteTimer = setInterval(() => this.cluster.maybeAutoPromote(), deps.config.heartbeatIntervalMs);
      this.autoPromoteTimer.unref();
    }
    this.removed = new Promise((resolve) => { this.markRemoved = resolve; });
  }

  /**
   * This member was removed from the cluster: it stops with "the member has been permanently
   * removed". After applying its own removal it waits a second first, as etcd's stopWithDelay
   * does (time for the entry to reach the others); when a peer answers 410 "removed member"
   * (etcd's rafthttp errMemberRemoved on the server's errorc) it stops at once.
   */
  removedFromCluster(how: 'applied' | 'told by a peer' = 'applied'): void {
    if (this.removing) return;
    this.removing = true;
    const why = new Error('the member has been permanently removed from the cluster');
    setTimeout(() => {
      this.log.warn('server error', { error: why.message });
      this.log.warn('data-dir used by this member must be removed', {});
      this.markRemoved(why);
    }, how === 'applied' ? removedStopDelayMs : 0).unref();
  }

  /** Whether this member is a learner: it then serves only Status and serializable ranges (etcd's interceptor). */
  isLearner(): boolean {
    return this.cluster.isLearner();
  }

  hasLeader(): boolean {
    return this.raft.leader !== 0n;
  }

  get leader(): bigint {
    return this.raft.leader;
  }

  get appliedIndex(): number {
    return this.raft.appliedIndex;
  }

  /** The cluster version, once decided ("3.4.0" style), as etcd keeps it in /0/version. */
  get clusterVersion(): string | undefined {
    return this.applier.clusterVersion;
  }

  // ------------------------------------------------------------------ raft events

  onLeaderChanged(leader: bigint, previous: bigint): void {
    if (previous === leader) return;
    if (leader !== 0n) serverMetrics.leaderChanges.inc();
    if (leader === 0n) this.log.info('raft.node: lost leader', { 'local-member-id': idToHex(this.memberId), term: this.raft.term });
    else {
      this.leaderElectedAtMs = performance.now();
      this.leaderWait.leaderElected();
    }
    this.reads.leaderChanged(leader);
  }

  onReadState(ctx: Uint8Array, index: number): void {
    this.reads.roundDone(ctx, index);
  }

  // ------------------------------------------------------------------ proposals

  /** Proposes `request` through raft; resolves with its apply result (also for server-side modules: lease expiry). */
  propose<T>(request: RaftRequest, ai?: AuthInfo): Promise<T> {
    return new Promise<T>((resolve, reject) => this.proposeTo(request, ai, { resolve: resolve as (r: unknown) => void, reject }));
  }

  /**
   * Proposes `request` through raft; `waiter` gets its apply result or the refusal, once (the
   * hot write path: the gRPC call itself waits, no promise per request). Never throws an
   * expected refusal: that goes to `waiter.reject`.
   */
  proposeTo(request: RaftRequest, ai: AuthInfo | undefined, waiter: Waiter): void {
    if (this.stopped) { waiter.reject(etcdError('Stopped')); return; }
    if (this.raft.leader !== 0n) { this.proposeToLeader(request, ai, waiter); return; }
    // etcd's Propose blocks until a leader is known (or its request timeout).
    this.leaderWait.wait(this.requestTimeoutMs, 'ProposalDeadlineExceeded').then(
      () => this.proposeToLeader(request, ai, waiter),
      (e: unknown) => { serverMetrics.proposalsFailed.inc(); waiter.reject(e as Error); },
    ).catch((e: unknown) => waiter.reject(e as Error)); // raft refusing in an unexpected way: this call fails, as a throw would
  }

  private proposeToLeader(request: RaftRequest, ai: AuthInfo | undefined, waiter: Waiter): void {
    const refusal = this.refusalBeforeProposing();
    if (refusal !== undefined) { waiter.reject(refusal); return; }
    const id = this.ids.next();
    const data = encodeRaftRequest(id, request, ai);
    if (data.length > this.limits.maxRequestBytes) { waiter.reject(etcdError('RequestTooLarge')); return; }
    if (!this.waits.hasRoomFor(data.length)) { waiter.reject(etcdError('RequestTooManyRequests')); return; }
    this.waits.register(id, data.length, waiter);
    try {
      this.raft.propose(data);
    } catch (e) {
      this.waits.take(id);
      if (!(e instanceof RaftError && e.code === 'ProposalDropped')) throw e;
      serverMetrics.proposalsFailed.inc();
      waiter.reject(etcdError('NoLeader'));
    }
  }

  /**
   * Answers, and frees, every proposal still waiting a request timeout after it went to raft
   * (WaitRegistry.expireOlderThan), with the error etcd's parseProposeCtxErr picks
   * (proposeTimeout: previous leader failure, connection lost, or plain "request timed out").
   * Called every proposalSweepMs; public for tests, which pass the time.
   */
  expireProposals(nowMs: number): number {
    // What the member knows is gathered only when some proposal did time out (rarely).
    let view: TimeoutView | undefined;
    const n = this.waits.expireOlderThan(nowMs - this.requestTimeoutMs,
      (started) => etcdError(proposeTimeout(view ??= this.timeoutView(nowMs), started)));
    if (n > 0) serverMetrics.proposalsFailed.inc(n);
    return n;
  }

  /** What proposeTimeout decides from, at monotonic time `nowMs`. */
  private timeoutView(nowMs: number): TimeoutView {
    return {
      self: this.memberId, leader: this.raft.leader, memberIds: this.membership.list().map((m) => m.id),
      leaderElectedAtMs: this.leaderElectedAtMs, electionTimeoutMs: this.electionTimeoutMs,
      activeSince: (id) => this.peers.activeSince(id),
      // The peers' connection times are wall-clock; the registry's start times, monotonic.
      wallOffsetMs: Date.now() - nowMs,
    };
  }

  /** Why a proposal may not go to raft now (stopped, no leader, apply too far behind), if it may not. */
  private refusalBeforeProposing(): EtcdError | undefined {
    if (this.stopped) return etcdError('Stopped');
    const raft = this.raft;
    if (raft.leader === 0n) {
      serverMetrics.proposalsFailed.inc();
      return etcdError('NoLeader');
    }
    if (raft.commitIndex > raft.appliedIndex + maxGapBetweenApplyAndCommitIndex) return etcdError('RequestTooManyRequests');
    return undefined;
  }

  header(): ResponseHeader {
    return {
      clusterId: this.membership.clusterId,
      memberId: this.memberId,
      revision: this.store.currentRevision,
      raftTerm: this.raft.term,
    };
  }

  /** Waits until this member may serve a linearizable read (also the corruption check's read barrier). */
  linearizableBarrier(): Promise<void> {
    if (this.stopped) return Promise.reject(etcdError('Stopped'));
    return this.reads.barrier();
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
    }).catch((e: unknown) => {
      // etcd ignores the alarm request's outcome here: the client's answer is NOSPACE anyway.
      if (!(e instanceof EtcdError)) throw e;
    });
    throw etcdError('NoSpace');
  }

  // ------------------------------------------------------------------ KV

  /**
   * A range, answered at once (no promise) when nothing needs waiting for: a serializable read,
   * or a linearizable one this member may serve without a ReadIndex round (the only voter,
   * applied up to its commit index), with no backend file swap in progress. The hot path of
   * every read benchmark: an async function here cost each read a promise and microtask turns.
   * A refusal (auth, revision) is then thrown, not returned as a rejection.
   */
  range(req: RangeRequest, ai?: AuthInfo): RangeResponse | Promise<RangeResponse> {
    return this.rangeAs(req, ai, decodedRange);
  }

  rangeAs<T>(req: RangeRequest, ai: AuthInfo | undefined, answer: RangeAnswer<T> | DecodedOnly<T>): T | Promise<T> {
    if ((req.serializable || (!this.stopped && this.reads.readableNow())) && this.backendSwaps.size === 0) return this.rangeNow(req, ai, answer);
    return this.rangeAfterWaits(req, ai, answer);
  }

  private async rangeAfterWaits<T>(req: RangeRequest, ai: AuthInfo | undefined, answer: RangeAnswer<T> | DecodedOnly<T>): Promise<T> {
    if (!req.serializable) await this.linearizableBarrier();
    if (this.backendSwaps.size > 0) await this.backendSwapped();
    return this.rangeNow(req, ai, answer);
  }

  /** The read itself, answered in the same synchronous step (a one-key record is valid only until the next read). */
  private rangeNow<T>(req: RangeRequest, ai: AuthInfo | undefined, answer: RangeAnswer<T> | DecodedOnly<T>): T {
    if (this.authStore.enabled) this.authStore.checkRange(ai, req.key, req.rangeEnd);
    if (answer.oneKey !== undefined && isOneKeyRead(req)) {
      const found = this.store.findKey(req.key, req.revision);
      const record = found === undefined || req.countOnly ? undefined : this.store.recordOf(found);
      countView(1, 0, 0);
      return answer.oneKey(this.header(), record, found === undefined ? 0 : 1, req.keysOnly);
    }
    const resp = this.store.range(req);
    countView(1, 0, 0);
    resp.header = this.header();
    return answer.response(resp);
  }

  put(req: PutRequest, raw?: Uint8Array, ai?: AuthInfo): Promise<PutResponse> {
    return new Promise((resolve, reject) => this.putTo(req, raw, ai, { resolve: resolve as (r: unknown) => void, reject }));
  }

  /** put, its PutResponse (or refusal) handed to `waiter`: the hot path (no promise per request). */
  putTo(req: PutRequest, raw: Uint8Array | undefined, ai: AuthInfo | undefined, waiter: Waiter): void {
    const request: RaftRequest = { kind: 'put', req, raw };
    const cost = kvOverhead + req.key.length + req.value.length;
    if (this.alarms.empty && this.quotaAvailable(cost)) { this.proposeTo(request, ai, waiter); return; }
    this.checkQuota(cost).then(() => this.proposeTo(request, ai, waiter), (e: unknown) => waiter.reject(e as Error));
  }

  deleteRange(req: DeleteRangeRequest, ai?: AuthInfo): Promise<DeleteRangeResponse> {
    return this.propose<DeleteRangeResponse>({ kind: 'deleteRange', req }, ai);
  }

  deleteRangeTo(req: DeleteRangeRequest, ai: AuthInfo | undefined, waiter: Waiter): void {
    this.proposeTo({ kind: 'deleteRange', req }, ai, waiter);
  }

  txn(req: TxnRequest, ai?: AuthInfo): Promise<TxnResponse> {
    return new Promise((resolve, reject) => this.txnTo(req, undefined, ai, { resolve: resolve as (r: unknown) => void, reject }));
  }

  /**
   * txn, its TxnResponse (or refusal) handed to `waiter`; a writing txn's waiter waits in the
   * proposal registry. `raw`: the client's own encoding of `req`, proposed as it is (as a put's).
   */
  txnTo(req: TxnRequest, raw: Uint8Array | undefined, ai: AuthInfo | undefined, waiter: Waiter): void {
    if (isTxnReadOnly(req)) {
      this.readOnlyTxn(req, ai).then((r) => waiter.resolve(r), (e: unknown) => waiter.reject(e as Error));
      return;
    }
    const cost = Math.max(txnPutCost(req.success), txnPutCost(req.failure));
    const request: RaftRequest = { kind: 'txn', req, raw };
    if (cost === 0 || (this.alarms.empty && this.quotaAvailable(cost))) { this.proposeTo(request, ai, waiter); return; }
    this.checkQuota(cost).then(() => this.proposeTo(request, ai, waiter), (e: unknown) => waiter.reject(e as Error));
  }

  /** etcd serves read-only txns without raft; serializable ones without a ReadIndex round. */
  private async readOnlyTxn(req: TxnRequest, ai: AuthInfo | undefined): Promise<TxnResponse> {
    if (!isTxnSerializable(req)) await this.linearizableBarrier();
    if (this.backendSwaps.size > 0) await this.backendSwapped();
    if (this.authStore.enabled) checkTxnPermission(this.authStore, ai, req);
    const resp = applyTxn(this.store, req);
    resp.header = this.header();
    return resp;
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
      leader: this.raft.leader,
      raftIndex: this.raft.commitIndex,
      raftTerm: this.raft.term,
      raftAppliedIndex: this.raft.appliedIndex,
      errors,
      isLearner: this.isLearner(),
    });
  }

  async defragment(): Promise<DefragmentResponse> {
    this.log.info('defragmenting', { path: this.store.backend.path });
    // Applies pause (exclusive) and reads wait (the file is swapped underneath them).
    const t0 = performance.now();
    this.defragging = true;
    try {
      await this.holdingReads(() => this.raft.exclusive(() => this.store.backend.defrag()));
      diskMetrics.defrag.observe((performance.now() - t0) / 1000);
    } finally {
      this.defragging = false;
    }
    return DefragmentResponse.fromPartial({}); // etcd answers an empty DefragmentResponse (no header)
  }

  private defragging = false;

  /** Whether a defragmentation is running (etcd_disk_defrag_inflight). */
  get defragInflight(): boolean {
    return this.defragging;
  }

  /**
   * Runs `work`, which swaps the backend file (a defragmentation, a leader's snapshot being
   * installed), while reads wait: the file is closed underneath them meanwhile.
   */
  async holdingReads<T>(work: () => Promise<T>): Promise<T> {
    const done = work();
    const settled = done.then(() => undefined, () => undefined);
    this.backendSwaps.add(settled);
    try {
      return await done;
    } finally {
      this.backendSwaps.delete(settled);
    }
  }

  /** Swaps of the backend file in progress (holdingReads). */
  private readonly backendSwaps = new Set<Promise<void>>();

  /** Resolves once no backend swap is in progress (one may start while another ends). */
  private async backendSwapped(): Promise<void> {
    while (this.backendSwaps.size > 0) await Promise.all(this.backendSwaps);
  }

  async hash(): Promise<HashResponse> {
    if (this.backendSwaps.size > 0) await this.backendSwapped();
    const h = this.store.hash();
    return HashResponse.fromPartial({ header: this.header(), hash: h.hash });
  }

  async hashKV(req: HashKVRequest): Promise<HashKVResponse> {
    const h = await this.storeHashKV(req.revision);
    return HashKVResponse.fromPartial({ header: { ...this.header(), revision: h.revision }, hash: h.hash, compactRevision: h.compactRevision });
  }

  /**
   * The store's HashByRev once no backend swap is in progress, as reads wait (the peer
   * /members/hashkv handler and the corruption checks use it too).
   */
  async storeHashKV(revision: number): Promise<HashKVResult> {
    if (this.backendSwaps.size > 0) await this.backendSwapped();
    return this.store.hashKV(revision);
  }

  async alarm(req: AlarmRequest): Promise<AlarmResponse> {
    return this.propose<AlarmResponse>({ kind: 'alarm', req });
  }

  async moveLeader(req: MoveLeaderRequest): Promise<MoveLeaderResponse> {
    if (!this.raft.isLeader) throw etcdError('NotLeader');
    await this.moveLeaderTo(req.targetID, this.deps.config.electionTimeoutMs * 5);
    return MoveLeaderResponse.fromPartial({ header: this.header() });
  }

  /** etcd's MoveLeader: asks raft to hand leadership to `transferee`, then waits until it leads. */
  private async moveLeaderTo(transferee: bigint, timeoutMs: number): Promise<void> {
    const target = this.membership.get(transferee);
    if (!target || target.isLearner) throw etcdError('BadLeaderTransferee');
    // To itself as well, as etcd: raft ignores that transfer, the wait below ends at once,
    // and both log lines are written.
    const lead = this.raft.leader;
    const start = Date.now();
    this.log.info('leadership transfer starting', {
      'local-member-id': idToHex(this.memberId), 'current-leader-member-id': idToHex(lead), 'transferee-member-id': idToHex(transferee),
    });
    this.raft.transferLeader(transferee);
    while (this.raft.leader !== transferee) {
      if (Date.now() - start > timeoutMs) throw etcdError('TimeoutLeaderTransfer');
      await new Promise((r) => setTimeout(r, this.deps.config.heartbeatIntervalMs));
    }
    this.log.info('leadership transfer finished', {
      'local-member-id': idToHex(this.memberId), 'old-leader-member-id': idToHex(lead), 'new-leader-member-id': idToHex(transferee),
      took: formatDuration(Date.now() - start),
    });
  }

  /**
   * etcd's TransferLeadership, run as a member stops: a leader hands its leadership to the
   * voter connected longest, so the others need not wait out an election timeout before
   * taking writes again. Never throws: a failed transfer is logged and the stop goes on.
   */
  async transferLeadershipForStop(): Promise<void> {
    const self = idToHex(this.memberId);
    if (!this.raft.isLeader) {
      this.log.info('skipped leadership transfer; local server is not leader', { 'local-member-id': self, 'current-leader-member-id': idToHex(this.raft.leader) });
      return;
    }
    const voters = this.membership.list().filter((m) => !m.isLearner).map((m) => m.id);
    if (voters.length <= 1) {
      this.log.info('skipped leadership transfer for single voting member cluster', { 'local-member-id': self, 'current-leader-member-id': idToHex(this.raft.leader) });
      return;
    }
    try {
      const transferee = longestConnected(voters, this.peers);
      if (transferee === undefined) throw etcdError('Unhealthy');
      await this.moveLeaderTo(transferee, this.requestTimeoutMs);
    } catch (e) {
      if (!(e instanceof EtcdError)) throw e;
      this.log.warn('leadership transfer failed', { 'local-member-id': self, error: e.message });
    }
  }

  /**
   * etcd's bbolt snapshot of the backend. Applies pause only while the read view is taken
   * (a commit); the file is then planned and streamed from the view as writes go on. Members
   * and alarms are written in etcd's layout, from the same point in time.
   */
  async snapshot(): Promise<BackendSnapshot> {
    const { view, replace } = await this.raft.exclusive(async () => ({
      view: await this.store.backend.readView(),
      replace: etcdBucketsOf(this.membership, this.alarms),
    }));
    return etcdSnapshot(view, replace);
  }

  /**
   * etcd's createMergedSnapshotMessage: the backend image with a raft snapshot naming the same
   * point (the applied index, its term, the configuration and membership as of it), taken
   * between Readies. The follower installs that point rather than raft's older snapshot,
   * whose configuration may not even hold the follower yet (a member added since; raft
   * ignores a snapshot that does not name it).
   */
  async mergedSnapshot(): Promise<{ image: BackendSnapshot; snapshot: Snapshot }> {
    const { view, replace, snapshot } = await this.raft.exclusive(async () => {
      const view = await this.store.backend.readView();
      const index = this.raft.appliedIndex;
      const snapshot: Snapshot = {
        metadata: { index, term: this.raft.appliedTerm, confState: this.raft.confState() },
        data: Buffer.from(v2StoreOfMembership(this.membership, this.applier.clusterVersion, index)),
      };
      return { view, replace: etcdBucketsOf(this.membership, this.alarms), snapshot };
    });
    return { image: await etcdSnapshot(view, replace), snapshot };
  }

  // ------------------------------------------------------------------ Cluster

  async memberList(_req: MemberListRequest): Promise<MemberListResponse> {
    return this.cluster.memberList();
  }

  memberAdd(req: pb.MemberAddRequest): Promise<pb.MemberAddResponse> { return this.cluster.memberAdd(req); }
  memberRemove(req: pb.MemberRemoveRequest): Promise<pb.MemberRemoveResponse> { return this.cluster.memberRemove(req); }
  memberUpdate(req: pb.MemberUpdateRequest): Promise<pb.MemberUpdateResponse> { return this.cluster.memberUpdate(req); }
  memberPromote(req: pb.MemberPromoteRequest): Promise<pb.MemberPromoteResponse> { return this.cluster.memberPromote(req); }

  health(): HealthReport {
    if (!this.alarms.empty) {
      return { health: false, reason: this.alarms.get(AlarmType.NONE).map((a) => `ALARM ${alarmName(a.alarm)}`).join(',') };
    }
    if (this.raft.leader === 0n) return { health: false, reason: 'RAFT NO LEADER' };
    return { health: true, reason: '' };
  }

  /**
   * etcd's /health check: 3.4's (alarms, leader, then a QGET through raft within a second)
   * with 3.5's options: alarms named in `excludedAlarms` are ignored; `serializable` skips
   * the leader check and reads locally instead of through raft.
   */
  async checkHealth(q: HealthQuery): Promise<HealthReport> {
    for (const a of this.alarms.get(AlarmType.NONE)) {
      const name = alarmName(a.alarm);
      if (q.excludedAlarms.has(name)) continue;
      return { health: false, reason: `ALARM ${name}` };
    }
    if (q.serializable) {
      this.store.range(healthRange);
      return { health: true, reason: '' };
    }
    if (this.raft.leader === 0n) return { health: false, reason: 'RAFT NO LEADER' };
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(etcdError('Timeout')), healthTimeoutMs); });
    try {
      await Promise.race([this.propose<void>({ kind: 'v2', req: { ID: 0n, Method: 'QGET' } }), timedOut]);
      return { health: true, reason: '' };
    } catch (e) {
      if (!(e instanceof EtcdError)) throw e;
      return { health: false, reason: `QGET ERROR:${e.message}` };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Names of the raised alarms ("NOSPACE", "CORRUPT"), for the readiness checks. */
  activeAlarms(): string[] {
    return this.alarms.get(AlarmType.NONE).map((a) => alarmName(a.alarm));
  }

  raftStatusJson(): string {
    return this.raft.statusJson();
  }

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
    clearInterval(this.autoPromoteTimer);
    clearInterval(this.proposalSweepTimer);
    this.waits.failAll(etcdError('Stopped'));
    this.leaderWait.stop();
    this.reads.failAll(etcdError('Stopped'));
    this.raft.failApplyWaits(etcdError('Stopped'));
  }
}

function txnPutCost(ops: RequestOp[]): number {
  let cost = 0;
  for (const op of ops) {
    if (op.requestPut) cost += kvOverhead + op.requestPut.key.length + op.requestPut.value.length;
    else if (op.requestTxn) cost += Math.max(txnPutCost(op.requestTxn.success), txnPutCost(op.requestTxn.failure));
  }
  return cost;
}

/**
 * etcd's members bucket (key: the id in hex, value: the member's JSON) and alarm bucket (key:
 * the marshalled AlarmMember, empty value), for the snapshot file.
 */
export function etcdBucketsOf(membership: Membership, alarms: AlarmSet): BucketReplacements {
  const sorted = (e: [Buffer, Buffer][]) => e.sort((a, b) => Buffer.compare(a[0], b[0]));
  return {
    members: sorted(membership.list().map((m) => [Buffer.from(idToHex(m.id)), Buffer.from(memberToJson(m))])),
    alarm: sorted(alarms.get(AlarmType.NONE).map((a) => [Buffer.from(AlarmMember.encode(a).finish()), Buffer.alloc(0)])),
  };
}
