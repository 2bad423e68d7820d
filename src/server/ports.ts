/**
 * What the Ready loop (raft-node.ts) needs from the outside world, as interfaces: the WAL,
 * the snapshotter, the transport to peers and the applier. The real implementations are
 * wal/'s `Wal` and `Snapshotter` (they satisfy these shapes structurally) and the server's
 * applier; in-memory ones (memory-ports.ts) let tests and simulations drive the real loop.
 */
import type { ConfChangeV2, ConfState, Entry, HardState, Message, Snapshot } from '../proto/index.js';

/** Durable log of raft's entries and hard state. */
export interface WalPort {
  /** Appends entries and the hard state; resolves once they are durable (when mustSync). */
  save(hardState: HardState | undefined, entries: readonly Entry[], mustSync: boolean): Promise<void>;
  /**
   * The same save, started on this thread: true when it is done before returning (the thread
   * waited for the fdatasync); a promise when it is written but its sync outlasted the time
   * the thread may wait (durable once the promise resolves); false when it cannot be done
   * right now (then nothing was written). Optional: the loop falls back to save().
   */
  saveNow?(hardState: HardState | undefined, entries: readonly Entry[], mustSync: boolean): boolean | Promise<void>;
  /** Records that a snapshot at {index, term} exists, so a restart can start from it. */
  saveSnapshot(snap: { index: number; term: number }): Promise<void>;
}

/** Durable store of raft snapshots. */
export interface SnapshotterPort {
  save(snapshot: Snapshot): Promise<void>;
}

/** Messages to peers. Sends are fire-and-forget: raft retries what is lost. */
export interface TransportPort {
  send(messages: readonly Message[]): void;
  /** A MsgSnap, which carries a whole snapshot and travels apart from the message stream. */
  sendSnapshot(message: Message): void;
}

/**
 * The state machine. It receives every committed entry exactly once, in index order: conf
 * changes through `applyConfChange`, every other entry (empty ones too) through `apply`.
 * Neither may await: apply is synchronous on the loop.
 */
export interface ApplierPort {
  apply(entry: Entry): void;
  /**
   * A conf-change entry (`cc` is its change as a ConfChangeV2). The applier decides, from
   * the log alone (etcd validates against the membership of that point), what raft applies,
   * and calls `toRaft` exactly once with it: `cc` itself, or a change raft ignores.
   */
  applyConfChange(entry: Entry, cc: ConfChangeV2, toRaft: (cc: ConfChangeV2) => ConfState): void;
  /**
   * Replaces the whole state machine with a leader's snapshot (durable by then), whose index
   * is past everything applied; entries after it are applied next.
   */
  restore(snapshot: Snapshot): Promise<void>;
}
