/**
 * A deterministic in-memory cluster for tests and benchmarks: nodes with MemoryStorage as their
 * "disk", a network that can drop, delay, reorder, duplicate and partition, crash/restart from
 * persisted state, and an application whose state is a running hash of applied entries (so
 * applied histories can be compared cheaply and restored from snapshots).
 *
 * Invariant checks (election safety, log matching, leader completeness, state-machine safety)
 * are recorded as violations rather than thrown, so a run can report its seed.
 */
import {
  type ConfState,
  type Entry,
  type Message,
  type NodeId,
  EntryType,
  MessageType,
  decodeMessage,
  encodeMessage,
  emptyConfState,
} from '../proto/index.js';
import { isRaftError } from './errors.js';
import { StateType, confChangeOfEntry } from './raft.js';
import { RawNode, type Ready, SnapshotStatus } from './rawnode.js';
import { MemoryStorage } from './storage.js';
import type { ReadState } from './readindex.js';

/** Every node a configuration names (voters of both halves, learners, learners-next). */
function members(cs: ConfState): Set<NodeId> {
  return new Set([...cs.voters, ...cs.votersOutgoing, ...cs.learners, ...cs.learnersNext]);
}

export { rng } from '../testkit/index.js';
import { rng } from '../testkit/index.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

function fnv(h: number, data: Uint8Array | undefined, index: number): number {
  h ^= index;
  h = Math.imul(h, 16777619) >>> 0;
  if (data) for (let i = 0; i < data.length; i++) h = Math.imul(h ^ data[i], 16777619) >>> 0;
  return h;
}

export interface NodeOptions {
  electionTick?: number;
  heartbeatTick?: number;
  checkQuorum?: boolean;
  preVote?: boolean;
  maxSizePerMsg?: number;
  maxInflightMsgs?: number;
}

export class SimNode {
  readonly id: NodeId;
  storage: MemoryStorage;
  node!: RawNode;
  alive = true;
  /** Application state: applied index and running hash of applied entries. */
  appliedIndex = 0;
  appliedHash = 2166136261;
  confState: ConfState = emptyConfState();
  readStates: ReadState[] = [];
  /** A Ready handed out and not yet persisted (persistence is a separate, delayable step). */
  pending: Ready | null = null;
  /**
   * How many of the pending Ready's records (snapshot?, entries..., hard state?) are already
   * written to storage: persistence is a sequence of writes that a crash can interrupt.
   */
  written = 0;
  /** The pending Ready's messages already went out (a leader sends before its own fsync). */
  sentEarly = false;
  /** The pending Ready's committed entries already applied (before persistence finished). */
  appliedEarly = false;
  /** Role as of the last soft state handed out (what a server knows without asking raft). */
  softLeader = false;
  /** Data of applied normal entries, in order (for tests that inspect what was applied). */
  appliedData: string[] = [];
  readonly opts: NodeOptions;
  /** Founding members: a member that crashed before persisting its bootstrap re-bootstraps. */
  bootstrapPeers: NodeId[] | undefined = undefined;
  private readonly random: () => number;

  constructor(id: NodeId, opts: NodeOptions, random: () => number, storage = new MemoryStorage()) {
    this.id = id;
    this.opts = opts;
    this.random = random;
    this.storage = storage;
    this.start();
  }

  /** (Re)creates the RawNode from what is persisted. */
  start(): void {
    if (process.env.RAFT_SIM_TRACE) console.log('start', this.id);
    // A founding member whose bootstrap never became durable (its hard state, which commits
    // the bootstrap entries, was not written) starts over, as a server with no valid WAL would.
    if (this.bootstrapPeers && this.storage.snapshot().metadata.index === 0 && this.storage.initialState().hardState.commit === 0) {
      this.storage = new MemoryStorage();
    }
    const snap = this.storage.snapshot();
    this.appliedIndex = snap.metadata.index;
    this.appliedHash = 2166136261;
    this.confState = snap.metadata.confState;
    if (snap.data && snap.data.length > 0) {
      const s = JSON.parse(dec.decode(snap.data)) as { index: number; hash: number };
      this.appliedHash = s.hash;
    }
    this.pending = null;
    this.written = 0;
    this.sentEarly = false;
    this.appliedEarly = false;
    this.softLeader = false;
    this.node = new RawNode({
      id: this.id,
      electionTick: this.opts.electionTick ?? 10,
      heartbeatTick: this.opts.heartbeatTick ?? 1,
      storage: this.storage,
      applied: this.appliedIndex,
      maxSizePerMsg: this.opts.maxSizePerMsg ?? 1024 * 1024,
      maxInflightMsgs: this.opts.maxInflightMsgs ?? 256,
      checkQuorum: this.opts.checkQuorum ?? true,
      preVote: this.opts.preVote ?? true,
      random: this.random,
    });
    if (this.bootstrapPeers && this.storage.lastIndex() === 0) this.node.bootstrap(this.bootstrapPeers.map((p) => ({ id: p })));
    this.alive = true;
  }

  crash(): void {
    this.alive = false;
    this.pending = null;
    this.written = 0;
  }

  /**
   * Records of a Ready in the order a WAL writes them: snapshot, entries, then hard state. A
   * snapshot counts only together with the hard state committing it (etcd ignores a WAL
   * snapshot newer than the saved commit), so those two are one record.
   */
  static recordCount(rd: Ready): number {
    return (rd.snapshot ? 1 : 0) + rd.entries.length + (rd.hardState && !rd.snapshot ? 1 : 0);
  }

  /** Writes records [written, upTo) of the pending Ready to storage. */
  writeRecords(upTo: number): void {
    const rd = this.pending;
    if (!rd) return;
    const snapN = rd.snapshot ? 1 : 0;
    for (let k = this.written; k < upTo; k++) {
      if (k < snapN) {
        this.storage.applySnapshot(rd.snapshot!);
        if (rd.hardState) this.storage.setHardState(rd.hardState);
      } else if (k < snapN + rd.entries.length) this.storage.append([rd.entries[k - snapN]]);
      else this.storage.setHardState(rd.hardState!);
    }
    if (upTo > this.written) this.written = upTo;
  }

  /** Takes a snapshot of the applied state and compacts the log up to it. */
  snapshotAndCompact(keep = 0): void {
    // Between Readys only (as the server does): with a write in flight the applied index may be
    // past the persisted commit index, and a snapshot there would not survive a restart.
    if (this.pending) return;
    const i = this.appliedIndex;
    if (i <= this.storage.snapshot().metadata.index) return;
    const data = enc.encode(JSON.stringify({ index: i, hash: this.appliedHash }));
    // Only persisted entries can be snapshotted from storage.
    if (i > this.storage.lastIndex()) return;
    this.storage.createSnapshot(i, this.confState, data);
    const upTo = i - keep;
    if (upTo > this.storage.firstIndex()) this.storage.compact(upTo);
  }
}

export interface Violation {
  kind: string;
  detail: string;
}

interface InFlight {
  m: Message;
  deliverAt: number;
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
  /** Chance that a leader sends a Ready's messages before persisting it (as the server does). */
  earlySendRate?: number;
  /** Chance that a Ready's committed entries are applied before its persistence finishes. */
  earlyApplyRate?: number;
}

const TRACE = !!process.env.RAFT_SIM_TRACE;
function trace(...a: unknown[]): void {
  console.log(...a);
}

export class SimNetwork {
  readonly nodes = new Map<NodeId, SimNode>();
  private inflight: InFlight[] = [];
  private now = 0;
  /** Pairs that cannot talk: key `${from}>${to}`. */
  private cut = new Set<string>();
  readonly violations: Violation[] = [];
  /** term -> leader seen in that term. */
  readonly leaders = new Map<number, NodeId>();
  /** Global history: for each applied index, its term and the running hash after it. */
  readonly history = new Map<number, { term: number; hash: number }>();
  dropRate: number;
  dupRate: number;
  maxDelay: number;
  readonly maxInFlight: number;
  readonly random: () => number;
  /** Node ids removed from the configuration (by an applied conf change). */
  readonly removed = new Set<NodeId>();
  delivered = 0;
  /** Pass messages through encode/decode (off in benchmarks that measure raft alone). */
  serialize = true;
  longDelayRate: number;
  longDelay: number;
  earlySendRate: number;
  earlyApplyRate: number;
  /**
   * Targeted scenarios: what to deliver instead of m (undefined drops it). A scenario may
   * shorten a MsgApp to a prefix of its entries, which is what a sender with a smaller size
   * limit would have sent.
   */
  filter: ((m: Message) => Message | undefined) | undefined = undefined;
  /** Called when a node's Ready announces it became leader (after the safety checks). */
  onLeaderHook: ((n: SimNode) => void) | undefined = undefined;
  /** Recently sent messages, for late re-delivery (duplicates across terms). */
  private sentLog: Message[] = [];
  private sentLogPos = 0;

  constructor(opts: NetworkOptions) {
    this.random = opts.random;
    this.dropRate = opts.dropRate ?? 0;
    this.dupRate = opts.dupRate ?? 0;
    this.maxDelay = opts.maxDelay ?? 0;
    this.maxInFlight = opts.maxInFlight ?? 10000;
    this.longDelayRate = opts.longDelayRate ?? 0;
    this.longDelay = opts.longDelay ?? 0;
    this.earlySendRate = opts.earlySendRate ?? 0;
    this.earlyApplyRate = opts.earlyApplyRate ?? 0;
  }

  /** Creates a bootstrapped group of the given ids. */
  static cluster(ids: NodeId[], opts: NetworkOptions, nodeOpts: NodeOptions = {}): SimNetwork {
    const net = new SimNetwork(opts);
    for (const id of ids) {
      const n = new SimNode(id, nodeOpts, opts.random);
      n.node.bootstrap(ids.map((p) => ({ id: p })));
      n.bootstrapPeers = ids;
      net.nodes.set(id, n);
    }
    return net;
  }

  /** Adds a fresh, empty node (not yet in the configuration: the leader brings it in). */
  addEmptyNode(id: NodeId, nodeOpts: NodeOptions = {}): SimNode {
    const n = new SimNode(id, nodeOpts, this.random);
    this.nodes.set(id, n);
    return n;
  }

  node(id: NodeId): SimNode {
    return this.nodes.get(id)!;
  }

  isolate(id: NodeId): void {
    if (TRACE) trace(`isolate ${id}`);
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.cut.add(`${id}>${other}`);
      this.cut.add(`${other}>${id}`);
    }
  }

  /** Splits the nodes into two sides that cannot talk. */
  partition(side: NodeId[]): void {
    if (TRACE) trace(`partition ${side.join(',')}`);
    const a = new Set(side);
    for (const x of this.nodes.keys()) {
      for (const y of this.nodes.keys()) {
        if (a.has(x) !== a.has(y)) this.cut.add(`${x}>${y}`);
      }
    }
  }

  cutLink(from: NodeId, to: NodeId): void {
    this.cut.add(`${from}>${to}`);
  }

  heal(): void {
    if (TRACE) trace('heal');
    this.cut.clear();
  }

  leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.nodes.values()) {
      if (!n.alive) continue;
      const r = n.node.raft;
      if (r.state === StateType.Leader && (!best || r.term > best.node.raft.term)) best = n;
    }
    return best;
  }

  /** Queues a message for delivery, subject to drops, duplication and delay. */
  send(m: Message): void {
    if (this.inflight.length >= this.maxInFlight) return;
    // Through the wire codec, as a real transport would: nothing is shared between nodes.
    if (this.serialize) m = decodeMessage(encodeMessage(m));
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

  private onDrop(m: Message): void {
    // The transport tells the leader a snapshot did not make it, as etcd's does.
    if (m.type === MessageType.MsgSnap) {
      const from = this.nodes.get(m.from);
      if (from?.alive) from.node.reportSnapshot(m.to, SnapshotStatus.Failure);
    }
  }

  /** Persists and processes the node's outstanding Ready (if any), all at once. */
  persist(n: SimNode): void {
    const rd = n.pending;
    if (!rd || !n.alive) return;
    n.writeRecords(SimNode.recordCount(rd));
    this.complete(n);
  }

  /**
   * Writes the next 1..maxRecords records of the node's pending Ready; once all are written
   * (the fsync returned), sends, applies and advances. False if nothing was pending.
   */
  persistSome(n: SimNode, maxRecords: number): boolean {
    const rd = n.pending;
    if (!rd || !n.alive) return false;
    const total = SimNode.recordCount(rd);
    const k = 1 + Math.floor(this.random() * Math.max(1, maxRecords));
    n.writeRecords(Math.min(total, n.written + k));
    if (n.written >= total) this.complete(n);
    return true;
  }

  /**
   * Crashes a node. A Ready being persisted is torn: a random prefix of its records reached
   * the disk (nothing after the first lost record survives), the rest is lost.
   */
  crash(n: SimNode): void {
    if (!n.alive) return;
    const rd = n.pending;
    if (rd) {
      const total = SimNode.recordCount(rd);
      const keep = n.written + Math.floor(this.random() * (total - n.written + 1));
      n.writeRecords(keep);
      if (TRACE) trace(`crash ${n.id} mid-persist: kept ${keep}/${total} records (ents ${rd.entries.map((e) => `${e.index}t${e.term}`).join(',')} hs ${JSON.stringify(rd.hardState, (_k, v) => (typeof v === 'bigint' ? Number(v) : v))})`);
    } else if (TRACE) trace(`crash ${n.id}`);
    n.crash();
  }

  /** The pending Ready is durable: send, apply, answer reads, advance. */
  private complete(n: SimNode): void {
    const rd = n.pending!;
    if (TRACE) trace(`persisted ${n.id}${n.sentEarly ? ' (sent early)' : ''}`);
    n.pending = null;
    n.written = 0;
    if (rd.snapshot) {
      const s = rd.snapshot;
      if (s.data && s.data.length > 0) {
        const st = JSON.parse(dec.decode(s.data)) as { index: number; hash: number };
        this.checkHash(n, st.index, s.metadata.term, st.hash);
        n.appliedHash = st.hash;
      }
      n.appliedIndex = s.metadata.index;
      n.confState = s.metadata.confState;
    }
    if (!n.sentEarly) for (const m of rd.messages) this.send(m);
    if (!n.appliedEarly) for (const e of rd.committedEntries) this.apply(n, e);
    n.sentEarly = false;
    n.appliedEarly = false;
    for (const r of rd.readStates) n.readStates.push(r);
    n.node.advance(rd);
  }

  private checkHash(n: SimNode, index: number, term: number, hash: number): void {
    const h = this.history.get(index);
    if (!h) this.history.set(index, { term, hash });
    else if (h.hash !== hash) {
      this.violations.push({ kind: 'state-machine safety', detail: `node ${n.id} applied a different entry at ${index}` });
    }
  }

  private apply(n: SimNode, e: Entry): void {
    if (TRACE) trace(`apply ${n.id} ${e.index}t${e.term}`);
    if (e.index !== n.appliedIndex + 1) {
      this.violations.push({ kind: 'apply order', detail: `node ${n.id} applied ${e.index} after ${n.appliedIndex} (raft applied ${n.node.raft.log.applied} committed ${n.node.raft.log.committed} first ${n.node.raft.log.firstIndex()} storage snap ${n.storage.snapshot().metadata.index})` });
      if (process.env.RAFT_SIM_DEBUG) throw new Error('apply order');
    }
    n.appliedIndex = e.index;
    n.appliedHash = fnv(n.appliedHash, e.data, e.index);
    this.checkHash(n, e.index, e.term, n.appliedHash);
    if (e.type === EntryType.EntryConfChange || e.type === EntryType.EntryConfChangeV2) {
      const before = members(n.confState);
      n.confState = n.node.applyConfChange(confChangeOfEntry(e));
      // Gone from every part of the configuration (for a joint change: once it is left).
      const after = members(n.confState);
      for (const id of before) if (!after.has(id)) this.removed.add(id);
    } else if (e.data && e.data.length > 0) {
      n.appliedData.push(dec.decode(e.data));
    }
  }

  /** Takes a Ready from the node if it has one and nothing is outstanding. */
  collect(n: SimNode): boolean {
    if (!n.alive || n.pending || !n.node.hasReady()) return false;
    const rd = n.node.ready();
    n.pending = rd;
    n.written = 0;
    n.sentEarly = false;
    n.appliedEarly = false;
    if (rd.softState) n.softLeader = rd.softState.raftState === StateType.Leader;
    if (TRACE) trace(`ready ${n.id} ents ${rd.entries.map((e) => `${e.index}t${e.term}`).join(',')} hs ${rd.hardState ? `t${rd.hardState.term} v${rd.hardState.vote} c${rd.hardState.commit}` : '-'} msgs ${rd.messages.map((m) => `${MessageType[m.type]}>${m.to}`).join(',')}${n.softLeader ? ' (leader)' : ''}`);
    if (rd.softState?.raftState === StateType.Leader) {
      this.onLeader(n);
      if (this.onLeaderHook) this.onLeaderHook(n);
    }
    // A leader may send before its own fsync: its log counts toward commit only once persisted.
    if (n.softLeader && rd.messages.length > 0 && this.earlySendRate > 0 && this.random() < this.earlySendRate) {
      n.sentEarly = true;
      for (const m of rd.messages) this.send(m);
    }
    // Committed entries are durable on a quorum (the leader counts only its persisted log), so
    // they may be applied while this Ready's own writes are still in progress.
    if (!rd.snapshot && rd.committedEntries.length > 0 && this.earlyApplyRate > 0 && this.random() < this.earlyApplyRate) {
      n.appliedEarly = true;
      for (const e of rd.committedEntries) this.apply(n, e);
    }
    return true;
  }

  /** Re-sends a random message sent earlier (possibly from an older term). */
  replayOld(): boolean {
    if (this.sentLog.length === 0) return false;
    const m = this.sentLog[Math.floor(this.random() * this.sentLog.length)];
    this.inflight.push({ m: decodeMessage(encodeMessage(m)), deliverAt: this.now });
    return true;
  }

  private onLeader(n: SimNode): void {
    const r = n.node.raft;
    if (TRACE) trace(`leader ${n.id} term ${r.term} last ${r.log.lastIndex()}t${r.log.lastTerm()} committed ${r.log.committed}`);
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
        this.violations.push({
          kind: 'leader completeness',
          detail: `leader ${n.id} of term ${r.term} lacks committed entry ${i} (term ${h.term}, has ${r.log.term(i)})`,
        });
        return;
      }
    }
  }

  /** Delivers one message that is due (a random one, so delivery reorders). */
  deliverOne(): boolean {
    if (this.inflight.length === 0) return false;
    let k = Math.floor(this.random() * this.inflight.length);
    if (this.inflight[k].deliverAt > this.now) {
      // Take the earliest due one instead.
      k = 0;
      for (let i = 1; i < this.inflight.length; i++) if (this.inflight[i].deliverAt < this.inflight[k].deliverAt) k = i;
    }
    const { m } = this.inflight[k];
    this.inflight[k] = this.inflight[this.inflight.length - 1];
    this.inflight.pop();
    this.deliver(m);
    return true;
  }

  deliver(m: Message): void {
    if (this.filter !== undefined) {
      const f = this.filter(m);
      if (f === undefined) {
        this.onDrop(m);
        return;
      }
      m = f;
    }
    const to = this.nodes.get(m.to);
    if (!to || !to.alive || this.cut.has(`${m.from}>${m.to}`)) {
      this.onDrop(m);
      return;
    }
    this.delivered++;
    if (TRACE && m.type !== MessageType.MsgHeartbeat && m.type !== MessageType.MsgHeartbeatResp) {
      trace(`deliver ${MessageType[m.type]} ${m.from}->${m.to} t${m.term} i${m.index} lt${m.logTerm} c${m.commit}${m.reject ? ' reject' : ''} ents ${m.entries.map((e) => `${e.index}t${e.term}`).join(',')}`);
    }
    try {
      to.node.step(m);
    } catch (e) {
      if (!isRaftError(e, 'StepPeerNotFound')) throw e;
    }
    if (m.type === MessageType.MsgSnap) {
      const from = this.nodes.get(m.from);
      if (from?.alive) from.node.reportSnapshot(m.to, SnapshotStatus.Finish);
    }
  }

  /** Collects and persists Readys and delivers messages until quiet (or the bound is hit). */
  stabilize(maxRounds = 10000): void {
    for (let round = 0; round < maxRounds; round++) {
      let progress = false;
      for (const n of this.nodes.values()) {
        if (this.collect(n)) progress = true;
        if (n.pending) {
          this.persist(n);
          progress = true;
        }
      }
      while (this.inflight.length > 0) {
        this.now += this.maxDelay + 1;
        this.deliverOne();
        progress = true;
      }
      if (!progress) return;
    }
  }

  advanceTime(): void {
    this.now++;
  }

  inFlightCount(): number {
    return this.inflight.length;
  }

  /** Drops every message in flight (e.g. before checking liveness from a clean slate). */
  clearInFlight(): void {
    this.inflight = [];
  }

  tickAll(): void {
    for (const n of this.nodes.values()) if (n.alive) n.node.tick();
  }

  propose(n: SimNode, data: string): boolean {
    try {
      n.node.propose(enc.encode(data));
      return true;
    } catch (e) {
      if (isRaftError(e, 'ProposalDropped')) return false;
      throw e;
    }
  }

  /** Checks log matching across every pair of live nodes' logs. */
  checkLogMatching(): void {
    const list = [...this.nodes.values()];
    for (let a = 0; a < list.length; a++) {
      for (let b = a + 1; b < list.length; b++) {
        const la = list[a].node.raft.log;
        const lb = list[b].node.raft.log;
        const lo = Math.max(la.firstIndex(), lb.firstIndex());
        const hi = Math.min(la.lastIndex(), lb.lastIndex());
        // Find the highest index where terms agree; everything at or below it must be equal.
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
          if (ea[k].term !== eb[k].term || !sameData(ea[k].data, eb[k].data)) {
            this.violations.push({
              kind: 'log matching',
              detail: `nodes ${list[a].id} and ${list[b].id} agree at ${top} but differ at ${ea[k].index}`,
            });
            return;
          }
        }
      }
    }
  }
}

function sameData(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  const la = a?.length ?? 0;
  const lb = b?.length ?? 0;
  if (la !== lb) return false;
  for (let i = 0; i < la; i++) if (a![i] !== b![i]) return false;
  return true;
}
