/**
 * The raft log's stable storage: what the application has persisted, as raft reads it back.
 * MemoryStorage is the in-memory mirror the server keeps beside its WAL (as etcd does): the
 * caller appends each Ready's entries, hard state and snapshot to it before advance().
 */
import {
  type ConfState,
  type Entry,
  type HardState,
  type Snapshot,
  emptyConfState,
  emptyHardState,
  emptySnapshot,
  sizeEntry,
} from '../proto/index.js';
import { RaftError } from './errors.js';
import { PayloadArena } from './payload-arena.js';

export interface InitialState {
  hardState: HardState;
  confState: ConfState;
}

export interface Storage {
  /** Saved hard state and the membership as of the last snapshot (entries after it replay theirs). */
  initialState(): InitialState;
  /** Entries in [lo, hi), at least one even when over maxSize. Throws Compacted / Unavailable. */
  entries(lo: number, hi: number, maxSize: number): Entry[];
  /** Term of entry i; valid for firstIndex()-1 ..= lastIndex(). Throws Compacted / Unavailable. */
  term(i: number): number;
  lastIndex(): number;
  /** Index of the first entry still available (the one after the snapshot). */
  firstIndex(): number;
  /** The most recent snapshot. May throw SnapshotTemporarilyUnavailable. */
  snapshot(): Snapshot;
}

/** Leading entries of `ents` whose summed encoded size stays within maxSize (at least one). */
export function limitSize(ents: Entry[], maxSize: number): Entry[] {
  if (ents.length <= 1) return ents;
  let size = sizeEntry(ents[0]);
  let n = 1;
  for (; n < ents.length; n++) {
    size += sizeEntry(ents[n]);
    if (size > maxSize) break;
  }
  return n === ents.length ? ents : ents.slice(0, n);
}

/**
 * Entries are held as copies whose payloads live in a PayloadArena (see there why), never as
 * the objects handed to append(): the log keeps no part of a caller's message or read buffer.
 */
export class MemoryStorage implements Storage {
  private hardState: HardState = emptyHardState();
  private snap: Snapshot = emptySnapshot();
  /** ents[0] is a dummy holding the snapshot's index and term; real entries follow it. */
  private ents: Entry[] = [{ term: 0, index: 0, type: 0 }];
  /** The payloads of ents; replaced (the kept entries copied over) at each compaction. */
  private arena = new PayloadArena();

  initialState(): InitialState {
    return { hardState: { ...this.hardState }, confState: this.snap.metadata.confState ?? emptyConfState() };
  }

  setHardState(hs: HardState): void {
    this.hardState = { term: hs.term, vote: hs.vote, commit: hs.commit };
  }

  entries(lo: number, hi: number, maxSize: number): Entry[] {
    const offset = this.ents[0].index;
    if (lo <= offset) throw new RaftError('Compacted');
    if (hi > this.lastIndex() + 1) {
      throw new Error(`raft: entries' hi(${hi}) is out of bound lastindex(${this.lastIndex()})`);
    }
    if (this.ents.length === 1) throw new RaftError('Unavailable');
    return limitSize(this.ents.slice(lo - offset, hi - offset), maxSize);
  }

  term(i: number): number {
    const offset = this.ents[0].index;
    if (i < offset) throw new RaftError('Compacted');
    if (i - offset >= this.ents.length) throw new RaftError('Unavailable');
    return this.ents[i - offset].term;
  }

  lastIndex(): number {
    return this.ents[0].index + this.ents.length - 1;
  }

  firstIndex(): number {
    return this.ents[0].index + 1;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Replaces the contents with a snapshot (a follower restoring from its leader). */
  applySnapshot(snap: Snapshot): void {
    if (this.snap.metadata.index >= snap.metadata.index) throw new RaftError('SnapOutOfDate');
    this.snap = snap;
    this.ents = [{ term: snap.metadata.term, index: snap.metadata.index, type: 0 }];
    this.arena = new PayloadArena();
  }

  /**
   * Records a snapshot of the applied state at index i (i must be at most the applied index,
   * which the caller knows). Log entries stay until compact().
   */
  createSnapshot(i: number, cs: ConfState | undefined, data: Uint8Array): Snapshot {
    if (i <= this.snap.metadata.index) throw new RaftError('SnapOutOfDate');
    const offset = this.ents[0].index;
    if (i > this.lastIndex()) throw new Error(`raft: snapshot ${i} is out of bound lastindex(${this.lastIndex()})`);
    this.snap = {
      data,
      metadata: { index: i, term: this.ents[i - offset].term, confState: cs ?? this.snap.metadata.confState },
    };
    return this.snap;
  }

  /** Discards entries up to and including compactIndex (which must be applied and <= lastIndex). */
  compact(compactIndex: number): void {
    const offset = this.ents[0].index;
    if (compactIndex <= offset) throw new RaftError('Compacted');
    if (compactIndex > this.lastIndex()) {
      throw new Error(`raft: compact ${compactIndex} is out of bound lastindex(${this.lastIndex()})`);
    }
    const i = compactIndex - offset;
    const kept: Entry[] = [{ term: this.ents[i].term, index: this.ents[i].index, type: 0 }];
    // The kept tail moves to a fresh arena, so the old one's chunks can be freed whole.
    this.arena = new PayloadArena();
    for (let k = i + 1; k < this.ents.length; k++) kept.push(this.held(this.ents[k]));
    this.ents = kept;
  }

  /** Appends entries, replacing any conflicting suffix. Entries must be contiguous. */
  append(entries: Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[0].index + entries.length - 1;
    if (last < first) return; // all already compacted
    // Drop the part already covered by the snapshot.
    if (first > entries[0].index) entries = entries.slice(first - entries[0].index);
    const offset = entries[0].index - this.ents[0].index;
    if (offset > this.ents.length) {
      throw new Error(`raft: missing log entry [last: ${this.lastIndex()}, append at: ${entries[0].index}]`);
    }
    // Truncates the conflicting suffix (its payloads stay in the arena until the next compaction).
    if (offset < this.ents.length) this.ents.length = offset;
    for (let k = 0; k < entries.length; k++) this.ents.push(this.held(entries[k]));
  }

  /** The copy of `e` the log keeps: its payload in the arena. */
  private held(e: Entry): Entry {
    // No data field where the caller's entry has none (Go's nil; tests compare entries deeply).
    if (e.data === undefined) return { term: e.term, index: e.index, type: e.type };
    return { term: e.term, index: e.index, type: e.type, data: this.arena.copy(e.data) };
  }
}
