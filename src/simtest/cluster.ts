/**
 * A simulated cluster of SimMembers (the server's real Ready loop over in-memory disks) and
 * the network between them: messages go through the wire codec and may be dropped,
 * duplicated, delayed (which reorders them), re-delivered late from an older term, filtered
 * by a scenario, or stopped by partitions. Everything is driven from one seeded PRNG and the
 * event loop's FIFO order (no timers, no I/O), so a seed replays exactly.
 *
 * Invariant checks are recorded as violations rather than thrown, so a run reports its seed:
 * election safety, leader completeness (checked when a member becomes leader), state-machine
 * safety (every applied prefix and every installed snapshot agrees with one history), apply
 * order, and log matching (on demand); in kv mode, applied-state agreement (every member's
 * MVCC store hashes the same after the same entry).
 */
import { RaftError, StateType } from '../raft/index.js';
import { decodeMessage, encodeMessage, MessageType, type ConfState, type Entry, type Message, type NodeId, type Snapshot } from '../proto/index.js';
import { SimMember, type MemberHooks, type MemberOptions } from './sim-member.js';

export interface Violation {
  kind: string;
  detail: string;
}

export interface NetworkOptions {
  random: () => number;
  dropRate?: number;
  dupRate?: number;
  /** Max extra delay (in network steps) a message may get; delay also reorders. */
  maxDelay?: number;
  /** Bound on messages in flight; beyond it new messages are dropped (like a full send queue). */
  maxInFlight?: number;
  /** Fraction of messages held back much longer (up to longDelay steps): old-term messages arrive late. */
  longDelayRate?: number;
  longDelay?: number;
  /** Prints the run's events (a replayed seed's story) through this function. */
  trace?: (line: string) => void;
}

interface InFlight {
  m: Message;
  deliverAt: number;
}

/** Every node a configuration names (voters of both halves, learners, learners-next). */
function members(cs: ConfState): Set<NodeId> {
  return new Set([...cs.voters, ...cs.votersOutgoing, ...cs.learners, ...cs.learnersNext]);
}

/** One event-loop turn: scheduled loop runs go, and what they await settles. */
export function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export class SimCluster implements MemberHooks {
  readonly nodes = new Map<NodeId, SimMember>();
  private inflight: InFlight[] = [];
  private now = 0;
  /** Pairs that cannot talk: key `${from}>${to}`. */
  private readonly cut = new Set<string>();
  readonly violations: Violation[] = [];
  /** term -> leader seen in that term. */
  readonly leaders = new Map<number, NodeId>();
  /** Global history: for each applied index, its term and the running hash after it. */
  readonly history = new Map<number, { term: number; hash: number }>();
  /** kv mode: the MVCC store's hash after sampled applied indexes, and who reported it first. */
  readonly stateHashes = new Map<number, { hash: number; member: NodeId }>();
  /** Node ids removed from the configuration (by an applied conf change). */
  readonly removed = new Set<NodeId>();
  delivered = 0;
  dropRate: number;
  dupRate: number;
  maxDelay: number;
  longDelayRate: number;
  readonly longDelay: number;
  readonly maxInFlight: number;
  readonly random: () => number;
  readonly trace: ((line: string) => void) | undefined;
  /**
   * Targeted scenarios: what to deliver instead of m (undefined drops it). A scenario may
   * shorten a MsgApp to a prefix of its entries, which is what a sender with a smaller size
   * limit would have sent.
   */
  filter: ((m: Message) => Message | undefined) | undefined = undefined;
  /** Called when a member announces it became leader (after the safety checks). */
  onLeaderHook: ((n: SimMember) => void) | undefined = undefined;
  /** Recently sent messages, for late re-delivery (duplicates across terms). */
  private readonly sentLog: Message[] = [];
  private sentLogPos = 0;

  constructor(opts: NetworkOptions, private readonly memberOpts: MemberOptions) {
    this.random = opts.random;
    this.dropRate = opts.dropRate ?? 0;
    this.dupRate = opts.dupRate ?? 0;
    this.maxDelay = opts.maxDelay ?? 0;
    this.maxInFlight = opts.maxInFlight ?? 10000;
    this.longDelayRate = opts.longDelayRate ?? 0;
    this.longDelay = opts.longDelay ?? 0;
    this.trace = opts.trace;
  }

  /** A founding group of the given ids, each started from its bootstrap WAL. */
  static async bootstrap(ids: NodeId[], opts: NetworkOptions, memberOpts: MemberOptions): Promise<SimCluster> {
    const c = new SimCluster(opts, memberOpts);
    for (const id of ids) {
      const n = c.newMember(id);
      n.writeBootstrap(ids);
      n.start();
    }
    await c.settle();
    return c;
  }

  /** Adds a fresh, empty member (not yet in the configuration: the leader brings it in). */
  addEmptyMember(id: NodeId): SimMember {
    const n = this.newMember(id);
    n.start();
    return n;
  }

  private newMember(id: NodeId): SimMember {
    const n = new SimMember(id, this.memberOpts, this.random, this);
    this.nodes.set(id, n);
    return n;
  }

  node(id: NodeId): SimMember {
    return this.nodes.get(id)!;
  }

  // ------------------------------------------------------------------ member hooks

  send(_from: SimMember, m: Message): void {
    if (this.inflight.length >= this.maxInFlight) return;
    // Through the wire codec, as a real transport would: nothing is shared between members.
    m = decodeMessage(encodeMessage(m));
    if (this.dropRate > 0 && this.random() < this.dropRate) {
      this.onDrop(m);
      return;
    }
    let delay = this.maxDelay > 0 ? Math.floor(this.random() * (this.maxDelay + 1)) : 0;
    if (this.longDelayRate > 0 && this.random() < this.longDelayRate) delay += Math.floor(this.random() * (this.longDelay + 1));
    this.inflight.push({ m, deliverAt: this.now + delay });
    if (this.longDelayRate > 0) {
      if (this.sentLog.length < 256) this.sentLog.push(m);
      else this.sentLog[this.sentLogPos++ & 255] = m;
    }
    if (this.dupRate > 0 && this.random() < this.dupRate) {
      this.inflight.push({ m, deliverAt: this.now + Math.floor(this.random() * (this.maxDelay + 1)) });
    }
  }

  applied(n: SimMember, e: Entry, confBefore: ConfState): void {
    if (this.trace) this.trace(`apply ${n.id} ${e.index}t${e.term}`);
    this.checkHash(n, e.index, e.term, n.app.hash);
    if (n.app.confState === confBefore) return;
    // Gone from every part of the configuration (for a joint change: once it is left).
    const after = members(n.app.confState);
    for (const id of members(confBefore)) if (!after.has(id)) this.removed.add(id);
  }

  restored(n: SimMember, snap: Snapshot, hash: number): void {
    if (this.trace) this.trace(`restore ${n.id} snapshot ${snap.metadata.index}t${snap.metadata.term}`);
    this.checkHash(n, snap.metadata.index, snap.metadata.term, hash);
  }

  becameLeader(n: SimMember): void {
    const r = n.r;
    if (this.trace) this.trace(`leader ${n.id} term ${r.term} last ${r.log.lastIndex()}t${r.log.lastTerm()} committed ${r.log.committed}`);
    const prev = this.leaders.get(r.term);
    if (prev !== undefined && prev !== n.id) {
      this.violations.push({ kind: 'election safety', detail: `term ${r.term} has leaders ${prev} and ${n.id}` });
    }
    this.leaders.set(r.term, n.id);
    // Leader completeness: every entry applied anywhere is in the new leader's log.
    const first = r.log.firstIndex();
    for (const [i, h] of this.history) {
      if (i < first) continue;
      if (r.log.term(i) !== h.term) {
        this.violations.push({ kind: 'leader completeness', detail: `leader ${n.id} of term ${r.term} lacks committed entry ${i} (term ${h.term}, has ${r.log.term(i)})` });
        return;
      }
    }
    if (this.onLeaderHook) this.onLeaderHook(n);
  }

  stateHash(n: SimMember, index: number, hash: number): void {
    const h = this.stateHashes.get(index);
    if (!h) this.stateHashes.set(index, { hash, member: n.id });
    else if (h.hash !== hash) {
      this.violations.push({ kind: 'applied-state agreement', detail: `node ${n.id}'s store hashes ${hash} after applying ${index}, node ${h.member}'s hashed ${h.hash}` });
    }
  }

  private checkHash(n: SimMember, index: number, term: number, hash: number): void {
    const h = this.history.get(index);
    if (!h) this.history.set(index, { term, hash });
    else if (h.hash !== hash) {
      this.violations.push({ kind: 'state-machine safety', detail: `node ${n.id} applied a different entry at ${index}` });
    }
  }

  // ------------------------------------------------------------------ faults

  isolate(id: NodeId): void {
    if (this.trace) this.trace(`isolate ${id}`);
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.cut.add(`${id}>${other}`);
      this.cut.add(`${other}>${id}`);
    }
  }

  /** Splits the members into two sides that cannot talk. */
  partition(side: NodeId[]): void {
    if (this.trace) this.trace(`partition ${side.join(',')}`);
    const a = new Set(side);
    for (const x of this.nodes.keys()) {
      for (const y of this.nodes.keys()) if (a.has(x) !== a.has(y)) this.cut.add(`${x}>${y}`);
    }
  }

  heal(): void {
    if (this.trace) this.trace('heal');
    this.cut.clear();
  }

  /**
   * Crashes a member. A WAL write in flight is torn: a random prefix of its records reached
   * the disk (nothing after the first lost record survives), the rest is lost.
   */
  crash(n: SimMember): void {
    if (!n.alive) return;
    const total = n.wal.pendingRecords;
    const keep = Math.floor(this.random() * (total + 1));
    if (this.trace) this.trace(`crash ${n.id}${total > 0 ? ` mid-write: kept ${keep}/${total} records` : ''}`);
    n.crash(keep);
  }

  /** Shuts a member down losing whatever was not durable (a removed member stopping). */
  shutDown(n: SimMember): void {
    n.crash(0);
  }

  restart(n: SimMember): void {
    if (n.alive) return;
    if (this.trace) this.trace(`start ${n.id}`);
    n.start();
  }

  // ------------------------------------------------------------------ driving

  /** Makes 1..maxWrites of the member's pending WAL writes durable. False if none was pending. */
  persistSome(n: SimMember, maxWrites: number): boolean {
    if (!n.alive || n.wal.pending === 0) return false;
    const k = 1 + Math.floor(this.random() * Math.max(1, maxWrites));
    for (let i = 0; i < k && n.wal.completeNext(); i++);
    return true;
  }

  /** Re-sends a random message sent earlier (possibly from an older term). */
  replayOld(): boolean {
    if (this.sentLog.length === 0) return false;
    const m = this.sentLog[Math.floor(this.random() * this.sentLog.length)]!;
    this.inflight.push({ m: decodeMessage(encodeMessage(m)), deliverAt: this.now });
    return true;
  }

  /** Delivers one message that is due (a random one, so delivery reorders). */
  deliverOne(): boolean {
    if (this.inflight.length === 0) return false;
    let k = Math.floor(this.random() * this.inflight.length);
    if (this.inflight[k]!.deliverAt > this.now) {
      k = 0; // take the earliest due one instead
      for (let i = 1; i < this.inflight.length; i++) if (this.inflight[i]!.deliverAt < this.inflight[k]!.deliverAt) k = i;
    }
    const { m } = this.inflight[k]!;
    this.inflight[k] = this.inflight[this.inflight.length - 1]!;
    this.inflight.pop();
    this.deliver(m);
    return true;
  }

  private deliver(msg: Message): void {
    let m: Message | undefined = msg;
    if (this.filter !== undefined) m = this.filter(msg);
    const to = m && this.nodes.get(m.to);
    if (!m || !to || !to.alive || this.cut.has(`${m.from}>${m.to}`)) {
      this.onDrop(msg);
      return;
    }
    this.delivered++;
    if (this.trace && m.type !== MessageType.MsgHeartbeat && m.type !== MessageType.MsgHeartbeatResp) {
      this.trace(`deliver ${MessageType[m.type]} ${m.from}->${m.to} t${m.term} i${m.index} lt${m.logTerm} c${m.commit}${m.reject ? ' reject' : ''} ents ${m.entries.map((e) => `${e.index}t${e.term}`).join(',')}`);
    }
    to.raft.step(m);
    if (m.type === MessageType.MsgSnap) this.reportSnapshot(m, true);
  }

  private onDrop(m: Message): void {
    // The transport tells the leader a snapshot did not make it, as etcd's does.
    if (m.type === MessageType.MsgSnap) this.reportSnapshot(m, false);
  }

  private reportSnapshot(m: Message, delivered: boolean): void {
    const from = this.nodes.get(m.from);
    if (from?.alive) from.raft.reportSnapshot(m.to, delivered);
  }

  /** Lets every member's loop run until it waits on the disk or has nothing to do. */
  async settle(): Promise<void> {
    await turn();
    await turn();
  }

  /** Makes writes durable and delivers messages until quiet (or the bound is hit). */
  async stabilize(maxRounds = 10000): Promise<void> {
    let quiet = 0;
    for (let round = 0; round < maxRounds && quiet < 2; round++) {
      await this.settle();
      let progress = false;
      for (const n of this.nodes.values()) {
        if (!n.alive) continue;
        while (n.wal.completeNext()) progress = true;
      }
      await this.settle();
      while (this.inflight.length > 0) {
        this.now += this.maxDelay + 1;
        this.deliverOne();
        progress = true;
      }
      quiet = progress ? 0 : quiet + 1;
    }
  }

  advanceTime(): void {
    this.now++;
  }

  tickAll(): void {
    for (const n of this.nodes.values()) if (n.alive) n.raft.tick();
  }

  /** The live member that leads at the highest term, if any. */
  leader(): SimMember | undefined {
    let best: SimMember | undefined;
    for (const n of this.nodes.values()) {
      if (!n.alive) continue;
      const r = n.r;
      if (r.state === StateType.Leader && (!best || r.term > best.r.term)) best = n;
    }
    return best;
  }

  propose(n: SimMember, data: Uint8Array): boolean {
    try {
      n.raft.propose(data);
      return true;
    } catch (e) {
      if (e instanceof RaftError && e.code === 'ProposalDropped') return false;
      throw e;
    }
  }

  /** Checks log matching across every pair of live members' logs. */
  checkLogMatching(): void {
    const list = [...this.nodes.values()].filter((n) => n.alive);
    for (let a = 0; a < list.length; a++) {
      for (let b = a + 1; b < list.length; b++) {
        const la = list[a]!.r.log;
        const lb = list[b]!.r.log;
        const lo = Math.max(la.firstIndex(), lb.firstIndex());
        const hi = Math.min(la.lastIndex(), lb.lastIndex());
        // The highest index where terms agree: everything at or below it must be equal.
        let top = -1;
        for (let i = hi; i >= lo; i--) {
          if (la.term(i) === lb.term(i)) {
            top = i;
            break;
          }
        }
        if (top < lo) continue;
        const ea = la.slice(lo, top + 1, Number.MAX_SAFE_INTEGER);
        const eb = lb.slice(lo, top + 1, Number.MAX_SAFE_INTEGER);
        for (let k = 0; k < ea.length; k++) {
          if (ea[k]!.term !== eb[k]!.term || !sameData(ea[k]!.data, eb[k]!.data)) {
            this.violations.push({ kind: 'log matching', detail: `nodes ${list[a]!.id} and ${list[b]!.id} agree at ${top} but differ at ${ea[k]!.index}` });
            return;
          }
        }
      }
    }
  }
}

function sameData(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  return Buffer.compare(a ?? new Uint8Array(0), b ?? new Uint8Array(0)) === 0;
}
