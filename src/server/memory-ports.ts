/**
 * In-memory implementations of the Ready loop's ports (ports.ts), for tests and for
 * simulations that run the real loop: a WAL that remembers what it was given (and can hold
 * saves back, to control when they become durable, or lose them in a crash), a snapshotter,
 * what a restarting member reads back from them, and a network that delivers messages
 * between RaftNodes of one process, with links that can be cut.
 */
import { strict as assert } from 'node:assert';
import { MemoryStorage } from '../raft/index.js';
import type { Entry, HardState, Message, NodeId, Snapshot } from '../proto/index.js';
import type { SnapshotterPort, TransportPort, WalPort } from './ports.js';

/** One WAL write not yet durable: a Ready's entries then its hard state, or a snapshot record. */
type PendingWrite =
  | { kind: 'save'; hardState: HardState | undefined; entries: readonly Entry[]; done: () => void }
  | { kind: 'snapshot'; snap: { index: number; term: number }; done: () => void };

/** A WAL in memory. `hold()` keeps later writes pending until released or lost in crash(). */
export class MemoryWal implements WalPort {
  hardState: HardState | undefined;
  readonly entries: Entry[] = [];
  readonly snapshots: Array<{ index: number; term: number }> = [];
  saves = 0;
  /** Saves done by saveNow, and the entries they carried. */
  blockingSaves = 0;
  blockingEntries = 0;
  /** Whether saveNow writes (true, as the real WAL when idle) or always declines. */
  blocking = true;
  /**
   * While holding, saveNow declines (a slow disk), unless no write is pending and this says
   * yes: an idle disk, the write durable when saveNow returns (simulations choose per call).
   */
  writesNowWhenIdle: (() => boolean) | undefined;
  /**
   * saveNow starts the write but its sync outlasts the loop's budget (the real WAL's late
   * sync): it returns a promise and the write stays pending, as under hold(), until released.
   */
  syncsLate = false;
  /** saveNow calls that returned a promise. */
  lateSaves = 0;
  private held: PendingWrite[] | undefined;

  save(hardState: HardState | undefined, entries: readonly Entry[], _mustSync: boolean): Promise<void> {
    if (this.held) {
      const held = this.held;
      return new Promise((resolve) => held.push({ kind: 'save', hardState, entries, done: resolve }));
    }
    this.writeEntries(entries);
    if (hardState) this.hardState = hardState;
    this.saves++;
    return new Promise((resolve) => setImmediate(resolve));
  }

  /** save() done at once, as the real WAL's saveNow; not while holding (then false, but see writesNowWhenIdle and syncsLate). */
  saveNow(hardState: HardState | undefined, entries: readonly Entry[], _mustSync: boolean): boolean | Promise<void> {
    if (!this.blocking) return false;
    if (this.syncsLate && !this.held?.length) {
      this.hold();
      this.lateSaves++;
      const held = this.held!;
      return new Promise((resolve) => held.push({ kind: 'save', hardState, entries, done: resolve }));
    }
    if (this.held && (this.held.length > 0 || this.writesNowWhenIdle?.() !== true)) return false;
    this.writeEntries(entries);
    if (hardState) this.hardState = hardState;
    this.saves++;
    this.blockingSaves++;
    this.blockingEntries += entries.length;
    return true;
  }

  saveSnapshot(snap: { index: number; term: number }): Promise<void> {
    if (this.held) {
      const held = this.held;
      return new Promise((resolve) => held.push({ kind: 'snapshot', snap, done: resolve }));
    }
    this.snapshots.push(snap);
    return Promise.resolve();
  }

  /** From now on writes stay pending (not durable) until released. */
  hold(): void {
    this.held ??= [];
  }

  /** Completes every pending write, in order, and stops holding. */
  release(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const w of held) this.complete(w);
  }

  /** Completes the oldest pending write (it becomes durable), still holding later ones. */
  completeNext(): boolean {
    const w = this.held?.shift();
    if (w) this.complete(w);
    return w !== undefined;
  }

  /** Writes waiting to become durable. */
  get pending(): number {
    return this.held?.length ?? 0;
  }

  /** Records the pending writes make, in WAL order (entries, hard state, snapshot records). */
  get pendingRecords(): number {
    let n = 0;
    for (const w of this.held ?? []) n += w.kind === 'snapshot' ? 1 : w.entries.length + (w.hardState ? 1 : 0);
    return n;
  }

  /**
   * A crash: the first `keepRecords` pending records reached the disk (a torn write keeps a
   * prefix), the rest is lost. Pending writes never complete; the WAL keeps holding.
   */
  crash(keepRecords: number): void {
    let left = keepRecords;
    for (const w of this.held ?? []) {
      if (left <= 0) break;
      if (w.kind === 'snapshot') {
        this.snapshots.push(w.snap);
        left--;
        continue;
      }
      const kept = w.entries.slice(0, left);
      this.writeEntries(kept);
      left -= kept.length;
      if (left > 0 && w.hardState) {
        this.hardState = w.hardState;
        left--;
      }
    }
    if (this.held) this.held = [];
  }

  private complete(w: PendingWrite): void {
    if (w.kind === 'snapshot') this.snapshots.push(w.snap);
    else {
      this.writeEntries(w.entries);
      if (w.hardState) this.hardState = w.hardState;
      this.saves++;
    }
    w.done();
  }

  private writeEntries(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    // A new leader may overwrite an uncommitted tail: drop what follows the first new index.
    const first = entries[0]!.index;
    while (this.entries.length > 0 && this.entries[this.entries.length - 1]!.index >= first) this.entries.pop();
    this.entries.push(...entries);
  }
}

export class MemorySnapshotter implements SnapshotterPort {
  readonly saved: Snapshot[] = [];

  save(snapshot: Snapshot): Promise<void> {
    this.saved.push(snapshot);
    return Promise.resolve();
  }
}

/**
 * What a restarting member reads back, as member.ts does from disk: the newest snapshot the
 * WAL records whose index the durable hard state has committed (etcd's ValidSnapshotEntries),
 * then the hard state and the WAL's entries that follow the snapshot without a gap (a torn
 * write may leave entries behind a lost one; they were never acknowledged).
 */
export function readBackMemory(wal: MemoryWal, snapshotter: MemorySnapshotter): { storage: MemoryStorage; snapshot: Snapshot | undefined } {
  const storage = new MemoryStorage();
  const commit = wal.hardState?.commit ?? 0;
  let snapshot: Snapshot | undefined;
  for (const s of snapshotter.saved) {
    const { index, term } = s.metadata;
    if (index > commit || (snapshot && snapshot.metadata.index >= index)) continue;
    if (wal.snapshots.some((w) => w.index === index && w.term === term)) snapshot = s;
  }
  const from = snapshot?.metadata.index ?? 0;
  if (snapshot) storage.applySnapshot(snapshot);
  if (wal.hardState) storage.setHardState(wal.hardState);
  const start = wal.entries.findIndex((e) => e.index === from + 1);
  if (start >= 0) {
    let end = start + 1;
    while (end < wal.entries.length && wal.entries[end]!.index === wal.entries[end - 1]!.index + 1) end++;
    storage.append(wal.entries.slice(start, end));
  }
  return { storage, snapshot };
}

/**
 * Members of one process exchanging messages. Each delivery happens on a later event-loop
 * turn (as over a socket), and is dropped when the link is cut.
 */
export class MemoryNetwork {
  private readonly nodes = new Map<NodeId, { step(m: Message): void }>();
  private readonly cut = new Set<string>();
  /** Messages delivered so far. */
  delivered = 0;

  /** The transport for member `id`; `receiver` gets the messages sent to it. */
  join(id: NodeId, receiver: { step(m: Message): void }): void {
    assert.ok(!this.nodes.has(id), `member ${id} joined twice`);
    this.nodes.set(id, receiver);
  }

  transport(from: NodeId): TransportPort {
    const deliver = (messages: readonly Message[]): void => {
      for (const m of messages) {
        assert.equal(m.from, from, 'a member sends only its own messages');
        if (this.cut.has(linkKey(m.from, m.to))) continue;
        setImmediate(() => {
          const to = this.nodes.get(m.to);
          if (!to || this.cut.has(linkKey(m.from, m.to))) return;
          this.delivered++;
          to.step(m);
        });
      }
    };
    return { send: deliver, sendSnapshot: (m) => deliver([m]) };
  }

  /** Cuts both directions between a and b. */
  partition(a: NodeId, b: NodeId): void {
    this.cut.add(linkKey(a, b));
    this.cut.add(linkKey(b, a));
  }

  heal(): void {
    this.cut.clear();
  }
}

function linkKey(from: NodeId, to: NodeId): string {
  return `${from}>${to}`;
}
