/**
 * The one owner of raft: holds the RawNode and runs the Ready loop. Nothing else touches the
 * RawNode; the rest of the server talks to it through this class's narrow interface
 * (propose, proposeConfChange, readIndex, transferLeader, campaign, step, reportSnapshot, the
 * role/term/commit/applied fields; `inspect()` gives checks read access to raft's state) and
 * hears back through the applier port (every committed entry, once, in order; a leader's
 * snapshot) and the events (leader changes, read states).
 *
 * The loop persists what raft asks (WalPort: one fdatasync per Ready however many proposals
 * it carries), sends messages (TransportPort) and applies committed entries (ApplierPort).
 * Group commit falls out of its shape: while one Ready's fdatasync is in flight the event
 * loop keeps accepting requests, whose proposals pile up in raft's unstable log and all ride
 * the next Ready's single fdatasync.
 *
 * A leader does not hold its messages for its own fdatasync: those of a Ready go out before
 * its write, and those raft raises while the write is in flight (commit advances from the
 * followers' acknowledgements, new appends, heartbeats) go out at once (sendEarlySoon), so
 * followers commit, apply and answer their clients while the leader's disk is slow. A
 * follower's forwarded proposals and ReadIndex requests go out at once too (and the read
 * states answering them are handed on at once); its acknowledgements and votes promise
 * durability and go only after its write.
 *
 * A follower writes on this thread when its WAL is idle (WalPort.saveNow: the fdatasync
 * blocks the loop), then acknowledges, then applies: its acknowledgement is on every
 * commit's path, and the thread pool's round trip would add two thread hand-offs to it. A
 * leader does the same for a Ready of at most one entry (light load: its appends already
 * left, nothing else waits); a bigger Ready goes to the pool, so the leader takes
 * proposals, sends and applies while its disk works (writesNow).
 *
 * Entries are applied once both committed and persisted here. Because a leader counts its
 * own log only once persisted (raft/ durability rule), committed entries of a Ready were
 * usually persisted by an earlier Ready and are applied *before* this Ready's fsync,
 * overlapping apply with disk I/O.
 */
import { strict as assert } from 'node:assert';
import {
  RawNode, MemoryStorage, StateType, RaftError, SnapshotStatus, ProgressState, stateName, confChangeOfEntry, type Raft, type Ready,
} from '../raft/index.js';
import {
  EntryType, MessageType,
  type ConfChange, type ConfChangeV2, type ConfState, type Entry, type Message, type NodeId, type Snapshot,
} from '../proto/index.js';
import type { Logger } from '../log/index.js';
import { loopTrace } from '../metrics/index.js';
import type { ApplierPort, SnapshotterPort, TransportPort, WalPort } from './ports.js';
import { AppliedIndexWaiter } from './read-index.js';

/** etcd's raft settings (etcdserver/raft.go): 1 MiB per append message, 512 in flight. */
const maxSizePerMsgBytes = 1024 * 1024;
const maxInflightMsgs = 4096 / 8;
/** A leader's Ready with at most this many entries is written on the loop's thread (writesNow). */
const leaderBlockingEntries = 1;
/**
 * Committed entries applied per event-loop turn. Applying an entry answers its proposer,
 * whose response (node:http2's respond and writes) runs in the same turn, so a Ready of 100
 * entries was one macrotask of 100 applies and responses (issue 14: no main-thread pause over
 * 10 ms); the rest wait a turn (setImmediate), after timers and I/O. The front end starts 32
 * requests per turn (api/grpc/turns.ts) for the same reason.
 */
const defaultApplyPerTurn = 32;

export interface RaftNodeEvents {
  /** Leader or role changed (leader 0n: none known). */
  leaderChanged?(leader: NodeId, isLeader: boolean, previousLeader: NodeId): void;
  /** A ReadIndex round finished: reads tagged `ctx` may proceed once `index` is applied. */
  readState?(ctx: Uint8Array, index: number): void;
  /**
   * Called between Readies, when no WAL write is in flight: the moment to take a snapshot.
   * Returns a promise only when it has work to wait for (the loop awaits nothing otherwise).
   */
  idle?(): Promise<void> | undefined;
}

export interface RaftNodeOptions {
  id: NodeId;
  /** Raft's log as restored from the newest snapshot and the WAL. */
  storage: MemoryStorage;
  /** Index of the snapshot the storage starts from (0: none). Applying resumes after it. */
  applied: number;
  electionTick: number;
  heartbeatTick: number;
  /** Injected randomness for raft's election timeouts (Math.random in production). */
  random: () => number;
  wal: WalPort;
  snapshotter: SnapshotterPort;
  transport: TransportPort;
  applier: ApplierPort;
  events: RaftNodeEvents;
  log: Logger;
  /** Raft's knobs, etcd's by default; simulations vary them to reach more interleavings. */
  tuning?: Partial<RaftTuning>;
}

export interface RaftTuning {
  maxSizePerMsg: number;
  maxInflightMsgs: number;
  checkQuorum: boolean;
  preVote: boolean;
}

/** etcd's settings (etcdserver/raft.go; etcd enables pre-vote and check-quorum). */
const etcdTuning: RaftTuning = { maxSizePerMsg: maxSizePerMsgBytes, maxInflightMsgs, checkQuorum: true, preVote: true };

export class RaftNode {
  private readonly raw: RawNode;
  private readonly storage: MemoryStorage;
  private readonly ports: Pick<RaftNodeOptions, 'wal' | 'snapshotter' | 'transport' | 'applier'>;
  private readonly events: RaftNodeEvents;
  private readonly log: Logger;
  readonly id: NodeId;
  readonly electionTick: number;

  // ---- the member's raft state, read from here only (updated from each Ready)
  /** Known leader (0n: none). */
  leader: NodeId = 0n;
  isLeader = false;
  term: number;
  commitIndex: number;
  /** Index of the last entry handed to the applier, and waits for it to reach an index. */
  private readonly applied = new AppliedIndexWaiter();
  /** Term of the last applied entry: a leader serves local reads once it equals `term`. */
  appliedTerm = 0;
  /** Last index durably in the WAL. */
  private persistedIndex: number;
  /** Term of the last hard state durably in the WAL: a leader sends early only in it. */
  private durableTerm: number;

  // ---- loop machinery
  private ticker: NodeJS.Timeout | undefined;
  private scheduled = false;
  private earlySendScheduled = false;
  private running = false;
  private stopped = false;
  private failed: Error | undefined;
  /** Resolves when the current loop run ends (used by stop()). */
  private runDone: Promise<void> = Promise.resolve();
  private readonly tasks: Array<() => Promise<void>> = [];
  private drainWaiters: Array<() => void> = [];
  /** Counters for metrics and tuning (cumulative). */
  readonly stats = { readies: 0, walSaves: 0, walSaveMs: 0, entriesSaved: 0 };

  constructor(o: RaftNodeOptions) {
    this.id = o.id;
    this.storage = o.storage;
    this.ports = o;
    this.events = o.events;
    this.log = o.log;
    this.electionTick = o.electionTick;
    this.raw = new RawNode({
      id: o.id,
      electionTick: o.electionTick,
      heartbeatTick: o.heartbeatTick,
      storage: o.storage,
      applied: o.applied,
      ...etcdTuning,
      ...o.tuning,
      random: o.random,
    });
    const hs = o.storage.initialState().hardState;
    this.term = hs.term;
    this.commitIndex = hs.commit;
    this.applied.advance(o.applied);
    // The snapshot's term (the storage's first, dummy entry carries it): a merged snapshot
    // sent before anything is applied after a restart names this point.
    this.appliedTerm = o.applied > 0 ? o.storage.term(o.applied) : 0;
    this.persistedIndex = o.storage.lastIndex();
    this.durableTerm = hs.term;
  }

  // ------------------------------------------------------------------ the narrow interface

  get appliedIndex(): number {
    return this.applied.index;
  }

  /**
   * Index of the newest raft snapshot this member holds: its own (snapshot()) or one
   * installed from the leader, whichever came last. The next snapshot must be past it.
   */
  get snapshotIndex(): number {
    return this.storage.snapshot().metadata.index;
  }

  /** Resolves once the entry at `index` has been applied (rejects after failApplyWaits). */
  waitApplied(index: number): Promise<void> {
    return this.applied.wait(index);
  }

  /** Fails every waitApplied (shutdown). */
  failApplyWaits(err: Error): void {
    this.applied.failAll(err);
  }

  /** Proposes entry data. Throws RaftError('ProposalDropped') when no leader can take it. */
  propose(data: Uint8Array): void {
    this.raw.propose(data);
    this.kick();
  }

  /** Starts a ReadIndex round tagged `ctx`. Throws RaftError('ProposalDropped') without a leader. */
  readIndex(ctx: Uint8Array): void {
    this.raw.readIndex(ctx);
    this.kick();
  }

  transferLeader(to: NodeId): void {
    this.raw.transferLeader(to);
    this.kick();
  }

  /**
   * Proposes a membership change. Throws RaftError('ProposalDropped') without a leader and
   * ConfChangeError when raft's changer refuses it against the current configuration.
   */
  proposeConfChange(cc: ConfChange | ConfChangeV2): void {
    this.raw.proposeConfChange(cc);
    this.kick();
  }

  /** Starts an election now (etcd's Node.Campaign). */
  campaign(): void {
    this.raw.campaign();
    this.kick();
  }

  /** The transport's word on a MsgSnap it carried (or failed to) to `to`. */
  reportSnapshot(to: NodeId, delivered: boolean): void {
    this.raw.reportSnapshot(to, delivered ? SnapshotStatus.Finish : SnapshotStatus.Failure);
    this.kick();
  }

  /** The transport's word that a message to `id` may have been lost (raft probes it again). */
  reportUnreachable(id: NodeId): void {
    this.raw.reportUnreachable(id);
    this.kick();
  }

  /**
   * etcd's advanceTicks: `n` ticks at once, so a fresh member does not sit out a whole
   * election timeout before its first campaign (--initial-election-tick-advance).
   */
  advanceTicks(n: number): void {
    if (this.stopped) return;
    for (let i = 0; i < n; i++) this.raw.tick();
    this.kick();
  }

  /**
   * Raft's state machine, for the invariant checks of simulations and tests only (terms,
   * logs, roles of every member). Reading it is harmless; anything else goes through the
   * methods above.
   */
  inspect(): Readonly<Raft> {
    return this.raw.raft;
  }

  /** A message from a peer (the transport's receive side). */
  step(m: Message): void {
    try {
      this.raw.step(m);
    } catch (e) {
      // A peer's message raft refuses (e.g. from an unknown member) is dropped, as etcd does.
      if (!(e instanceof RaftError)) throw e;
    }
    this.kick();
  }

  /** raft.Status as etcd's /debug/vars shows it ("raft.status"): ids in hex, states by name. */
  statusJson(): string {
    const st = this.raw.status();
    const hex = (id: bigint): string => id.toString(16);
    const progress = [...(st.progress ?? new Map())].map(([id, p]) =>
      `"${hex(id)}":{"match":${p.match},"next":${p.next},"state":"State${ProgressState[p.state]}"}`).join(',');
    return `{"id":"${hex(st.id)}","term":${st.hardState.term},"vote":"${hex(st.hardState.vote)}","commit":${st.hardState.commit},`
      + `"lead":"${hex(st.softState.lead)}","raftState":"${stateName(st.softState.raftState)}","applied":${st.applied},`
      + `"progress":{${progress}},"leadtransferee":"${hex(st.leadTransferee)}"}`;
  }

  /** The leader's match index of every member raft tracks (etcd's isLearnerReady reads it); undefined off the leader. */
  progressMatch(): Map<NodeId, number> | undefined {
    const progress = this.raw.status().progress;
    return progress && new Map([...progress].map(([id, p]) => [id, p.match]));
  }

  /**
   * The index of a conf change raft still holds unapplied (0 when none). While one is, a
   * leader turns a new conf change into an empty entry that answers nobody, so the Cluster
   * service waits for it first (etcd's callers just time out).
   */
  pendingConfChangeIndex(): number {
    const r = this.raw.raft;
    return r.pendingConfIndex > r.log.applied ? r.pendingConfIndex : 0;
  }

  /** Voters of the current configuration. */
  voters(): NodeId[] {
    return this.raw.status().config.voters;
  }

  /** The configuration as of the last applied conf change (for snapshots). */
  confState(): ConfState {
    return this.raw.status().config;
  }

  /**
   * A lone voter need not wait a whole election timeout: etcd fast-forwards its ticks
   * (`electionTick - 1` of them). etcd then still waits out the rest of its randomized
   * timeout; a lone voter has nobody to disrupt, so it campaigns at once.
   */
  campaignAsSoleVoter(): void {
    assert.deepEqual(this.voters(), [this.id], 'campaignAsSoleVoter: not the only voter');
    for (let i = 0; i < this.electionTick - 1; i++) this.raw.tick();
    this.raw.campaign();
    this.kick();
  }

  /**
   * Saves a raft snapshot at the applied index with `data` (snap file, then its WAL
   * record) and compacts the in-memory log, keeping `keepEntries` behind it for slow
   * followers. Run it between Readies (the idle hook or exclusive()).
   */
  async snapshot(data: Uint8Array, keepEntries: number): Promise<Snapshot> {
    const index = this.applied.index;
    if (index <= this.snapshotIndex) assert.fail(`raft: snapshot at applied ${index} is not past the snapshot at ${this.snapshotIndex}`);
    const t0 = loopTrace ? performance.now() : 0;
    const snap = this.storage.createSnapshot(index, this.confState(), data);
    loopTrace?.span('raft.snapshot', t0, 0);
    await this.ports.snapshotter.save(snap);
    await this.ports.wal.saveSnapshot({ index: snap.metadata.index, term: snap.metadata.term });
    this.log.info('saved snapshot', { 'snapshot-index': snap.metadata.index });
    // After a restart the log may already start past that point (it begins at the loaded
    // snapshot): then there is nothing to compact.
    const compactIndex = index - keepEntries;
    if (compactIndex > this.storage.firstIndex()) {
      const t1 = loopTrace ? performance.now() : 0;
      this.storage.compact(compactIndex);
      loopTrace?.span('raft.compact', t1, index - compactIndex);
      this.log.info('compacted Raft logs', { 'compact-index': compactIndex });
    }
    return snap;
  }

  // ------------------------------------------------------------------ the loop

  /** Starts ticking every `tickMs` (tests drive tick() themselves and pass none). */
  start(tickMs?: number): void {
    if (tickMs !== undefined) this.ticker = setInterval(() => this.tick(), tickMs);
    this.kick();
  }

  tick(): void {
    if (this.stopped) return;
    this.raw.tick();
    this.kick();
  }

  /** Schedules a loop run if raft has something to say and none is running. */
  kick(): void {
    if (this.running) this.sendEarlySoon();
    if (this.scheduled || this.running || (this.stopped && this.tasks.length === 0)) return;
    this.scheduled = true;
    // setImmediate (not a microtask) lets pending socket reads land first: bigger batches.
    setImmediate(() => {
      this.scheduled = false;
      if (!this.running) this.runDone = this.run();
    });
  }

  /**
   * While a Ready is in flight, what may go out before its write (RawNode.takeEarlyMessages)
   * goes out on the next turn: one batch for whatever steps and proposals arrive in one
   * socket read.
   */
  private sendEarlySoon(): void {
    if (this.earlySendScheduled) return;
    this.earlySendScheduled = true;
    setImmediate(() => {
      this.earlySendScheduled = false;
      // Once the loop is idle the next Ready carries them.
      if (!this.running || this.stopped) return;
      this.send(this.raw.takeEarlyMessages(this.raw.raft.term === this.durableTerm));
      if (this.events.readState) for (const rs of this.raw.takeReadStates()) this.events.readState(rs.requestCtx, rs.index);
    });
  }

  /** The error that stopped the loop, if any (a WAL write or an apply failed). */
  get error(): Error | undefined {
    return this.failed;
  }

  /**
   * Runs `fn` on the loop between two Readies: no WAL write or apply is in flight while it
   * runs (defragmentation, backend snapshots, raft snapshots). Proposals pile up meanwhile.
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.tasks.push(() => fn().then(resolve, reject));
      this.kick();
    });
  }

  /** Resolves once the loop has nothing left to do (every pending Ready handled). */
  drained(): Promise<void> {
    if (!this.running && !this.scheduled && !this.raw.hasReady() && this.tasks.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Stops ticking and waits for the loop to finish its current Ready. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.ticker) clearInterval(this.ticker);
    await this.runDone.catch(() => undefined);
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      // Awaits only what is pending (a pool write, a snapshot, a task): a Ready handled on
      // this thread (saveNow) and an idle hook with nothing to do cost no promise each.
      for (;;) {
        while (this.tasks.length > 0) await this.tasks.shift()!();
        if (this.stopped || !this.raw.hasReady()) break;
        const t0 = loopTrace ? performance.now() : 0;
        const rd = this.raw.ready();
        const handling = this.handle(rd);
        if (handling !== undefined) {
          loopTrace?.span('raft.ready-start', t0, rd.entries.length);
          await handling;
        }
        const t1 = loopTrace ? performance.now() : 0;
        this.raw.advance(rd);
        const idle = this.events.idle?.();
        loopTrace?.span(handling === undefined ? 'raft.ready-now' : 'raft.advance', handling === undefined ? t0 : t1, rd.entries.length);
        if (idle !== undefined) await idle;
      }
    } catch (e) {
      this.failed = e as Error;
      this.stopped = true;
      if (this.ticker) clearInterval(this.ticker);
      this.log.error('raft loop failed; stopping', { error: String((e as Error).stack ?? e) });
      throw e;
    } finally {
      this.running = false;
    }
    // Something may have arrived while the last advance ran.
    if (!this.stopped && (this.raw.hasReady() || this.tasks.length > 0)) this.kick();
    else if (this.drainWaiters.length > 0) {
      const ws = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of ws) w();
    }
  }

  /** Handles one Ready; a promise only when it waits for something (pool write, snapshot). */
  private handle(rd: Ready): Promise<void> | undefined {
    if (rd.hardState) {
      this.term = rd.hardState.term;
      this.commitIndex = rd.hardState.commit;
    }
    if (rd.softState) this.setRole(rd.softState.lead, rd.softState.raftState === StateType.Leader);
    // A leader may send before persisting (its own log counts only once persisted anyway).
    const isLeader = this.isLeader;
    if (isLeader) this.send(rd.messages);

    const snapshot = rd.snapshot && rd.snapshot.metadata.index > 0 ? rd.snapshot : undefined;
    if (snapshot) return this.persistSnapshot(snapshot).then(() => this.handleSaving(rd, isLeader, snapshot));
    const t0 = performance.now();
    const mustSave = rd.entries.length > 0 || rd.hardState !== undefined;
    const savedNow = mustSave && this.writesNow(rd, isLeader) ? this.ports.wal.saveNow?.(rd.hardState, rd.entries, rd.mustSync) : undefined;
    // Nothing to write (every committed entry was persisted by an earlier Ready), or a write
    // done here on the loop's thread: the whole Ready is handled now.
    if (!mustSave || savedNow === true) {
      this.persisted(rd, t0);
      if (!isLeader) this.send(rd.messages);
      if (this.events.readState) for (const rs of rd.readStates) this.events.readState(rs.requestCtx, rs.index);
      const committed = rd.committedEntries;
      if (committed.length > 0 && committed[committed.length - 1]!.index > this.persistedIndex) {
        assert.fail(`raft: entry ${committed[committed.length - 1]!.index} committed but persisted only to ${this.persistedIndex}`);
      }
      return this.applyEntries(committed, 0, committed.length);
    }
    // Written here, but its sync outlasted the loop's budget: the rest as for a pool write.
    if (savedNow !== undefined && savedNow !== false) return this.handleSaving(rd, isLeader, undefined, savedNow, t0);
    return this.handleSaving(rd, isLeader, undefined);
  }

  /**
   * A Ready whose WAL write goes to the thread pool (or follows a leader's snapshot), or
   * whose write saveNow started (`started`, at t0) and finishes in the background.
   */
  private async handleSaving(rd: Ready, isLeader: boolean, snapshot: Snapshot | undefined, started?: Promise<void>, t0 = performance.now()): Promise<void> {
    const mustSave = rd.entries.length > 0 || rd.hardState !== undefined;
    // Start this Ready's WAL write first: the write and fdatasync run on the thread pool
    // while this thread applies what is already durable and answers those clients.
    const saving = started ?? (mustSave ? this.ports.wal.save(rd.hardState, rd.entries, rd.mustSync) : undefined);

    const committed = rd.committedEntries;
    let split = committed.length;
    while (split > 0 && committed[split - 1]!.index > this.persistedIndex) split--;
    const early = this.applyEntries(committed, 0, split);
    if (early !== undefined) await early;

    if (this.events.readState) for (const rs of rd.readStates) this.events.readState(rs.requestCtx, rs.index);

    if (saving) await saving;
    const t1 = loopTrace ? performance.now() : 0;
    this.persisted(rd, t0);
    if (!isLeader) this.send(rd.messages);
    // A leader's snapshot replaces the state machine once it is durable with its hard state
    // (etcd applies it after the raft loop persisted it); the entries after it follow.
    if (snapshot) await this.installSnapshot(snapshot);
    const rest = this.applyEntries(committed, split, committed.length);
    if (rest !== undefined) await rest;
    loopTrace?.span('raft.ready-finish', t1, committed.length - split);
  }

  /**
   * Whether this Ready's WAL write blocks the loop's thread (WalPort.saveNow) rather than go
   * to the thread pool, whose round trip puts two thread hand-offs (each a scheduling delay
   * on a loaded machine) on the commit's path.
   *
   * A follower always: its acknowledgement waits for the write anyway, and it acknowledges
   * before applying. A leader when the Ready carries at most one entry: one proposal since
   * the last Ready means light load, when nothing waits on the loop while the disk works
   * (put-1). Several mean proposals arrive faster than the disk syncs: the loop keeps taking
   * them, sending and applying meanwhile, and the pool's hand-offs are shared by the batch.
   *
   * Safe for a leader because its appends have already left (raft lets a leader send before
   * its own fsync), raft counts the leader's own log in the commit quorum only from
   * advance(), after the write returns, and only committed entries are applied (and answered).
   */
  private writesNow(rd: Ready, isLeader: boolean): boolean {
    return !isLeader || rd.entries.length <= leaderBlockingEntries;
  }

  /** The Ready's hard state and entries are durable (saved at t0, if anything was): raft's storage takes them. */
  private persisted(rd: Ready, t0: number): void {
    if (rd.entries.length > 0 || rd.hardState) {
      this.stats.walSaves++;
      this.stats.walSaveMs += performance.now() - t0;
      this.stats.entriesSaved += rd.entries.length;
    }
    this.stats.readies++;
    if (rd.hardState) {
      this.storage.setHardState(rd.hardState);
      this.durableTerm = rd.hardState.term;
    }
    if (rd.entries.length > 0) {
      this.storage.append(rd.entries);
      this.persistedIndex = rd.entries[rd.entries.length - 1]!.index;
    }
  }

  private setRole(leader: NodeId, isLeader: boolean): void {
    const previous = this.leader;
    const changed = leader !== previous || isLeader !== this.isLeader;
    this.leader = leader;
    this.isLeader = isLeader;
    if (changed) this.events.leaderChanged?.(leader, isLeader, previous);
  }

  /**
   * Hands entries [from, to) to the applier, at most applyPerTurn in this turn; a promise
   * (settled once all are applied) only when some wait for later turns.
   */
  private applyEntries(entries: readonly Entry[], from: number, to: number): Promise<void> | undefined {
    const end = Math.min(to, from + defaultApplyPerTurn);
    this.applyNow(entries, from, end);
    return end === to ? undefined : this.applyLater(entries, end, to);
  }

  private async applyLater(entries: readonly Entry[], from: number, to: number): Promise<void> {
    while (from < to) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      const end = Math.min(to, from + defaultApplyPerTurn);
      this.applyNow(entries, from, end);
      from = end;
    }
  }

  /** Hands entries [from, to) to the applier now, conf changes applied to raft first. */
  private applyNow(entries: readonly Entry[], from: number, to: number): void {
    const t0 = loopTrace && to > from ? performance.now() : 0;
    for (let i = from; i < to; i++) {
      const e = entries[i]!;
      // Checked before building a message: this runs for every entry.
      if (e.index !== this.applied.index + 1) assert.fail(`raft: applying entry ${e.index} after ${this.applied.index}`);
      if (e.type === EntryType.EntryConfChange || e.type === EntryType.EntryConfChangeV2) this.applyConfChange(e);
      else this.ports.applier.apply(e);
      this.appliedTerm = e.term;
      this.applied.advance(e.index);
    }
    if (t0 > 0) loopTrace?.span('raft.apply', t0, to - from);
  }

  /** The applier decides what raft applies (etcd validates membership first); raft must hear exactly once. */
  private applyConfChange(e: Entry): void {
    let applied = 0;
    this.ports.applier.applyConfChange(e, confChangeOfEntry(e), (cc) => {
      applied++;
      return this.raw.applyConfChange(cc);
    });
    if (applied !== 1) assert.fail(`raft: conf change ${e.index} reached raft ${applied} times`);
  }

  private send(messages: readonly Message[]): void {
    if (messages.length === 0) return;
    let plain = messages;
    if (messages.some((m) => m.type === MessageType.MsgSnap)) {
      plain = messages.filter((m) => m.type !== MessageType.MsgSnap);
      for (const m of messages) if (m.type === MessageType.MsgSnap) this.ports.transport.sendSnapshot(m);
    }
    if (plain.length > 0) this.ports.transport.send(plain);
  }

  /**
   * A snapshot from the leader: the snap file, then its WAL record (a restart uses it only
   * once the hard state committing it is durable too, which this Ready's save brings), then
   * raft's storage starts from it. Nothing of the old log counts as persisted any more.
   */
  private async persistSnapshot(snap: Snapshot): Promise<void> {
    await this.ports.snapshotter.save(snap);
    await this.ports.wal.saveSnapshot({ index: snap.metadata.index, term: snap.metadata.term });
    this.storage.applySnapshot(snap);
    this.persistedIndex = snap.metadata.index;
  }

  private async installSnapshot(snap: Snapshot): Promise<void> {
    const { index, term } = snap.metadata;
    if (index <= this.applied.index) assert.fail(`raft: snapshot at ${index} is not past applied ${this.applied.index}`);
    await this.ports.applier.restore(snap);
    this.log.info('applied snapshot', { 'snapshot-index': index });
    this.appliedTerm = term;
    this.applied.advance(index);
  }
}
