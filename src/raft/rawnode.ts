/**
 * RawNode: the application's handle on the raft state machine, in the shape of etcd-io/raft.
 *
 * The loop: `if (hasReady()) { rd = ready(); persist rd.snapshot, rd.hardState, rd.entries
 * (WAL + MemoryStorage); send rd.messages; apply rd.committedEntries; advance(rd); }`.
 * One Ready is outstanding at a time. Proposals, ticks and steps between ready() and advance()
 * accumulate and go out in the next Ready, which is what lets a server group-commit.
 */
import {
  type ConfChange,
  type ConfChangeV2,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  type Snapshot,
  ConfChangeTransition,
  ConfChangeType,
  EntryType,
  MessageType,
  encodeConfChange,
  encodeConfChangeV2,
  newMessage,
} from '../proto/index.js';
import { ConfChangeError } from './confchange/changer.js';
import { RaftError } from './errors.js';
import { ProgressState } from './progress.js';
import { None, Raft, type RaftConfig, StateType, asConfChangeV2 } from './raft.js';
import type { ReadState } from './readindex.js';

export interface SoftState {
  lead: NodeId;
  raftState: StateType;
}

export interface Ready {
  /** Present when leader or role changed. Not persisted. */
  softState?: SoftState;
  /** Present when term, vote or commit changed; persist before sending messages. */
  hardState?: HardState;
  readStates: ReadState[];
  /** Persist (append, truncating any conflicting suffix) before sending messages. */
  entries: Entry[];
  /** A snapshot from the leader to persist and restore the state machine from. */
  snapshot?: Snapshot;
  /** Apply in order after persisting. */
  committedEntries: Entry[];
  /** Send after persisting what precedes. */
  messages: Message[];
  /** Whether hardState/entries must be fsynced (commit-only changes need not be). */
  mustSync: boolean;
}

export enum SnapshotStatus {
  Finish = 1,
  Failure = 2,
}

export interface ProgressStatus {
  match: number;
  next: number;
  state: ProgressState;
  isLearner: boolean;
  paused: boolean;
  recentActive: boolean;
  inflight: number;
}

export interface Status {
  id: NodeId;
  hardState: HardState;
  softState: SoftState;
  applied: number;
  leadTransferee: NodeId;
  config: ConfState;
  /** Followers' progress, on the leader only. */
  progress?: Map<NodeId, ProgressStatus>;
}

export interface Peer {
  id: NodeId;
  context?: Uint8Array;
}

/** Response messages are dropped when their sender is unknown (e.g. removed). */
function isResponseMsg(t: MessageType): boolean {
  return (
    t === MessageType.MsgAppResp ||
    t === MessageType.MsgVoteResp ||
    t === MessageType.MsgHeartbeatResp ||
    t === MessageType.MsgUnreachable ||
    t === MessageType.MsgPreVoteResp
  );
}

function isLocalMsg(t: MessageType): boolean {
  return (
    t === MessageType.MsgHup ||
    t === MessageType.MsgBeat ||
    t === MessageType.MsgUnreachable ||
    t === MessageType.MsgSnapStatus ||
    t === MessageType.MsgCheckQuorum
  );
}

export class RawNode {
  readonly raft: Raft;
  private prevSoft: SoftState;
  private prevHard: HardState;
  private outstanding: Ready | null = null;

  constructor(config: RaftConfig) {
    this.raft = new Raft(config);
    const r = this.raft;
    this.prevSoft = { lead: r.lead, raftState: r.state };
    this.prevHard = { term: r.term, vote: r.vote, commit: r.log.committed };
  }

  /**
   * Starts a brand-new group: the storage must be empty. Appends one committed ConfChange
   * (AddNode) per peer at term 1, as etcd does, and applies them; the first Ready carries them
   * to persist and to apply (applying them again is harmless).
   */
  bootstrap(peers: Peer[]): void {
    if (peers.length === 0) throw new Error('raft: must provide at least one peer to bootstrap');
    const r = this.raft;
    if (r.log.lastIndex() !== 0) throw new Error('raft: can\'t bootstrap a nonempty Storage');
    r.becomeFollower(1, None);
    const ents: Entry[] = peers.map((p, i) => ({
      term: 1,
      index: i + 1,
      type: EntryType.EntryConfChange,
      data: encodeConfChange({ type: ConfChangeType.ConfChangeAddNode, nodeId: p.id, context: p.context, id: 0n }),
    }));
    r.log.append(ents);
    r.log.committed = ents.length;
    for (const p of peers) this.applyConfChange({ type: ConfChangeType.ConfChangeAddNode, nodeId: p.id, id: 0n });
  }

  tick(): void {
    this.raft.tick();
  }

  /** Campaigns to become leader now (with pre-vote when enabled). */
  campaign(): void {
    this.raft.step(newMessage({ type: MessageType.MsgHup, from: this.raft.id }));
  }

  /**
   * Proposes data for the log. Throws ProposalDropped when there is no leader to take it, or
   * (error.dropReason 'uncommitted-bound') when the leader's uncommitted tail is at
   * maxUncommittedEntriesSize.
   */
  propose(data: Uint8Array): void {
    if (!this.raft.propose([{ term: 0, index: 0, type: EntryType.EntryNormal, data }])) {
      throw this.dropped();
    }
  }

  /** Proposes several entries at once (one log append, one broadcast). */
  proposeBatch(datas: Uint8Array[]): void {
    const ents: Entry[] = new Array(datas.length);
    for (let i = 0; i < datas.length; i++) ents[i] = { term: 0, index: 0, type: EntryType.EntryNormal, data: datas[i] };
    if (!this.raft.propose(ents)) throw this.dropped();
  }

  /**
   * Proposes a membership change: a ConfChange (one change) or a ConfChangeV2 (several changes
   * enter joint consensus; the empty one leaves it). Throws ConfChangeError when this node leads
   * and the change is invalid against its configuration. One change may be pending at a time: a
   * later one, while the previous is not yet applied, commits as an empty normal entry (as
   * etcd's raft does), so a caller waiting on it learns nothing changed from the ConfState.
   * Throws ProposalDropped when there is no leader to take it.
   */
  proposeConfChange(cc: ConfChange | ConfChangeV2): void {
    const ent: Entry =
      'changes' in cc
        ? { term: 0, index: 0, type: EntryType.EntryConfChangeV2, data: encodeConfChangeV2(cc) }
        : { term: 0, index: 0, type: EntryType.EntryConfChange, data: encodeConfChange(cc) };
    const r = this.raft;
    if (r.state === StateType.Leader) {
      const why = r.confChangeRefusal(asConfChangeV2(cc));
      if (why !== undefined && r.pendingConfIndex <= r.log.applied) throw new ConfChangeError(why);
    }
    if (!r.propose([ent])) throw this.dropped();
  }

  /**
   * Applies a committed membership change (call when applying its entry, in log order) and
   * returns the new configuration, as etcd's raftpb.ConfState.
   */
  applyConfChange(cc: ConfChange | ConfChangeV2): ConfState {
    return this.raft.applyConfChange(asConfChangeV2(cc));
  }

  private dropped(): RaftError {
    return new RaftError('ProposalDropped', this.raft.lastDropReason);
  }

  /** Steps a message from a peer. */
  step(m: Message): void {
    if (isLocalMsg(m.type)) throw new RaftError('StepLocalMsg');
    if (isResponseMsg(m.type) && !this.raft.trk.progress.has(m.from)) throw new RaftError('StepPeerNotFound');
    this.raft.step(m);
  }

  /**
   * Requests a read index. The answer comes as a ReadState with the same context in a later
   * Ready, once a quorum confirmed leadership; reads waiting together share one round.
   * Throws ProposalDropped when no leader is known.
   */
  readIndex(ctx: Uint8Array): void {
    const m = newMessage({ type: MessageType.MsgReadIndex, from: this.raft.id });
    m.entries.push({ term: 0, index: 0, type: EntryType.EntryNormal, data: ctx });
    if (!this.raft.step(m)) throw new RaftError('ProposalDropped');
  }

  /** Asks the leader to hand leadership to `transferee`. */
  transferLeader(transferee: NodeId): void {
    this.raft.step(newMessage({ type: MessageType.MsgTransferLeader, from: transferee }));
  }

  reportUnreachable(id: NodeId): void {
    this.raft.step(newMessage({ type: MessageType.MsgUnreachable, from: id }));
  }

  reportSnapshot(id: NodeId, status: SnapshotStatus): void {
    this.raft.step(newMessage({ type: MessageType.MsgSnapStatus, from: id, reject: status === SnapshotStatus.Failure }));
  }

  private hardStateChanged(): boolean {
    const r = this.raft;
    const p = this.prevHard;
    return r.term !== p.term || r.vote !== p.vote || r.log.committed !== p.commit;
  }

  hasReady(): boolean {
    const r = this.raft;
    r.flushBroadcast();
    return (
      r.lead !== this.prevSoft.lead ||
      r.state !== this.prevSoft.raftState ||
      this.hardStateChanged() ||
      r.log.unstable.snapshot !== undefined ||
      r.log.hasUnstableEntries() ||
      r.msgs.length > 0 ||
      r.readStates.length > 0 ||
      r.log.hasNextEnts()
    );
  }

  /** What to persist, send and apply now. Call advance(rd) when done. */
  ready(): Ready {
    if (this.outstanding) throw new RaftError('ReadyOutstanding');
    const r = this.raft;
    r.flushBroadcast();
    const rd: Ready = {
      softState: undefined,
      hardState: undefined,
      readStates: r.readStates,
      entries: r.log.unstableEntries(),
      snapshot: r.log.unstable.snapshot,
      committedEntries: r.log.nextEnts(),
      messages: r.msgs,
      mustSync: false,
    };
    if (r.lead !== this.prevSoft.lead || r.state !== this.prevSoft.raftState) {
      rd.softState = { lead: r.lead, raftState: r.state };
    }
    if (this.hardStateChanged()) {
      rd.hardState = { term: r.term, vote: r.vote, commit: r.log.committed };
    }
    rd.mustSync =
      rd.entries.length > 0 ||
      rd.snapshot !== undefined ||
      (rd.hardState !== undefined && (rd.hardState.term !== this.prevHard.term || rd.hardState.vote !== this.prevHard.vote));
    // Always hand the arrays over: an empty one left shared would collect messages raft sends
    // while this Ready is being persisted (e.g. a MsgAppResp for entries not yet on disk), and
    // they would go out with this Ready, ahead of the writes they depend on.
    r.readStates = [];
    r.msgs = [];
    this.outstanding = rd;
    return rd;
  }

  /**
   * Messages raised since ready() that may go out while that Ready's write is in flight,
   * taken out of the next Ready. A leader's, all of them: nothing a leader sends depends on
   * its own unfinished write (raft thesis 10.2.1; its own log counts towards a commit only
   * once persisted). Anyone else's, only the requests it forwards to the leader (MsgProp,
   * MsgReadIndex: they promise nothing); its acknowledgements and votes promise durability
   * and wait for the write, as ready() hands them. Pass leaderTermDurable false while a
   * leader's term is not yet on disk (a lone voter's fresh election): then nothing of it.
   */
  takeEarlyMessages(leaderTermDurable: boolean): Message[] {
    const r = this.raft;
    if (r.state === StateType.Leader) {
      if (!leaderTermDurable) return [];
      r.flushBroadcast();
      const msgs = r.msgs;
      r.msgs = [];
      return msgs;
    }
    if (!r.msgs.some(isForwardedRequest)) return [];
    const early = r.msgs.filter(isForwardedRequest);
    r.msgs = r.msgs.filter((m) => !isForwardedRequest(m));
    return early;
  }

  /**
   * Read states raised since ready(), taken out of the next Ready: a read waits for its
   * index to be applied anyway, and applying waits for the write, so they may go at once.
   */
  takeReadStates(): ReadState[] {
    const rs = this.raft.readStates;
    if (rs.length > 0) this.raft.readStates = [];
    return rs;
  }

  /** The Ready has been persisted, sent and applied. */
  advance(rd: Ready): void {
    if (rd !== this.outstanding) throw new Error('raft: advance() of a Ready that is not outstanding');
    this.outstanding = null;
    const r = this.raft;
    if (rd.softState) this.prevSoft = rd.softState;
    if (rd.hardState) this.prevHard = rd.hardState;
    if (rd.snapshot) {
      r.log.stableSnapTo(rd.snapshot.metadata.index);
      if (rd.snapshot.metadata.index > r.log.applied) r.log.appliedTo(rd.snapshot.metadata.index);
    }
    const ce = rd.committedEntries;
    if (ce.length > 0) {
      r.log.appliedTo(ce[ce.length - 1].index);
      if (r.state === StateType.Leader) r.reduceUncommittedSize(ce);
      r.maybeAutoLeave();
    }
    if (rd.entries.length > 0) {
      const last = rd.entries[rd.entries.length - 1];
      r.onPersisted(last.index, last.term);
    }
  }

  status(): Status {
    const r = this.raft;
    const st: Status = {
      id: r.id,
      hardState: { term: r.term, vote: r.vote, commit: r.log.committed },
      softState: { lead: r.lead, raftState: r.state },
      applied: r.log.applied,
      leadTransferee: r.leadTransferee,
      config: r.trk.confState(),
    };
    if (r.state === StateType.Leader) {
      st.progress = new Map();
      for (const [id, pr] of r.trk.progress) {
        st.progress.set(id, {
          match: pr.match,
          next: pr.next,
          state: pr.state,
          isLearner: pr.isLearner,
          paused: pr.isPaused(),
          recentActive: pr.recentActive,
          inflight: pr.inflights.length(),
        });
      }
    }
    return st;
  }
}

/** A request a member forwards to the leader: it carries no promise about its own log. */
function isForwardedRequest(m: Message): boolean {
  return m.type === MessageType.MsgProp || m.type === MessageType.MsgReadIndex;
}
