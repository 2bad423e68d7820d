/**
 * The Raft state machine: roles, elections (with pre-vote and check-quorum), replication with
 * per-follower flow control, commitment, snapshots, membership changes, batched ReadIndex and
 * leader transfer. Deterministic: time is tick(), randomness is the injected `random`, output is
 * `msgs` and `readStates`, collected by RawNode into a Ready.
 *
 * Durability rule: the leader counts its own log toward commit only up to what has been
 * persisted, i.e. what advance() has reported through onPersisted().
 */
import {
  type ConfChange,
  type ConfChangeV2,
  type ConfState,
  type Entry,
  type Message,
  type NodeId,
  type Snapshot,
  ConfChangeTransition,
  EntryType,
  MessageType,
  encodeConfChangeV2,
  newMessage,
  readConfChange,
  readConfChangeV2,
  sizeEntry,
  Reader,
} from '../proto/index.js';
import { type ChangeResult, Changer, ConfChangeError } from './confchange/changer.js';
import { restoreConfState } from './confchange/restore.js';
import { type ProposalDropReason, isRaftError } from './errors.js';
import { RaftLog } from './log.js';
import { ProgressState } from './progress.js';
import { type ReadRound, type ReadState, ReadIndexBatcher } from './readindex.js';
import type { Storage } from './storage.js';
import { ProgressTracker } from './tracker.js';

export const None: NodeId = 0n;

/** Numeric values as etcd's StateType. */
export enum StateType {
  Follower = 0,
  Candidate = 1,
  Leader = 2,
  PreCandidate = 3,
}

export const stateName = (s: StateType): string =>
  ['StateFollower', 'StateCandidate', 'StateLeader', 'StatePreCandidate'][s];

export interface RaftConfig {
  id: NodeId;
  /** Ticks without hearing from a leader before campaigning (randomized in [e, 2e)). */
  electionTick: number;
  /** Ticks between leader heartbeats. Must be below electionTick. */
  heartbeatTick: number;
  storage: Storage;
  /** Last applied index at restart; committed entries up to it are not delivered again. */
  applied?: number;
  /** Bound on the bytes of entries in one MsgApp (at least one entry is always sent). */
  maxSizePerMsg: number;
  /** Bound on MsgApps in flight to one follower in replicate state. */
  maxInflightMsgs: number;
  checkQuorum: boolean;
  preVote: boolean;
  /** Uniform in [0, 1); the only randomness raft uses. */
  random: () => number;
  /** Bound on bytes of proposed but uncommitted entries at the leader; 0 = unbounded. */
  maxUncommittedEntriesSize?: number;
  /** Bound on bytes of committed entries handed out in one Ready (default 64 MiB). */
  maxCommittedSizePerReady?: number;
  /** Bound on ReadIndex requests waiting at the leader (default 65536). */
  maxPendingReadIndex?: number;
}

const CAMPAIGN_TRANSFER = new TextEncoder().encode('CampaignTransfer');

function isTransferCtx(ctx: Uint8Array | undefined): boolean {
  if (!ctx || ctx.length !== CAMPAIGN_TRANSFER.length) return false;
  for (let i = 0; i < ctx.length; i++) if (ctx[i] !== CAMPAIGN_TRANSFER[i]) return false;
  return true;
}

function voteRespType(t: MessageType): MessageType {
  return t === MessageType.MsgPreVote ? MessageType.MsgPreVoteResp : MessageType.MsgVoteResp;
}

export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId = None;
  lead: NodeId = None;
  state = StateType.Follower;
  isLearner = false;
  readonly log: RaftLog;
  readonly trk: ProgressTracker;
  /** Outgoing messages, collected by the next Ready. */
  msgs: Message[] = [];
  readStates: ReadState[] = [];
  leadTransferee: NodeId = None;
  /** Log index of the latest conf change proposed; another may be proposed once it is applied. */
  pendingConfIndex = 0;
  private uncommittedSize = 0;
  /** Why the last dropped proposal was dropped (read right after propose() returns false). */
  lastDropReason: ProposalDropReason = 'no-leader';
  /** Set when new entries or a new commit index should be broadcast at the next Ready. */
  private bcastPending = false;
  readonly reads: ReadIndexBatcher;

  electionElapsed = 0;
  heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  readonly electionTimeout: number;
  readonly heartbeatTimeout: number;
  readonly checkQuorum: boolean;
  readonly preVote: boolean;
  private readonly maxMsgSize: number;
  private readonly maxUncommittedSize: number;
  /** A follower's last forwarded MsgProp, while later proposals may still join it, and its data bytes. */
  private forwardedProp: Message | undefined;
  private forwardedPropBytes = 0;
  private readonly random: () => number;

  constructor(c: RaftConfig) {
    if (c.id === None) throw new Error('raft: cannot use none as id');
    if (c.heartbeatTick <= 0) throw new Error('raft: heartbeat tick must be greater than 0');
    if (c.electionTick <= c.heartbeatTick) throw new Error('raft: election tick must be greater than heartbeat tick');
    if (c.maxInflightMsgs <= 0) throw new Error('raft: max inflight messages must be greater than 0');
    this.id = c.id;
    this.electionTimeout = c.electionTick;
    this.heartbeatTimeout = c.heartbeatTick;
    this.checkQuorum = c.checkQuorum;
    this.preVote = c.preVote;
    this.maxMsgSize = c.maxSizePerMsg;
    this.maxUncommittedSize = c.maxUncommittedEntriesSize ?? 0;
    this.random = c.random;
    this.log = new RaftLog(c.storage, c.maxCommittedSizePerReady ?? 64 * 1024 * 1024);
    this.trk = new ProgressTracker(c.maxInflightMsgs);
    this.reads = new ReadIndexBatcher(c.maxPendingReadIndex ?? 65536);

    const { hardState, confState } = c.storage.initialState();
    this.applyConfState(confState);
    if (hardState.term !== 0 || hardState.vote !== None || hardState.commit !== 0) {
      if (hardState.commit < this.log.committed || hardState.commit > this.log.lastIndex()) {
        throw new Error(`raft: state.commit ${hardState.commit} is out of range [${this.log.committed}, ${this.log.lastIndex()}]`);
      }
      this.log.committed = hardState.commit;
      this.term = hardState.term;
      this.vote = hardState.vote;
    }
    if (c.applied) this.log.appliedTo(c.applied);
    this.becomeFollower(this.term, None);
  }

  // ------------------------------------------------------------------------------------------
  // Role transitions

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = None;
    }
    this.lead = None;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.electionTimeout + Math.floor(this.random() * this.electionTimeout);
    this.leadTransferee = None;
    this.trk.resetVotes();
    const last = this.log.lastIndex();
    for (const [id, pr] of this.trk.progress) {
      pr.becomeProbe();
      pr.match = id === this.id ? this.log.persistedIndex() : 0;
      pr.next = last + 1;
      pr.recentActive = false;
    }
    this.pendingConfIndex = 0;
    this.uncommittedSize = 0;
    this.bcastPending = false;
    this.reads.reset();
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.lead = lead;
    this.state = StateType.Follower;
  }

  private becomeCandidate(): void {
    if (this.state === StateType.Leader) throw new Error('raft: invalid transition [leader -> candidate]');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.state = StateType.Candidate;
  }

  private becomePreCandidate(): void {
    if (this.state === StateType.Leader) throw new Error('raft: invalid transition [leader -> pre-candidate]');
    // Pre-vote changes neither term nor vote: a node that cannot win disturbs nobody.
    this.trk.resetVotes();
    this.lead = None;
    this.state = StateType.PreCandidate;
  }

  private becomeLeader(): void {
    if (this.state === StateType.Follower) throw new Error('raft: invalid transition [follower -> leader]');
    this.reset(this.term);
    this.lead = this.id;
    this.state = StateType.Leader;
    const self = this.trk.progress.get(this.id)!;
    self.becomeReplicate();
    self.recentActive = true;
    // Conservatively forbid conf changes until everything in our log now is applied.
    this.pendingConfIndex = this.log.lastIndex();
    // The empty entry of the new term: committing it commits everything before it.
    this.appendEntries([{ term: 0, index: 0, type: EntryType.EntryNormal, data: undefined }]);
    this.bcastAppend();
  }

  promotable(): boolean {
    const pr = this.trk.progress.get(this.id);
    return pr !== undefined && !pr.isLearner;
  }

  // ------------------------------------------------------------------------------------------
  // Time

  tick(): void {
    if (this.state === StateType.Leader) this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup(false);
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum) {
        this.checkQuorumActive();
        if (this.state !== StateType.Leader) return;
      }
      // A transfer that did not finish within an election timeout is abandoned.
      if (this.leadTransferee !== None) this.leadTransferee = None;
    }
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat();
    }
  }

  private checkQuorumActive(): void {
    if (!this.trk.quorumActive(this.id)) {
      this.becomeFollower(this.term, None);
      return;
    }
    for (const [id, pr] of this.trk.progress) if (id !== this.id) pr.recentActive = false;
  }

  // ------------------------------------------------------------------------------------------
  // Elections

  /** Starts an election unless we are leader, cannot vote, or a conf change awaits applying. */
  hup(transfer: boolean): void {
    if (this.state === StateType.Leader) return;
    if (!this.promotable()) return;
    if (this.hasUnappliedConfChanges()) return;
    if (this.preVote && !transfer) this.campaign(true, false);
    else this.campaign(false, transfer);
  }

  private hasUnappliedConfChanges(): boolean {
    const lo = this.log.applied + 1;
    const hi = this.log.committed + 1;
    if (lo >= hi) return false;
    let ents: Entry[];
    try {
      ents = this.log.slice(Math.max(lo, this.log.firstIndex()), hi, Number.MAX_SAFE_INTEGER);
    } catch {
      return true;
    }
    for (const e of ents) if (e.type !== EntryType.EntryNormal) return true;
    return false;
  }

  private campaign(pre: boolean, transfer: boolean): void {
    let voteMsg: MessageType;
    let term: number;
    if (pre) {
      this.becomePreCandidate();
      voteMsg = MessageType.MsgPreVote;
      term = this.term + 1; // the term we would campaign in
    } else {
      this.becomeCandidate();
      voteMsg = MessageType.MsgVote;
      term = this.term;
    }
    if (this.poll(this.id, true) === 'won') {
      // A single voter wins at once.
      if (pre) this.campaign(false, transfer);
      else this.becomeLeader();
      return;
    }
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    for (const id of this.trk.voterIds()) {
      if (id === this.id) continue;
      const m = newMessage({ type: voteMsg, to: id, term, index: lastIndex, logTerm: lastTerm });
      if (transfer) m.context = CAMPAIGN_TRANSFER;
      this.send(m);
    }
  }

  private poll(id: NodeId, granted: boolean): 'pending' | 'won' | 'lost' {
    this.trk.recordVote(id, granted);
    return this.trk.tally().result;
  }

  // ------------------------------------------------------------------------------------------
  // Sending

  private send(m: Message): void {
    m.from = this.id;
    const t = m.type;
    if (t === MessageType.MsgVote || t === MessageType.MsgVoteResp || t === MessageType.MsgPreVote || t === MessageType.MsgPreVoteResp) {
      if (m.term === 0) throw new Error(`raft: term should be set when sending ${MessageType[t]}`);
    } else if (t !== MessageType.MsgProp && t !== MessageType.MsgReadIndex) {
      // Forwarded proposals and reads keep term 0: the leader treats them as local.
      m.term = this.term;
    }
    this.msgs.push(m);
  }

  /** Sends entries (or a snapshot) to `to` if its progress allows; true if a message went out. */
  private sendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.trk.progress.get(to);
    if (!pr || pr.isPaused()) return false;
    const log = this.log;
    if (pr.next < log.firstIndex()) return this.sendSnapshot(to);
    const prevIndex = pr.next - 1;
    const prevTerm = log.term(prevIndex);
    const ents = log.entriesFrom(pr.next, this.maxMsgSize);
    if (ents.length === 0 && !sendIfEmpty) return false;
    const m = newMessage({
      type: MessageType.MsgApp,
      to,
      index: prevIndex,
      logTerm: prevTerm,
      entries: ents,
      commit: log.committed,
    });
    if (ents.length > 0) {
      const last = ents[ents.length - 1].index;
      if (pr.state === ProgressState.Replicate) {
        pr.optimisticUpdate(last);
        pr.inflights.add(last);
      } else if (pr.state === ProgressState.Probe) {
        pr.probeSent = true;
      }
    }
    this.send(m);
    return true;
  }

  private sendSnapshot(to: NodeId): boolean {
    const pr = this.trk.progress.get(to)!;
    if (!pr.recentActive) return false;
    let snap: Snapshot;
    try {
      snap = this.log.snapshot();
    } catch (e) {
      if (isRaftError(e, 'SnapshotTemporarilyUnavailable')) return false;
      throw e;
    }
    if (snap.metadata.index === 0) throw new Error('raft: need non-empty snapshot');
    pr.becomeSnapshot(snap.metadata.index);
    this.send(newMessage({ type: MessageType.MsgSnap, to, snapshot: snap }));
    return true;
  }

  /** Sends everything the window allows to every follower. */
  private bcastAppend(): void {
    this.bcastPending = false;
    for (const id of this.trk.progress.keys()) {
      if (id === this.id) continue;
      if (this.sendAppend(id, true)) while (this.sendAppend(id, false));
    }
  }

  /**
   * Broadcasts deferred by propose() and commit advances. Proposals only mark the need, so a
   * burst of proposals between two Readys leaves as one MsgApp per follower.
   */
  flushBroadcast(): void {
    if (this.bcastPending && this.state === StateType.Leader) this.bcastAppend();
    this.bcastPending = false;
  }

  private sendHeartbeat(to: NodeId, ctx: Uint8Array | undefined): void {
    const pr = this.trk.progress.get(to)!;
    // Never tell a follower to commit past what it is known to have.
    const commit = Math.min(pr.match, this.log.committed);
    const m = newMessage({ type: MessageType.MsgHeartbeat, to, commit });
    m.context = ctx;
    this.send(m);
  }

  private bcastHeartbeat(): void {
    const round = this.reads.round();
    const ctx = round ? round.ctx : undefined;
    for (const id of this.trk.progress.keys()) if (id !== this.id) this.sendHeartbeat(id, ctx);
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send(newMessage({ type: MessageType.MsgTimeoutNow, to }));
  }

  // ------------------------------------------------------------------------------------------
  // Log

  /** Leader: assigns term and indexes and appends. False if the uncommitted bound is reached. */
  private appendEntries(ents: Entry[]): boolean {
    const li = this.log.lastIndex();
    let size = 0;
    for (let i = 0; i < ents.length; i++) {
      ents[i].term = this.term;
      ents[i].index = li + 1 + i;
      if (this.maxUncommittedSize > 0) size += ents[i].data?.length ?? 0;
    }
    if (this.maxUncommittedSize > 0) {
      // Always admit something when nothing is uncommitted, so large entries can progress.
      if (this.uncommittedSize > 0 && size > 0 && this.uncommittedSize + size > this.maxUncommittedSize) {
        this.lastDropReason = 'uncommitted-bound';
        return false;
      }
      this.uncommittedSize += size;
    }
    this.log.append(ents);
    // No self-progress update here: our own entries count only once persisted (onPersisted).
    return true;
  }

  /** The application applied these committed entries (leader: release the uncommitted bound). */
  reduceUncommittedSize(ents: Entry[]): void {
    if (this.maxUncommittedSize === 0 || this.uncommittedSize === 0) return;
    let s = 0;
    for (const e of ents) s += e.data?.length ?? 0;
    this.uncommittedSize = Math.max(0, this.uncommittedSize - s);
  }

  /** Advances the commit index to what a quorum has matched, if that entry is of our term. */
  private maybeCommit(): boolean {
    const mci = this.trk.committed();
    if (mci > this.log.committed && this.log.term(mci) === this.term) {
      this.log.commitTo(mci);
      this.maybeStartReadRound();
      return true;
    }
    return false;
  }

  /** advance() reports entries up to (index, term) persisted. */
  onPersisted(index: number, term: number): void {
    if (!this.log.stableTo(index, term)) return;
    if (this.state !== StateType.Leader) return;
    const self = this.trk.progress.get(this.id);
    if (self && self.maybeUpdate(index) && this.maybeCommit()) this.bcastPending = true;
  }

  private committedEntryInCurrentTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  // ------------------------------------------------------------------------------------------
  // Proposals

  /**
   * A local proposal. The leader appends at once (no Message object on the hot path); others
   * forward to the leader. False if dropped.
   */
  propose(ents: Entry[]): boolean {
    this.lastDropReason = 'no-leader';
    if (this.state === StateType.Leader) return this.leaderPropose(ents);
    return this.step(newMessage({ type: MessageType.MsgProp, from: this.id, entries: ents }));
  }

  private leaderPropose(ents: Entry[]): boolean {
    if (ents.length === 0) throw new Error('raft: stepped empty MsgProp');
    if (!this.trk.progress.has(this.id)) return false; // removed from the group
    if (this.leadTransferee !== None) return false; // a transfer is under way
    for (let i = 0; i < ents.length; i++) {
      const t = ents[i].type;
      if (t === EntryType.EntryConfChange || t === EntryType.EntryConfChangeV2) {
        // One membership change at a time, each valid against the configuration it will meet.
        if (this.refuseConfChange(ents[i]) !== undefined) {
          ents[i] = { term: 0, index: 0, type: EntryType.EntryNormal, data: undefined };
        } else {
          this.pendingConfIndex = this.log.lastIndex() + i + 1;
        }
      }
    }
    if (!this.appendEntries(ents)) return false;
    this.bcastPending = true;
    return true;
  }

  // ------------------------------------------------------------------------------------------
  // Step

  /** Handles one message; false if it was a proposal (or read) that had to be dropped. */
  step(m: Message): boolean {
    if (m.term === 0) {
      // local message
    } else if (m.term > this.term) {
      if (m.type === MessageType.MsgVote || m.type === MessageType.MsgPreVote) {
        const force = isTransferCtx(m.context);
        const inLease = this.checkQuorum && this.lead !== None && this.electionElapsed < this.electionTimeout;
        // We heard from a leader within the election timeout: ignore disruptive candidates.
        if (!force && inLease) return true;
      }
      if (m.type === MessageType.MsgPreVote) {
        // Never change term for a pre-vote.
      } else if (m.type === MessageType.MsgPreVoteResp && !m.reject) {
        // Our term moves up only when the pre-vote wins.
      } else if (m.type === MessageType.MsgApp || m.type === MessageType.MsgHeartbeat || m.type === MessageType.MsgSnap) {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, None);
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === MessageType.MsgHeartbeat || m.type === MessageType.MsgApp)) {
        // A stale leader (e.g. behind a partition) learns our term and steps down; without this
        // a node that pre-votes after rejoining could never win against it.
        this.send(newMessage({ type: MessageType.MsgAppResp, to: m.from }));
      } else if (m.type === MessageType.MsgPreVote) {
        this.send(newMessage({ type: MessageType.MsgPreVoteResp, to: m.from, term: this.term, reject: true }));
      }
      return true;
    }

    switch (m.type) {
      case MessageType.MsgHup:
        this.hup(false);
        return true;
      case MessageType.MsgVote:
      case MessageType.MsgPreVote: {
        const canVote =
          this.vote === m.from ||
          (this.vote === None && this.lead === None) ||
          (m.type === MessageType.MsgPreVote && m.term > this.term);
        // A learner, or a node that has not yet applied its own addition, votes when asked (as in
        // etcd-io/raft): the candidate believes it a voter, and refusing can deadlock the group
        // (e.g. a 1-voter group adds a voter, the leader restarts, and the newcomer will not vote
        // until the leader it cannot elect tells it it is a member). Learners still never
        // campaign, and only the candidate's configuration decides whose votes count.
        if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
          // Respond with the message's term: a pre-vote grant is for the future term.
          this.send(newMessage({ type: voteRespType(m.type), to: m.from, term: m.term }));
          if (m.type === MessageType.MsgVote) {
            this.electionElapsed = 0;
            this.vote = m.from;
          }
        } else {
          this.send(newMessage({ type: voteRespType(m.type), to: m.from, term: this.term, reject: true }));
        }
        return true;
      }
    }
    switch (this.state) {
      case StateType.Leader:
        return this.stepLeader(m);
      case StateType.Follower:
        return this.stepFollower(m);
      default:
        return this.stepCandidate(m);
    }
  }

  private stepLeader(m: Message): boolean {
    switch (m.type) {
      case MessageType.MsgBeat:
        this.bcastHeartbeat();
        return true;
      case MessageType.MsgCheckQuorum:
        this.checkQuorumActive();
        return true;
      case MessageType.MsgProp: {
        // Copy: the leader assigns term and index, and must not touch the sender's objects.
        const ents: Entry[] = new Array(m.entries.length);
        for (let i = 0; i < ents.length; i++) ents[i] = { term: 0, index: 0, type: m.entries[i].type, data: m.entries[i].data };
        return this.leaderPropose(ents);
      }
      case MessageType.MsgReadIndex: {
        const ctx = m.entries[0]?.data ?? new Uint8Array(0);
        const from = m.from === None ? this.id : m.from;
        if (!this.reads.enqueue({ ctx, from })) return false;
        this.maybeStartReadRound();
        return true;
      }
    }
    const pr = this.trk.progress.get(m.from);
    if (!pr) return true;
    switch (m.type) {
      case MessageType.MsgAppResp: {
        pr.recentActive = true;
        if (m.reject) {
          // Fast backtracking: skip every index the follower's hint rules out.
          let nextProbe = m.rejectHint;
          if (m.logTerm > 0) nextProbe = this.log.findConflictByTerm(m.rejectHint, m.logTerm);
          if (pr.maybeDecrTo(m.index, nextProbe)) {
            if (pr.state === ProgressState.Replicate) pr.becomeProbe();
            this.sendAppend(m.from, true);
          }
          return true;
        }
        const oldPaused = pr.isPaused();
        if (pr.maybeUpdate(m.index)) {
          if (pr.state === ProgressState.Probe) {
            pr.becomeReplicate();
          } else if (pr.state === ProgressState.Snapshot && pr.match + 1 >= this.log.firstIndex()) {
            // The follower caught up past the snapshot; resume normal replication.
            pr.becomeProbe();
            pr.becomeReplicate();
          } else if (pr.state === ProgressState.Replicate) {
            pr.inflights.freeLE(m.index);
          }
          if (this.maybeCommit()) {
            this.bcastAppend();
          } else if (oldPaused) {
            this.sendAppend(m.from, true);
          }
          while (this.sendAppend(m.from, false));
          if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) this.sendTimeoutNow(m.from);
        }
        return true;
      }
      case MessageType.MsgHeartbeatResp: {
        pr.recentActive = true;
        pr.probeSent = false;
        if (pr.state === ProgressState.Replicate && pr.inflights.full()) pr.inflights.freeFirstOne();
        if (pr.match < this.log.lastIndex()) this.sendAppend(m.from, true);
        const round = this.reads.ack(m.context, m.from);
        // Reads that queued during the round start the next one right away.
        if (round && this.maybeFinishReadRound(round)) this.maybeStartReadRound();
        return true;
      }
      case MessageType.MsgSnapStatus:
        if (pr.state !== ProgressState.Snapshot) return true;
        if (m.reject) pr.pendingSnapshot = 0;
        pr.becomeProbe();
        // Wait for a heartbeat response before probing: the follower may still be applying.
        pr.probeSent = true;
        return true;
      case MessageType.MsgUnreachable:
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        return true;
      case MessageType.MsgTransferLeader: {
        if (pr.isLearner) return true;
        const transferee = m.from;
        if (this.leadTransferee !== None) {
          if (this.leadTransferee === transferee) return true;
          this.leadTransferee = None;
        }
        if (transferee === this.id) return true;
        // The transfer must finish within one election timeout.
        this.electionElapsed = 0;
        this.leadTransferee = transferee;
        if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(transferee);
        else this.sendAppend(transferee, true);
        return true;
      }
    }
    return true;
  }

  private stepCandidate(m: Message): boolean {
    const myVoteResp = this.state === StateType.PreCandidate ? MessageType.MsgPreVoteResp : MessageType.MsgVoteResp;
    switch (m.type) {
      case MessageType.MsgProp:
        return false;
      case MessageType.MsgApp:
        this.becomeFollower(m.term, m.from);
        this.handleAppendEntries(m);
        return true;
      case MessageType.MsgHeartbeat:
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return true;
      case MessageType.MsgSnap:
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return true;
      case myVoteResp: {
        const res = this.poll(m.from, !m.reject);
        if (res === 'won') {
          if (this.state === StateType.PreCandidate) this.campaign(false, false);
          else this.becomeLeader();
        } else if (res === 'lost') {
          this.becomeFollower(this.term, None);
        }
        return true;
      }
      case MessageType.MsgReadIndex:
        return false;
    }
    return true;
  }

  private stepFollower(m: Message): boolean {
    switch (m.type) {
      case MessageType.MsgProp: {
        if (this.lead === None) return false;
        // Proposals forwarded back to back (nothing sent between them) leave as one MsgProp,
        // as a batch proposed at once would: the leader appends them in one step.
        // Bounded by maxSizePerMsg, as the leader's appends are, so a burst never makes one
        // huge message.
        const last = this.msgs[this.msgs.length - 1];
        const bytes = entriesDataBytes(m.entries);
        if (last !== undefined && last === this.forwardedProp && last.to === this.lead
          && this.forwardedPropBytes + bytes <= this.maxMsgSize) {
          for (const e of m.entries) last.entries.push(e);
          this.forwardedPropBytes += bytes;
          return true;
        }
        m.to = this.lead;
        this.send(m);
        this.forwardedProp = m;
        this.forwardedPropBytes = bytes;
        return true;
      }
      case MessageType.MsgApp:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppendEntries(m);
        return true;
      case MessageType.MsgHeartbeat:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return true;
      case MessageType.MsgSnap:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return true;
      case MessageType.MsgTransferLeader:
        if (this.lead === None) return true;
        m.to = this.lead;
        this.send(m);
        return true;
      case MessageType.MsgTimeoutNow:
        // Leadership transfer: campaign at once, past any lease (the leader asked for it).
        if (this.promotable()) this.hup(true);
        return true;
      case MessageType.MsgReadIndex:
        if (this.lead === None) return false;
        m.to = this.lead;
        this.send(m);
        return true;
      case MessageType.MsgReadIndexResp:
        if (m.entries.length !== 1) return true;
        this.readStates.push({ index: m.index, requestCtx: m.entries[0].data ?? new Uint8Array(0) });
        return true;
    }
    return true;
  }

  private handleAppendEntries(m: Message): void {
    if (m.index < this.log.committed) {
      this.send(newMessage({ type: MessageType.MsgAppResp, to: m.from, index: this.log.committed }));
      return;
    }
    const lastnewi = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastnewi >= 0) {
      this.send(newMessage({ type: MessageType.MsgAppResp, to: m.from, index: lastnewi }));
      return;
    }
    // Reject with a hint: the last index that could match, and its term, so the leader can skip
    // a whole term's worth of entries per round trip.
    let hintIndex = Math.min(m.index, this.log.lastIndex());
    hintIndex = this.log.findConflictByTerm(hintIndex, m.logTerm);
    const hintTerm = this.log.term(hintIndex);
    this.send(
      newMessage({ type: MessageType.MsgAppResp, to: m.from, index: m.index, reject: true, rejectHint: hintIndex, logTerm: hintTerm }),
    );
  }

  private handleHeartbeat(m: Message): void {
    this.log.commitTo(Math.min(m.commit, this.log.lastIndex()));
    const resp = newMessage({ type: MessageType.MsgHeartbeatResp, to: m.from });
    resp.context = m.context;
    this.send(resp);
  }

  private handleSnapshot(m: Message): void {
    const s = m.snapshot;
    if (s && this.restore(s)) {
      this.send(newMessage({ type: MessageType.MsgAppResp, to: m.from, index: this.log.lastIndex() }));
    } else {
      this.send(newMessage({ type: MessageType.MsgAppResp, to: m.from, index: this.log.committed }));
    }
  }

  /** Restores from a leader's snapshot; false if it was stale or already covered by our log. */
  private restore(s: Snapshot): boolean {
    const md = s.metadata;
    if (md.index <= this.log.committed) return false;
    if (this.state !== StateType.Follower) {
      this.becomeFollower(this.term + 1, None);
      return false;
    }
    const cs = md.confState;
    if (!cs.voters.includes(this.id) && !cs.learners.includes(this.id) && !cs.votersOutgoing.includes(this.id)) return false;
    if (this.log.matchTerm(md.index, md.term)) {
      // Our log already has it: just fast-forward the commit index.
      this.log.commitTo(md.index);
      return false;
    }
    this.log.restore(s);
    this.trk.progress.clear();
    this.applyConfState(cs);
    return true;
  }

  /** Installs a whole configuration (at startup, or from a snapshot). */
  private applyConfState(cs: ConfState): void {
    const { config, tracked, fresh } = restoreConfState(cs);
    this.trk.setConfig(config, tracked, fresh, this.newProgressNext());
    for (const pr of this.trk.progress.values()) pr.recentActive = false;
    this.isLearner = this.trk.config.learners.has(this.id);
  }

  // ------------------------------------------------------------------------------------------
  // ReadIndex

  private maybeStartReadRound(): void {
    if (this.state !== StateType.Leader || !this.committedEntryInCurrentTerm()) return;
    for (;;) {
      const round = this.reads.maybeStart(this.log.committed, this.id);
      if (!round) return;
      if (!this.maybeFinishReadRound(round)) {
        for (const id of this.trk.progress.keys()) if (id !== this.id) this.sendHeartbeat(id, round.ctx);
        return;
      }
    }
  }

  /** Answers the round's reads if a quorum of voters acknowledged it. */
  private maybeFinishReadRound(round: ReadRound): boolean {
    if (!this.trk.quorumOf(round.acks)) return false;
    this.reads.finish();
    for (const r of round.reads) {
      if (r.from === this.id) {
        this.readStates.push({ index: round.index, requestCtx: r.ctx });
      } else {
        this.send(
          newMessage({
            type: MessageType.MsgReadIndexResp,
            to: r.from,
            index: round.index,
            entries: [{ term: 0, index: 0, type: EntryType.EntryNormal, data: r.ctx }],
          }),
        );
      }
    }
    return true;
  }

  // ------------------------------------------------------------------------------------------
  // Membership

  /**
   * Applies a committed membership change; returns the new configuration. The leader validated
   * it against this same configuration when it was proposed, so a refusal here is a bug.
   */
  applyConfChange(cc: ConfChangeV2): ConfState {
    const changer = new Changer(this.trk.config, new Set(this.trk.progress.keys()));
    let result: ChangeResult;
    if (isLeaveJoint(cc)) result = changer.leaveJoint();
    else {
      const autoLeave = enterJointAutoLeave(cc);
      result = autoLeave === undefined ? changer.simple(cc.changes) : changer.enterJoint(autoLeave, cc.changes);
    }
    return this.switchToConfig(result);
  }

  /**
   * Where a new member's progress starts: at our last index (as etcd-io/raft), so the leader
   * probes it at once with the entry that added it instead of waiting for the next proposal.
   */
  private newProgressNext(): number {
    return Math.max(this.log.lastIndex(), 1);
  }

  private switchToConfig(result: ChangeResult): ConfState {
    this.trk.setConfig(result.config, result.tracked, result.fresh, this.newProgressNext());
    const self = this.trk.progress.get(this.id);
    this.isLearner = self !== undefined && self.isLearner;
    if (this.state !== StateType.Leader) return this.trk.confState();
    if (self === undefined || self.isLearner) {
      // Removed or demoted leader: hand over to a caught-up voter if there is one, step down.
      const last = this.log.lastIndex();
      for (const id of this.trk.voterIds()) {
        if (this.trk.progress.get(id)!.match === last) {
          this.sendTimeoutNow(id);
          break;
        }
      }
      this.becomeFollower(this.term, None);
      return this.trk.confState();
    }
    if (this.leadTransferee !== None && !this.trk.isVoter(this.leadTransferee)) this.leadTransferee = None;
    // The quorum may have changed: commit and answer reads that are now safe.
    if (this.maybeCommit()) this.bcastAppend();
    else for (const id of this.trk.progress.keys()) if (id !== this.id) this.sendAppend(id, false);
    const round = this.reads.round();
    if (round && this.maybeFinishReadRound(round)) this.maybeStartReadRound();
    return this.trk.confState();
  }

  /**
   * The leader checks a proposed conf change against the current configuration. A change that
   * cannot be applied now becomes an empty normal entry (etcd-io/raft's behaviour, so indexes
   * the proposer may wait on still commit); the reason is returned, undefined when accepted.
   */
  private refuseConfChange(e: Entry): string | undefined {
    if (this.pendingConfIndex > this.log.applied) {
      return `possible unapplied conf change at index ${this.pendingConfIndex} (applied to ${this.log.applied})`;
    }
    let cc: ConfChangeV2;
    try {
      cc = confChangeOfEntry(e);
    } catch (err) {
      // A peer's proposal that does not decode (proto/wire throws plain Errors) must not
      // reach the log as a conf change that every member would fail to apply.
      return `undecodable conf change: ${(err as Error).message}`;
    }
    return this.confChangeRefusal(cc);
  }

  /** Why `cc` cannot be applied to the current configuration; undefined if it can. */
  confChangeRefusal(cc: ConfChangeV2): string | undefined {
    const joint = this.trk.config.voters.isJoint();
    const leave = isLeaveJoint(cc);
    if (joint && !leave) return 'must transition out of joint config first';
    if (!joint && leave) return 'not in joint state; refusing empty conf change';
    try {
      const changer = new Changer(this.trk.config, new Set(this.trk.progress.keys()));
      if (leave) changer.leaveJoint();
      else {
        const autoLeave = enterJointAutoLeave(cc);
        if (autoLeave === undefined) changer.simple(cc.changes);
        else changer.enterJoint(autoLeave, cc.changes);
      }
    } catch (err) {
      if (err instanceof ConfChangeError) return err.message;
      throw err;
    }
    return undefined;
  }

  /**
   * After applying up to `applied`: a leader in a joint configuration with auto-leave proposes
   * the empty ConfChangeV2 that leaves it, once the entry that entered it is applied.
   */
  maybeAutoLeave(): void {
    const c = this.trk.config;
    if (!c.autoLeave || this.state !== StateType.Leader || this.log.applied < this.pendingConfIndex) return;
    const leave: Entry = { term: 0, index: 0, type: EntryType.EntryConfChangeV2, data: LEAVE_JOINT_BYTES };
    this.leaderPropose([leave]);
  }
}

const LEAVE_JOINT_BYTES = encodeConfChangeV2({ transition: ConfChangeTransition.ConfChangeTransitionAuto, changes: [] });

/** A conf-change entry's change as a ConfChangeV2 (a v1 ConfChange is one simple change). */
export function confChangeOfEntry(e: Entry): ConfChangeV2 {
  const r = new Reader(e.data ?? new Uint8Array(0));
  if (e.type === EntryType.EntryConfChangeV2) return readConfChangeV2(r);
  if (e.type !== EntryType.EntryConfChange) throw new Error(`raft: entry ${e.index} is not a conf change`);
  return asConfChangeV2(readConfChange(r));
}

/** A ConfChange as the equivalent ConfChangeV2 (one simple change). */
export function asConfChangeV2(cc: ConfChange | ConfChangeV2): ConfChangeV2 {
  if ('changes' in cc) return cc;
  return {
    transition: ConfChangeTransition.ConfChangeTransitionAuto,
    changes: [{ type: cc.type, nodeId: cc.nodeId }],
    context: cc.context,
  };
}

/** etcd's ConfChangeV2.LeaveJoint: the empty change (transition auto, no changes). */
export function isLeaveJoint(cc: ConfChangeV2): boolean {
  return cc.transition === ConfChangeTransition.ConfChangeTransitionAuto && cc.changes.length === 0;
}

/**
 * etcd's ConfChangeV2.EnterJoint: undefined for a simple change, otherwise whether the joint
 * configuration is left automatically. Auto transition with several changes enters joint.
 */
export function enterJointAutoLeave(cc: ConfChangeV2): boolean | undefined {
  if (cc.transition === ConfChangeTransition.ConfChangeTransitionAuto && cc.changes.length <= 1) return undefined;
  switch (cc.transition) {
    case ConfChangeTransition.ConfChangeTransitionAuto:
    case ConfChangeTransition.ConfChangeTransitionJointImplicit:
      return true;
    case ConfChangeTransition.ConfChangeTransitionJointExplicit:
      return false;
    default:
      throw new ConfChangeError(`unknown transition: ${cc.transition as number}`);
  }
}

/** Bytes of entry data (what a forwarded MsgProp's bound counts). */
function entriesDataBytes(ents: readonly Entry[]): number {
  let n = 0;
  for (const e of ents) n += e.data?.length ?? 0;
  return n;
}
