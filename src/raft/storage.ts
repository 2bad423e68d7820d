/**
 * The raft log's stable storage: what the application has persisted, as raft reads it back.
 * MemoryStorage is the in-memory mirror the server keeps beside its WAL (as etcd does): the
 * caller appends each Ready's entries, hard state and snapshot to it before advance().
 */
import {
  type ConfState,
  type Entry,
  type EntryType,
  type HardState,
  type Snapshot,
  emptyConfState,
  emptyHardState,
  emptySnapshot,
  sizeEntry,
} from '../proto/index.js';
import { RaftError } from './errors.js';
import { PayloadArena } from './payload-arena.js';
import { NumberColumn, columnOf } from './number-column.js';

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

/** payloads[k] for an entry without data (Go's nil). */
const noPayload = -1;
/** payloads[k] for an entry with empty data (kept in emptyPayloads: nothing to copy). */
const emptyPayload = -2;

/**
 * Entries are held as copies whose payloads live in a PayloadArena (see there why), never as
 * the objects handed to append(): the log keeps no part of a caller's message or read buffer.
 *
 * Held as columns of numbers (term, type, where the payload is, its length), not as an Entry
 * object and a Uint8Array view per entry: the log holds every entry since the last snapshot
 * (up to --snapshot-count), so each of those ~150 B of objects outlived the young generation
 * and was promoted, one per put, for the old generation's collector to trace and free later
 * (issue 14: the main thread's GC pauses). entries() makes the Entry objects a caller reads,
 * which die young.
 */
export class MemoryStorage implements Storage {
  private hardState: HardState = emptyHardState();
  private snap: Snapshot = emptySnapshot();
  /** Index of the first column slot: a dummy holding the snapshot's index and term; real entries follow it. */
  private offset = 0;
  private terms: NumberColumn = columnOf(0);
  private types: NumberColumn = columnOf(0);
  /** Where each entry's payload is in the arena, or noPayload / emptyPayload. */
  private payloads: NumberColumn = columnOf(noPayload);
  private lengths: NumberColumn = columnOf(0);
  /** The empty payloads appended (rare), by entry index: returned as they were given, as Go's []byte{}. */
  private readonly emptyPayloads = new Map<number, Uint8Array>();
  /** The payloads of the entries (a compaction drops its chunks before the first kept one). */
  private arena = new PayloadArena();

  initialState(): InitialState {
    return { hardState: { ...this.hardState }, confState: this.snap.metadata.confState ?? emptyConfState() };
  }

  setHardState(hs: HardState): void {
    this.hardState = { term: hs.term, vote: hs.vote, commit: hs.commit };
  }

  entries(lo: number, hi: number, maxSize: number): Entry[] {
    const offset = this.offset;
    if (lo <= offset) throw new RaftError('Compacted');
    if (hi > this.lastIndex() + 1) {
      throw new Error(`raft: entries' hi(${hi}) is out of bound lastindex(${this.lastIndex()})`);
    }
    if (this.terms.length === 1) throw new RaftError('Unavailable');
    // limitSize's rule, made as we go: at least one entry, then while the sizes fit in maxSize.
    const out: Entry[] = [];
    let size = 0;
    for (let i = lo; i < hi; i++) {
      const e = this.entryAt(i - offset);
      size += sizeEntry(e);
      if (out.length > 0 && size > maxSize) break;
      out.push(e);
    }
    return out;
  }

  term(i: number): number {
    const offset = this.offset;
    if (i < offset) throw new RaftError('Compacted');
    if (i - offset >= this.terms.length) throw new RaftError('Unavailable');
    return this.terms.at(i - offset);
  }

  lastIndex(): number {
    return this.offset + this.terms.length - 1;
  }

  firstIndex(): number {
    return this.offset + 1;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Replaces the contents with a snapshot (a follower restoring from its leader). */
  applySnapshot(snap: Snapshot): void {
    if (this.snap.metadata.index >= snap.metadata.index) throw new RaftError('SnapOutOfDate');
    this.snap = snap;
    this.reset(snap.metadata.index, snap.metadata.term);
  }

  /**
   * Records a snapshot of the applied state at index i (i must be at most the applied index,
   * which the caller knows). Log entries stay until compact().
   */
  createSnapshot(i: number, cs: ConfState | undefined, data: Uint8Array): Snapshot {
    if (i <= this.snap.metadata.index) throw new RaftError('SnapOutOfDate');
    if (i > this.lastIndex()) throw new Error(`raft: snapshot ${i} is out of bound lastindex(${this.lastIndex()})`);
    this.snap = {
      data,
      metadata: { index: i, term: this.terms.at(i - this.offset), confState: cs ?? this.snap.metadata.confState },
    };
    return this.snap;
  }

  /**
   * Discards entries up to and including compactIndex (which must be applied and <= lastIndex).
   * The kept tail's columns are copied to fresh ones a block's run at a time (value by value,
   * in code that is cold once per snapshot, 5,000 kept entries took 9-14 ms); its payloads stay
   * where they are, and the arena drops the chunks wholly before them. No Entry object is made
   * and no payload is copied: made entry by entry, a compaction after 100k puts took 4-16 ms
   * of the main thread, and copying the payloads to a fresh arena still 16 ms with the GC that
   * its new chunk set off (issue 14: a pause at every snapshot).
   */
  compact(compactIndex: number): void {
    const offset = this.offset;
    if (compactIndex <= offset) throw new RaftError('Compacted');
    if (compactIndex > this.lastIndex()) {
      throw new Error(`raft: compact ${compactIndex} is out of bound lastindex(${this.lastIndex()})`);
    }
    const from = compactIndex - offset;
    const old = { terms: this.terms, types: this.types, payloads: this.payloads, lengths: this.lengths };
    // Live payloads are in the arena in log order (a conflicting suffix's new entries are
    // stored after the old ones), so the first kept one is the lowest kept handle.
    let firstKept: number | undefined;
    for (let k = from + 1; k < old.payloads.length && firstKept === undefined; k++) {
      const p = old.payloads.at(k);
      if (p >= 0) firstKept = p;
    }
    const shift = this.arena.releaseBefore(firstKept);
    this.forgetEmptyPayloads((index) => index <= compactIndex);
    this.offset = compactIndex;
    // Slot `from` becomes the dummy: it keeps compactIndex's term, and holds no entry.
    this.terms = old.terms.tailFrom(from);
    this.types = old.types.tailFrom(from);
    this.types.set(0, 0);
    this.payloads = old.payloads.tailFrom(from);
    this.payloads.set(0, noPayload);
    if (shift !== 0) this.payloads.addToNonNegative(-shift); // noPayload and emptyPayload are not in the arena
    this.lengths = old.lengths.tailFrom(from);
    this.lengths.set(0, 0);
  }

  /** Appends entries, replacing any conflicting suffix. Entries must be contiguous. */
  append(entries: Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[0].index + entries.length - 1;
    if (last < first) return; // all already compacted
    // Skip the part already covered by the snapshot.
    const from = first > entries[0].index ? first - entries[0].index : 0;
    const at = entries[from].index - this.offset;
    if (at > this.terms.length) {
      throw new Error(`raft: missing log entry [last: ${this.lastIndex()}, append at: ${entries[from].index}]`);
    }
    // Truncates the conflicting suffix (its payloads stay in the arena until the next compaction).
    if (at < this.terms.length) this.truncate(at);
    for (let k = from; k < entries.length; k++) this.push(entries[k]);
  }

  /** The entry in column slot k, made afresh (its data a view of the arena). */
  private entryAt(k: number): Entry {
    const index = this.offset + k;
    const p = this.payloads.at(k);
    const term = this.terms.at(k);
    const type = this.types.at(k) as EntryType;
    // No data field where the entry had none (Go's nil; tests compare entries deeply).
    if (p === noPayload) return { term, index, type };
    const data = p === emptyPayload ? this.emptyPayloads.get(index)! : this.arena.view(p, this.lengths.at(k));
    return { term, index, type, data };
  }

  /** Appends `e`'s columns, its payload copied into the arena. */
  private push(e: Entry): void {
    this.terms.push(e.term);
    this.types.push(e.type);
    const data = e.data;
    if (data === undefined) {
      this.payloads.push(noPayload);
      this.lengths.push(0);
    } else if (data.length === 0) {
      this.payloads.push(emptyPayload);
      this.lengths.push(0);
      this.emptyPayloads.set(e.index, data);
    } else {
      this.payloads.push(this.arena.store(data));
      this.lengths.push(data.length);
    }
  }

  /** Drops column slots from k on. */
  private truncate(k: number): void {
    this.terms.truncate(k);
    this.types.truncate(k);
    this.payloads.truncate(k);
    this.lengths.truncate(k);
    const firstDropped = this.offset + k;
    this.forgetEmptyPayloads((index) => index >= firstDropped);
  }

  /** Drops the empty payloads of the entries `dropped` says are gone (the map is rarely non-empty). */
  private forgetEmptyPayloads(dropped: (index: number) => boolean): void {
    if (this.emptyPayloads.size === 0) return;
    for (const index of [...this.emptyPayloads.keys()]) if (dropped(index)) this.emptyPayloads.delete(index);
  }

  /** Only the dummy slot, at `index` with `term`, and a fresh arena. */
  private reset(index: number, term: number): void {
    this.offset = index;
    this.terms = columnOf(term);
    this.types = columnOf(0);
    this.payloads = columnOf(noPayload);
    this.lengths = columnOf(0);
    this.emptyPayloads.clear();
    this.arena = new PayloadArena();
  }
}
