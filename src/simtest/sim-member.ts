/**
 * One member of a simulated cluster: the server's real Ready loop (RaftNode) over an
 * in-memory disk (MemoryWal, MemorySnapshotter). Its state machine is a running hash of the
 * applied entries, and in `kv` mode also the server's real Applier over MVCC on LMDB
 * (kv-disk.ts), whose store hash the cluster compares across members. The disk outlives crashes; everything else is one incarnation,
 * rebuilt on restart from what the disk holds (a snapshot and the WAL after it), as
 * server/member.ts restarts from its data dir.
 *
 * Each incarnation's ports are gated: once it has crashed, nothing it still has scheduled
 * (a Ready in progress, a queued snapshot) reaches the disk, the network or the state.
 */
import {
  RaftNode, MemorySnapshotter, MemoryWal, readBackMemory,
  memberToJson, testMemberOf,
  type ApplierPort, type RaftTuning, type SnapshotterPort, type TransportPort, type WalPort,
} from '../server/index.js';
import { KvDisk } from './kv-disk.js';
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
  /** kv mode: the MVCC store's hash right after applying entry `index` (sampled). */
  stateHash(n: SimMember, index: number, hash: number): void;
}

export interface MemberOptions {
  electionTick: number;
  heartbeatTick: number;
  tuning: Partial<RaftTuning>;
  /** kv mode: the directory of the members' LMDB backends (one file per member). */
  kvDir?: string;
  /** kv mode: hash the store after every entry whose index is a multiple of this. */
  hashEvery?: number;
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
  /** kv mode: the LMDB backend, which outlives crashes like the WAL. */
  readonly disk: KvDisk | undefined;
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
    // Half the writes made while the disk is idle are done at once (the loop's saveNow, as
    // a follower's and a light-loaded leader's are), the rest wait for persistSome.
    this.wal.writesNowWhenIdle = () => this.random() < 0.5;
    this.disk = opts.kvDir !== undefined ? new KvDisk(id, `${opts.kvDir}/${id}.lmdb`) : undefined;
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
      data: encodeConfChange({ type: ConfChangeType.ConfChangeAddNode, nodeId, id: 0n, context: Buffer.from(memberToJson(testMemberOf(nodeId))) }),
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
    this.disk?.open();
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
    this.disk?.crash();
    void this.raft.stop();
  }

  /** Snapshots the applied state between Readies and compacts the log, keeping `keep` entries. */
  snapshot(keep: number): void {
    if (!this.alive) return;
    if (this.disk) {
      // The applier cannot install a leader's snapshot yet (Applier.restore refuses), so the
      // log is never compacted here; what a server's snapshot does to the backend remains.
      this.disk.forceCommit();
      return;
    }
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
    const record = (e: Entry, confState?: ConfState): void => {
      const before = this.app.confState;
      this.app.index = e.index;
      this.app.hash = fnv(this.app.hash, e.data, e.index);
      if (confState) this.app.confState = confState;
      else if (e.data && e.data.length > 0) this.appliedData.push(Buffer.from(e.data).toString('latin1'));
      this.hooks.applied(this, e, before);
    };
    return {
      apply: (e) => {
        if (!live()) return;
        this.disk?.kv.applier.apply(e);
        record(e);
        this.sampleStateHash(e.index);
      },
      applyConfChange: (e, cc, toRaft) => {
        // Raft hears every change, even in an incarnation that has crashed (its loop is abandoned).
        if (!live()) return void toRaft(cc);
        if (!this.disk) return record(e, toRaft(cc));
        // The real applier validates the change against the membership and tells raft.
        let confState: ConfState | undefined;
        this.disk.kv.applier.applyConfChange(e, cc, (c) => (confState = toRaft(c)));
        record(e, confState!);
      },
      restore: (snap) => {
        if (!live()) return Promise.resolve();
        if (this.disk) return this.disk.kv.applier.restore(snap);
        const hash = hashOf(snap);
        this.app = { index: snap.metadata.index, hash, confState: snap.metadata.confState };
        this.hooks.restored(this, snap, hash);
        return Promise.resolve();
      },
    };
  }

  /** Reports the store's hash after entry `index`, when this incarnation applied it (not a skipped replay). */
  private sampleStateHash(index: number): void {
    const every = this.opts.hashEvery ?? 1;
    const store = this.disk?.kv.store;
    if (!store || index % every !== 0 || store.consistentIndex() !== index) return;
    this.hooks.stateHash(this, index, store.hash().hash);
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
    // A dead member's write never completes: it cannot be done at once either.
    saveNow: (hs, ents, sync) => live() && wal.saveNow(hs, ents, sync),
    saveSnapshot: (s) => (live() ? wal.saveSnapshot(s) : never),
  };
}

function gatedSnapshotter(s: MemorySnapshotter, live: () => boolean): SnapshotterPort {
  return { save: (snap) => (live() ? s.save(snap) : never) };
}
