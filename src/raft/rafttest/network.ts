/**
 * raft's own unit-test network (as etcd-io/raft's `network` in raft_test.go): RawNodes with
 * MemoryStorage as their disk, each Ready persisted, sent and applied at once, messages
 * delivered in order unless a link is cut. Deterministic and synchronous, for tests of the
 * consensus rules and for bench/raft.ts. It is no model of the server: the server's Ready
 * loop, with its crashes and slow disks, is what simtest/ exercises.
 *
 * The application state is the applied index and a running hash (checked against one global
 * history: a mismatch is recorded in `violations`) plus the applied data.
 */
import {
  type ConfState, type Entry, type Message, type NodeId,
  EntryType, MessageType, decodeMessage, encodeMessage, emptyConfState,
} from '../../proto/index.js';
import { isRaftError } from '../errors.js';
import { StateType, confChangeOfEntry } from '../raft.js';
import { RawNode, SnapshotStatus, type Ready } from '../rawnode.js';
import type { ReadState } from '../readindex.js';
import { MemoryStorage } from '../storage.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

export interface NodeOptions {
  electionTick?: number;
  heartbeatTick?: number;
  checkQuorum?: boolean;
  preVote?: boolean;
  maxSizePerMsg?: number;
  maxInflightMsgs?: number;
}

function fnv(h: number, data: Uint8Array | undefined, index: number): number {
  h ^= index;
  h = Math.imul(h, 16777619) >>> 0;
  if (data) for (let i = 0; i < data.length; i++) h = Math.imul(h ^ data[i]!, 16777619) >>> 0;
  return h;
}

export class TestNode {
  node!: RawNode;
  alive = true;
  appliedIndex = 0;
  appliedHash = 2166136261;
  confState: ConfState = emptyConfState();
  readStates: ReadState[] = [];
  /** Data of applied normal entries, in order. */
  appliedData: string[] = [];

  constructor(readonly id: NodeId, readonly opts: NodeOptions, private readonly random: () => number, readonly storage = new MemoryStorage()) {
    this.start();
  }

  /** (Re)creates the RawNode from its storage (which every Ready reached in full). */
  start(): void {
    const snap = this.storage.snapshot();
    this.appliedIndex = snap.metadata.index;
    this.confState = snap.metadata.confState;
    this.appliedHash = snap.data && snap.data.length > 0 ? (JSON.parse(dec.decode(snap.data)) as { hash: number }).hash : 2166136261;
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
    this.alive = true;
  }

  crash(): void {
    this.alive = false;
  }

  /** Snapshots the applied state and compacts the log, keeping `keep` entries. */
  snapshotAndCompact(keep = 0): void {
    const i = this.appliedIndex;
    if (i <= this.storage.snapshot().metadata.index || i > this.storage.lastIndex()) return;
    this.storage.createSnapshot(i, this.confState, enc.encode(JSON.stringify({ index: i, hash: this.appliedHash })));
    if (i - keep > this.storage.firstIndex()) this.storage.compact(i - keep);
  }
}

export class TestNetwork {
  readonly nodes = new Map<NodeId, TestNode>();
  private queue: Message[] = [];
  private readonly cut = new Set<string>();
  readonly violations: string[] = [];
  /** For each applied index, the running hash after it (state-machine safety). */
  private readonly history = new Map<number, number>();
  /** Pass messages through encode/decode (off in benchmarks that measure raft alone). */
  serialize = true;

  constructor(private readonly random: () => number) {}

  /** A bootstrapped group of the given ids. */
  static cluster(ids: NodeId[], random: () => number, nodeOpts: NodeOptions = {}): TestNetwork {
    const net = new TestNetwork(random);
    for (const id of ids) {
      const n = new TestNode(id, nodeOpts, random);
      n.node.bootstrap(ids.map((p) => ({ id: p })));
      net.nodes.set(id, n);
    }
    return net;
  }

  /** A fresh, empty node (not yet in the configuration: the leader brings it in). */
  addEmptyNode(id: NodeId, nodeOpts: NodeOptions = {}): TestNode {
    const n = new TestNode(id, nodeOpts, this.random);
    this.nodes.set(id, n);
    return n;
  }

  node(id: NodeId): TestNode {
    return this.nodes.get(id)!;
  }

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.cut.add(`${id}>${other}`);
      this.cut.add(`${other}>${id}`);
    }
  }

  heal(): void {
    this.cut.clear();
  }

  leader(): TestNode | undefined {
    let best: TestNode | undefined;
    for (const n of this.nodes.values()) {
      if (n.alive && n.node.raft.state === StateType.Leader && (!best || n.node.raft.term > best.node.raft.term)) best = n;
    }
    return best;
  }

  tickAll(): void {
    for (const n of this.nodes.values()) if (n.alive) n.node.tick();
  }

  propose(n: TestNode, data: string): boolean {
    try {
      n.node.propose(enc.encode(data));
      return true;
    } catch (e) {
      if (isRaftError(e, 'ProposalDropped')) return false;
      throw e;
    }
  }

  /** Handles every node's Readies and delivers messages until quiet (bounded). */
  stabilize(maxRounds = 10000): void {
    for (let round = 0; round < maxRounds; round++) {
      let progress = false;
      for (const n of this.nodes.values()) {
        while (n.alive && n.node.hasReady()) {
          this.handleReady(n);
          progress = true;
        }
      }
      const q = this.queue;
      this.queue = [];
      for (const m of q) this.deliver(m);
      if (q.length > 0) progress = true;
      if (!progress) return;
    }
  }

  /** Persists, sends and applies a Ready (by default the node's next one), then advances. */
  handleReady(n: TestNode, rd: Ready = n.node.ready()): void {
    if (rd.snapshot) {
      n.storage.applySnapshot(rd.snapshot);
      const s = rd.snapshot;
      n.appliedHash = (JSON.parse(dec.decode(s.data)) as { hash: number }).hash;
      n.appliedIndex = s.metadata.index;
      n.confState = s.metadata.confState;
      this.check(n, n.appliedIndex);
    }
    if (rd.hardState) n.storage.setHardState(rd.hardState);
    if (rd.entries.length > 0) n.storage.append(rd.entries);
    for (const m of rd.messages) this.queue.push(this.serialize ? decodeMessage(encodeMessage(m)) : m);
    for (const e of rd.committedEntries) this.apply(n, e);
    n.readStates.push(...rd.readStates);
    n.node.advance(rd);
  }

  private apply(n: TestNode, e: Entry): void {
    if (e.index !== n.appliedIndex + 1) this.violations.push(`node ${n.id} applied ${e.index} after ${n.appliedIndex}`);
    n.appliedIndex = e.index;
    n.appliedHash = fnv(n.appliedHash, e.data, e.index);
    this.check(n, e.index);
    if (e.type === EntryType.EntryConfChange || e.type === EntryType.EntryConfChangeV2) n.confState = n.node.applyConfChange(confChangeOfEntry(e));
    else if (e.data && e.data.length > 0) n.appliedData.push(dec.decode(e.data));
  }

  private check(n: TestNode, index: number): void {
    const h = this.history.get(index);
    if (h === undefined) this.history.set(index, n.appliedHash);
    else if (h !== n.appliedHash) this.violations.push(`state-machine safety: node ${n.id} applied a different entry at ${index}`);
  }

  private deliver(m: Message): void {
    const to = this.nodes.get(m.to);
    const from = this.nodes.get(m.from);
    const delivered = !!to?.alive && !this.cut.has(`${m.from}>${m.to}`);
    if (delivered) {
      try {
        to.node.step(m);
      } catch (e) {
        if (!isRaftError(e, 'StepPeerNotFound')) throw e;
      }
    }
    // The transport tells the leader whether a snapshot made it, as etcd's does.
    if (m.type === MessageType.MsgSnap && from?.alive) from.node.reportSnapshot(m.to, delivered ? SnapshotStatus.Finish : SnapshotStatus.Failure);
  }
}
