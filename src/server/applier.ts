/**
 * The state machine (etcd's apply.go and applyEntryNormal/applyConfChange): applies each
 * committed entry from its bytes alone, so every member, leader or follower, first boot or
 * replay, computes the same state from the same log. The result of applying an entry goes
 * to the proposal waiting under the entry's request id, if this member proposed it.
 *
 * Entries at or below the backend's consistent index are already in the backend (a restart
 * replays the WAL from the last snapshot): only what lives outside the backend is replayed
 * (membership from conf changes, v2 member attributes and cluster version, all idempotent).
 */
import {
  AlarmRequest_AlarmAction as AlarmAction, AlarmResponse, AlarmType, CompactionResponse,
  ConfChangeType, EntryType,
  LeaseGrantResponse, LeaseRevokeResponse, LeaseCheckpointResponse,
  type AlarmRequest, type ConfChangeV2, type ConfState, type Entry, type ResponseHeader, type Snapshot, type RequestOp, type TxnRequest,
  type LeaseGrantRequest, type LeaseRevokeRequest, type LeaseCheckpointRequest,
} from '../proto/index.js';
import { etcdError, EtcdError } from '../errors/index.js';
import { countView } from '../metrics/index.js';
import type { MvccStore } from '../mvcc/index.js';
import type { Lessor } from '../lease/index.js';
import type { Logger } from '../log/index.js';
import type { ApplierPort } from './ports.js';
import { AlarmSet, alarmName } from './alarms.js';
import { Membership, idToHex, parseMemberAttributesPath, attributesFromJson } from './membership.js';
import {
  applyMemberChange, memberChangesOf, refusedConfChange, validateMemberChanges,
  type AppliedMemberChange, type MemberChange,
} from './membership-change.js';
import { decodeEntryRequest, type RaftRequest } from './request-codec.js';
import type { WaitRegistry } from './wait.js';
import { applyTxn } from './txn.js';
import type { AuthStore, AuthInfo } from '../auth/index.js';
import { checkPut, checkDeleteRange, checkTxn, checkLeasePuts, type LeaseKeys } from './auth-checks.js';
import { installSnapshot } from './snapshot-install.js';

/** The v2 store key etcd keeps the cluster version under. */
export const clusterVersionPath = '/0/version';

/** What applying a compaction returns: the response now, the physical removal later. */
export interface CompactionResult {
  resp: CompactionResponse;
  done: Promise<void>;
}

export interface ApplierDeps {
  memberId: bigint;
  membership: Membership;
  store: MvccStore;
  alarms: AlarmSet;
  waits: WaitRegistry;
  log: Logger;
  /** The response header as of now (revision, raft term). */
  header(): ResponseHeader;
  persistAlarms(alarms: AlarmSet): void;
  persistMembership(m: Membership): void;
  persistClusterVersion(v: string): void;
  clusterVersion: string | undefined;
  lessor: Lessor;
  /** The lessor's monotonic clock (ms): a lease granted on the primary expires a TTL after it. */
  clock(): number;
  /**
   * An empty entry (a new leader's first) was applied: the leader promotes its lessor here,
   * once every entry of earlier terms is applied (etcd's applyEntryNormal).
   */
  onEmptyEntry?(): void;
  /** The auth store: applies auth_* entries and checks writes against the header's user. */
  auth: AuthStore;
  /** Runs `work` (which swaps the backend file) while client reads wait for it. */
  holdingReads<T>(work: () => Promise<T>): Promise<T>;
  /** A conf change removed this member (etcd then stops it: "the member has been permanently removed"). */
  onRemovedSelf?(): void;
}

export class Applier implements ApplierPort {
  /** The cluster version, once decided ("3.4.0" style), as etcd keeps it in /0/version. */
  clusterVersion: string | undefined;
  private readonly d: ApplierDeps;

  constructor(deps: ApplierDeps) {
    this.d = deps;
    this.clusterVersion = deps.clusterVersion;
  }

  apply(e: Entry): void {
    const shouldApply = e.index > this.d.store.consistentIndex();
    switch (e.type) {
      case EntryType.EntryNormal:
        this.applyNormal(e, shouldApply);
        return;
      default:
        throw new Error(`etcdserver: cannot apply entry ${e.index}: entry type ${e.type} is not supported yet; stopping the member`);
    }
  }

  /** A leader's snapshot replaces the state machine (server/snapshot-install.ts). */
  restore(snapshot: Snapshot): Promise<void> {
    return this.d.holdingReads(() => installSnapshot(this.d, snapshot));
  }

  private applyNormal(e: Entry, shouldApply: boolean): void {
    const data = e.data;
    if (!data || data.length === 0) {
      // A new leader's empty entry: nothing to do but remember its index.
      if (shouldApply) this.d.store.setConsistentIndex(e.index, e.term);
      this.d.onEmptyEntry?.();
      return;
    }
    const { id, request, auth } = decodeEntryRequest(data);
    if (request.kind === 'unsupported') {
      // Skipping it would silently make this member's state differ from one that applies it.
      throw new Error(`etcdserver: cannot apply entry ${e.index}: ${request.name} requests are not supported yet; stopping the member`);
    }
    const waiter = id !== 0n ? this.d.waits.take(id) : undefined;
    if (!shouldApply) {
      if (request.kind === 'v2') this.applyRequest(request);
      waiter?.reject(etcdError('Stopped'));
      return;
    }
    this.d.store.setConsistentIndex(e.index, e.term);
    let result: unknown;
    try {
      result = this.applyRequest(request, auth, e.index);
    } catch (err) {
      if (!(err instanceof EtcdError)) throw err; // invariant broken: crash loudly
      waiter?.reject(err);
      return;
    }
    // Outside the try: a waiter may answer its client right here (a gRPC call writes its
    // response), and is triggered once, whatever that does.
    waiter?.resolve(result);
  }

  private applyRequest(r: Exclude<RaftRequest, { kind: 'unsupported' }>, ai?: AuthInfo, index = 0): unknown {
    const { store, alarms, auth } = this.d;
    switch (r.kind) {
      case 'put':
        if (auth.enabled) checkPut(auth, ai, r.req, this.leaseKeys);
        if (alarms.has(AlarmType.CORRUPT)) throw etcdError('Corrupt');
        if (alarms.has(AlarmType.NOSPACE)) throw etcdError('NoSpace');
        countView(r.req.prevKv || r.req.ignoreValue || r.req.ignoreLease ? 1 : 0, 1, 0);
        return this.withHeader(store.put(r.req));
      case 'deleteRange':
        if (auth.enabled) checkDeleteRange(auth, ai, r.req);
        if (alarms.has(AlarmType.CORRUPT)) throw etcdError('Corrupt');
        countView(r.req.prevKv ? 1 : 0, 0, 1);
        return this.withHeader(store.deleteRange(r.req));
      case 'txn':
        if (auth.enabled) checkTxn(auth, ai, r.req);
        if (alarms.has(AlarmType.CORRUPT)) throw etcdError('Corrupt');
        if (alarms.has(AlarmType.NOSPACE) && txnHasPut(r.req)) throw etcdError('NoSpace');
        return this.withHeader(applyTxn(store, r.req));
      case 'range':
        countView(1, 0, 0);
        return this.withHeader(store.range(r.req));
      case 'compaction': {
        countView(1, 0, 0); // etcd reads the current revision through a read view
        // Physical removal runs in the background; a physical request waits for it.
        const done = store.compact(r.req.revision);
        return { resp: CompactionResponse.fromPartial({ header: this.d.header() }), done } satisfies CompactionResult;
      }
      case 'alarm':
        return this.applyAlarm(r.req);
      case 'auth':
        return this.withHeader(auth.apply(r.req, ai ?? noUser, index) as { header?: ResponseHeader });
      case 'v2':
        this.applyV2(r.req.Method ?? '', r.req.Path ?? '', r.req.Val ?? '');
        return undefined;
      case 'leaseGrant':
        if (alarms.has(AlarmType.CORRUPT)) throw etcdError('Corrupt');
        if (alarms.has(AlarmType.NOSPACE)) throw etcdError('NoSpace');
        return this.applyLeaseGrant(r.req);
      case 'leaseRevoke':
        if (auth.enabled) checkLeasePuts(auth, ai, this.leaseKeys(r.req.ID));
        if (alarms.has(AlarmType.CORRUPT)) throw etcdError('Corrupt');
        return this.applyLeaseRevoke(r.req);
      case 'leaseCheckpoint':
        return this.applyLeaseCheckpoint(r.req);
    }
  }

  private readonly leaseKeys: LeaseKeys = (id) => this.d.lessor.lookup(id)?.keys;

  private applyLeaseGrant(req: LeaseGrantRequest): LeaseGrantResponse {
    const l = this.d.lessor.grant(req.ID, req.TTL, this.d.clock());
    return { header: this.d.header(), ID: l.id, TTL: l.ttl, error: '' };
  }

  /** Deletes every attached key in one write (one revision, so watchers see one batch of deletes), then the lease. */
  private applyLeaseRevoke(req: LeaseRevokeRequest): LeaseRevokeResponse {
    const store = this.d.store;
    this.d.lessor.revoke(req.ID, (keys) => {
      store.write((tx) => {
        for (const key of keys) tx.deleteRange({ key, rangeEnd: emptyKey, prevKv: false });
      });
    });
    return { header: this.d.header() };
  }

  private applyLeaseCheckpoint(req: LeaseCheckpointRequest): LeaseCheckpointResponse {
    const now = this.d.clock();
    for (const c of req.checkpoints) this.d.lessor.checkpoint(c.ID, c.remainingTTL, now);
    return { header: this.d.header() };
  }

  private withHeader<T extends { header?: ResponseHeader | undefined }>(resp: T): T {
    resp.header = this.d.header();
    return resp;
  }

  private applyAlarm(req: AlarmRequest): AlarmResponse {
    const { alarms, log } = this.d;
    const resp = AlarmResponse.fromPartial({});
    switch (req.action) {
      case AlarmAction.GET:
        resp.alarms = alarms.get(req.alarm);
        break;
      case AlarmAction.ACTIVATE:
        if (req.alarm === AlarmType.NONE) break;
        if (alarms.add(req.memberID, req.alarm)) {
          log.warn('alarm raised', { alarm: alarmName(req.alarm), from: idToHex(req.memberID) });
          this.d.persistAlarms(alarms);
        }
        resp.alarms = [{ memberID: req.memberID, alarm: req.alarm }];
        break;
      case AlarmAction.DEACTIVATE:
        if (alarms.remove(req.memberID, req.alarm)) {
          log.warn('alarm disarmed', { alarm: alarmName(req.alarm), from: idToHex(req.memberID) });
          this.d.persistAlarms(alarms);
          resp.alarms = [{ memberID: req.memberID, alarm: req.alarm }];
        }
        break;
    }
    return resp; // etcd's AlarmResponse carries no header

  }

  /** The v2 requests etcd 3.4 still sends through raft: member attributes and cluster version. */
  private applyV2(method: string, path: string, val: string): void {
    if (method !== 'PUT') return;
    if (path === clusterVersionPath) {
      this.setClusterVersion(val);
      return;
    }
    const id = parseMemberAttributesPath(path);
    if (id !== undefined) {
      this.d.membership.setAttributes(id, attributesFromJson(val));
      this.d.persistMembership(this.d.membership);
    }
  }

  private setClusterVersion(val: string): void {
    const first = this.clusterVersion === undefined;
    if (val === this.clusterVersion) return;
    this.clusterVersion = val;
    this.d.persistClusterVersion(val);
    const short = val.split('.').slice(0, 2).join('.');
    const { log, membership, memberId } = this.d;
    if (first) log.info('set initial cluster version', { 'cluster-id': idToHex(membership.clusterId), 'local-member-id': idToHex(memberId), 'cluster-version': short });
    log.info('enabled capabilities for version', { 'cluster-version': short });
    log.info('cluster version is updated', { 'cluster-version': short });
  }

  /**
   * etcd's applyConfChange: validate against the membership as of this entry; a refused
   * change reaches raft as one it ignores and its proposer gets etcd's error. Replayed
   * entries (at or below the consistent index) take the same decisions: the membership
   * starts from the snapshot and is replayed with them.
   */
  applyConfChange(e: Entry, cc: ConfChangeV2, toRaft: (cc: ConfChangeV2) => ConfState): void {
    const { membership } = this.d;
    if (e.index > this.d.store.consistentIndex()) this.d.store.setConsistentIndex(e.index, e.term);
    const { requestId, changes } = memberChangesOf(e);
    const refusal = validateMemberChanges(membership, changes);
    const waiter = requestId !== 0n ? this.d.waits.take(requestId) : undefined;
    if (refusal) {
      toRaft(refusedConfChange);
      this.d.log.warn('rejected a membership change', { index: e.index, error: refusal.message });
      waiter?.reject(refusal);
      return;
    }
    toRaft(cc);
    for (const c of changes) this.logMemberChange(c, applyMemberChange(membership, c));
    if (changes.length > 0) this.d.persistMembership(membership);
    // etcd answers the proposer with the members as of this entry.
    waiter?.resolve(membership.toProto());
    if (changes.some((c) => c.type === ConfChangeType.ConfChangeRemoveNode && c.nodeId === this.d.memberId)) this.d.onRemovedSelf?.();
  }

  private logMemberChange(c: MemberChange, what: AppliedMemberChange): void {
    if (what === 'none') return;
    const { membership, memberId, log } = this.d;
    const ids = { 'cluster-id': idToHex(membership.clusterId), 'local-member-id': idToHex(memberId) };
    const urls = c.member?.peerURLs ?? [];
    if (what === 'added') log.info('added member', { ...ids, 'added-peer-id': idToHex(c.nodeId), 'added-peer-peer-urls': urls });
    else if (what === 'promoted') log.info('promote member', { ...ids, 'promoted-member-id': idToHex(c.nodeId) });
    else if (what === 'removed') log.info('removed member', { ...ids, 'removed-remote-peer-id': idToHex(c.nodeId) });
    else log.info('updated member', { ...ids, 'updated-remote-peer-id': idToHex(c.nodeId), 'updated-remote-peer-urls': urls });
  }
}

const emptyKey = Buffer.alloc(0);
/** The sender of an entry whose header names nobody. */
const noUser: AuthInfo = { username: '', revision: 0 };

function txnHasPut(req: TxnRequest): boolean {
  const has = (ops: RequestOp[]): boolean => ops.some((op) => op.requestPut !== undefined || (op.requestTxn !== undefined && txnHasPut(op.requestTxn)));
  return has(req.success) || has(req.failure);
}
