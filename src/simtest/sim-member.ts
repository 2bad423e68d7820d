/**
 * One member of a simulated cluster: the server's real Ready loop (RaftNode) over an
 * in-memory disk (MemoryWal, MemorySnapshotter), with a state machine that is a running hash
 * of the applied entries. The disk outlives crashes; everything else is one incarnation,
 * rebuilt on restart from what the disk holds (a snapshot and the WAL after it), as
 * server/member.ts restarts from its data dir.
 *
 * Each incarnation's ports are gated: once it has crashed, nothing it still has scheduled
 * (a Ready in progress, a queued snapshot) reaches the disk, the network or the state.
 */
import {
  RaftNode, MemorySnapshotter, MemoryWal, readBackMemory,
  type ApplierPort, type RaftTuning, type SnapshotterPort, type TransportPort, type WalPort,
} from '../server/index.js';
import type { MemoryStorage, Raft } from '../raft/index.js';
import { nopLogger } from '../log/index.js';
import { EntryType, ConfChangeType, encodeConfChange, emptyConfState, type ConfState, type Entry, type Message, type NodeId, type Snapshot } from '../proto/index.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const fnvBasis = 2166136261;

/** What the cluster hears from a member's incarnation (apply order, hashes, leaders, reads). */
export interface MemberHooks {
  send(from: SimMember, m: Message): void;
  applied(n: SimMember, e: Entry, confBefore: ConfState): void;
  restored(n: SimMember, snap: Snapshot, hash: number): void;
  becameLeader(n: SimMember): void;
}

export interface MemberOptions {
  electionTick: number;
  heartbeatTick: number;
  tuning: Partial<RaftTuning>;
}

/** The state machine of one incarnation: a running hash of what it applied. */
interface AppState {
  index: number;
  hash: number;
  confState: ConfState;
}

export class SimMember {
  readonly wal = new MemoryWal();
  readonly snapshotter = new MemorySnapshotter();
  raft!: RaftNode;
  storage!: MemoryStorage;
  alive = false;
  app: AppState = { index: 0, hash: fnvBasis, confState: emptyConfState() };
  /** Data of applied normal entries, in order, for this member's whole life (survives crashes). */
  readonly appliedData: string[] = [];
  readStates: Array<{ ctx: string; index: number }> = [];
  private incarnation = 0;

  constructor(readonly id: NodeId, private readonly opts: MemberOptions, private readonly random: () => number, private readonly hooks: MemberHooks) {
    this.wal.hold();
  }

  get appliedIndex(): number {
    return this.app.index;
  }

  /** Raft's state machine, read-only, for the checks. */
  get r(): Readonly<Raft> {
    return this.raft.inspect();
  }

  /** A founding member's disk: etcd's bootstrap WAL (an AddNode per member, committed at term 1). */
  writeBootstrap(ids: readonly NodeId[]): void {
    const entries: Entry[] = ids.map((nodeId, i) => ({
      term: 1, index: i + 1, type: EntryType.EntryConfChange,
      data: encodeConfChange({ type: ConfChangeType.ConfChangeAddNode, nodeId, id: 0n }),
    }));
    void this.wal.save({ term: 1, vote: 0n, commit: entries.length }, entries, true);
    this.wal.completeNext();
  }

  /** (Re)starts from what the disk holds. */
  start(): void {
    const inc = ++this.incarnation;
    const live = (): boolean => this.alive && inc === this.incarnation;
    const { storage, snapshot } = readBackMemory(this.wal, this.snapshotter);
    this.storage = storage;
    this.app = { index: snapshot?.metadata.index ?? 0, hash: snapshot ? hashOf(snapshot) : fnvBasis, confState: snapshot?.metadata.confState ?? emptyConfState() };
    this.readStates = [];
    this.raft = new RaftNode({
      id: this.id, storage, applied: this.app.index,
      electionTick: this.opts.electionTick, heartbeatTick: this.opts.heartbeatTick, tuning: this.opts.tuning,
      random: this.random,
      wal: gatedWal(this.wal, live), snapshotter: gatedSnapshotter(this.snapshotter, live),
      transport: this.transport(live), applier: this.applier(live),
      events: {
        leaderChanged: (_leader, isLeader) => { if (isLeader && live()) this.hooks.becameLeader(this); },
        readState: (ctx, index) => { if (live()) this.readStates.push({ ctx: dec.decode(ctx), index }); },
      },
      log: nopLogger(),
    });
    this.alive = true;
    this.raft.start();
  }

  /**
   * Stops this incarnation: the first `keepRecords` of its pending WAL records reached the
   * disk, the rest (and everything in memory) is lost.
   */
  crash(keepRecords: number): void {
    if (!this.alive) return;
    this.alive = false;
    this.wal.crash(keepRecords);
    void this.raft.stop();
  }

  /** Snapshots the applied state between Readies and compacts the log, keeping `keep` entries. */
  snapshot(keep: number): void {
    if (!this.alive) return;
    const raft = this.raft;
    const storage = this.storage;
    const app = this.app;
    void raft.exclusive(async () => {
      if (raft !== this.raft || !this.alive || app.index <= storage.snapshot().metadata.index) return;
      await raft.snapshot(enc.encode(JSON.stringify({ index: app.index, hash: app.hash })), keep);
    });
  }

  private transport(live: () => boolean): TransportPort {
    const send = (ms: readonly Message[]): void => { if (live()) for (const m of ms) this.hooks.send(this, m); };
    return { send, sendSnapshot: (m) => send([m]) };
  }

  private applier(live: () => boolean): ApplierPort {
    const apply = (e: Entry, confState?: ConfState): void => {
      if (!live()) return;
      const before = this.app.confState;
      this.app.index = e.index;
      this.app.hash = fnv(this.app.hash, e.data, e.index);
      if (confState) this.app.confState = confState;
      else if (e.data && e.data.length > 0) this.appliedData.push(dec.decode(e.data));
      this.hooks.applied(this, e, before);
    };
    return {
      apply,
      // Raft hears every change, even in an incarnation that has crashed (its loop is abandoned).
      applyConfChange: (e, cc, toRaft) => apply(e, toRaft(cc)),
      restore: (snap) => {
        if (!live()) return Promise.resolve();
        const hash = hashOf(snap);
        this.app = { index: snap.metadata.index, hash, confState: snap.metadata.confState };
        this.hooks.restored(this, snap, hash);
        return Promise.resolve();
      },
    };
  }
}

function hashOf(snap: Snapshot): number {
  return (JSON.parse(dec.decode(snap.data)) as { hash: number }).hash;
}

export function fnv(h: number, data: Uint8Array | undefined, index: number): number {
  h ^= index;
  h = Math.imul(h, 16777619) >>> 0;
  if (data) for (let i = 0; i < data.length; i++) h = Math.imul(h ^ data[i]!, 16777619) >>> 0;
  return h;
}

const never = new Promise<void>(() => undefined);

function gatedWal(wal: MemoryWal, live: () => boolean): WalPort {
  return {
    save: (hs, ents, sync) => (live() ? wal.save(hs, ents, sync) : never),
    saveSnapshot: (s) => (live() ? wal.saveSnapshot(s) : never),
  };
}

function gatedSnapshotter(s: MemorySnapshotter, live: () => boolean): SnapshotterPort {
  return { save: (snap) => (live() ? s.save(snap) : never) };
}
