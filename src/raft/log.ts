/**
 * The raft log as the state machine sees it: stable entries (in Storage) followed by unstable
 * ones (appended here, handed out in a Ready, dropped from here once advance() says they are
 * persisted), plus the commit and apply cursors.
 */
import type { Entry, Snapshot } from '../proto/index.js';
import { RaftError, isRaftError } from './errors.js';
import { type Storage, limitSize } from './storage.js';

/** Entries and an incoming snapshot not yet persisted. entries[i] has index offset + i. */
class Unstable {
  snapshot: Snapshot | undefined = undefined;
  entries: Entry[] = [];
  offset: number;

  constructor(offset: number) {
    this.offset = offset;
  }

  maybeFirstIndex(): number {
    return this.snapshot ? this.snapshot.metadata.index + 1 : -1;
  }

  maybeLastIndex(): number {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot ? this.snapshot.metadata.index : -1;
  }

  /** Term of i if this part of the log knows it, else -1. */
  maybeTerm(i: number): number {
    if (i < this.offset) {
      if (this.snapshot && this.snapshot.metadata.index === i) return this.snapshot.metadata.term;
      return -1;
    }
    const last = this.maybeLastIndex();
    if (last < 0 || i > last) return -1;
    return this.entries[i - this.offset].term;
  }

  /** Entries up to i (with term t) are persisted: forget them, unless they were replaced meanwhile. */
  stableTo(i: number, t: number): boolean {
    const gt = this.maybeTerm(i);
    if (gt < 0 || i < this.offset || gt !== t) return false;
    const n = i + 1 - this.offset;
    this.entries = n >= this.entries.length ? [] : this.entries.slice(n);
    this.offset = i + 1;
    return true;
  }

  stableSnapTo(i: number): void {
    if (this.snapshot && this.snapshot.metadata.index === i) this.snapshot = undefined;
  }

  restore(s: Snapshot): void {
    this.offset = s.metadata.index + 1;
    this.entries = [];
    this.snapshot = s;
  }

  truncateAndAppend(ents: Entry[]): void {
    const after = ents[0].index;
    if (after === this.offset + this.entries.length) {
      for (let k = 0; k < ents.length; k++) this.entries.push(ents[k]);
    } else if (after <= this.offset) {
      // Replaces everything unstable; the stable part past `after` is overwritten by the next persist.
      this.offset = after;
      this.entries = ents.slice();
    } else {
      this.entries = this.entries.slice(0, after - this.offset);
      for (let k = 0; k < ents.length; k++) this.entries.push(ents[k]);
    }
  }

  slice(lo: number, hi: number): Entry[] {
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}

export class RaftLog {
  readonly storage: Storage;
  readonly unstable: Unstable;
  /** Highest index known to be committed by a quorum. */
  committed: number;
  /** Highest index the application has applied (as of the last advance()). */
  applied: number;
  /** Bound on the bytes of committed entries handed out in one Ready. */
  private readonly maxApplyingSize: number;

  constructor(storage: Storage, maxApplyingSize: number) {
    this.storage = storage;
    this.maxApplyingSize = maxApplyingSize;
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    this.committed = first - 1;
    this.applied = first - 1;
  }

  firstIndex(): number {
    const i = this.unstable.maybeFirstIndex();
    return i >= 0 ? i : this.storage.firstIndex();
  }

  lastIndex(): number {
    const i = this.unstable.maybeLastIndex();
    return i >= 0 ? i : this.storage.lastIndex();
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  /**
   * Term of entry i, or 0 when i is outside what is known (compacted or beyond the end), which
   * never matches a real term (terms start at 1).
   */
  term(i: number): number {
    const dummy = this.firstIndex() - 1;
    if (i < dummy || i > this.lastIndex()) return 0;
    const t = this.unstable.maybeTerm(i);
    if (t >= 0) return t;
    try {
      return this.storage.term(i);
    } catch (e) {
      if (isRaftError(e, 'Compacted') || isRaftError(e, 'Unavailable')) return 0;
      throw e;
    }
  }

  matchTerm(i: number, t: number): boolean {
    // term() answers 0 for unknown indexes, which matches only the empty log's index 0.
    return this.term(i) === t && (t !== 0 || i === 0);
  }

  /** The Raft vote rule: is a log ending at (lasti, term) at least as up to date as ours? */
  isUpToDate(lasti: number, term: number): boolean {
    const ourTerm = this.lastTerm();
    return term > ourTerm || (term === ourTerm && lasti >= this.lastIndex());
  }

  /**
   * Follower-side append (MsgApp): returns the index of the last new entry, or -1 when the
   * entry before them does not match (the leader must back up).
   */
  maybeAppend(index: number, logTerm: number, committed: number, ents: Entry[]): number {
    if (!this.matchTerm(index, logTerm)) return -1;
    const lastnewi = index + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      if (ci <= this.committed) {
        throw new Error(`raft: entry ${ci} conflicts with committed entry [committed(${this.committed})]`);
      }
      const from = ci - (index + 1);
      this.append(from === 0 ? ents : ents.slice(from));
    }
    this.commitTo(Math.min(committed, lastnewi));
    return lastnewi;
  }

  append(ents: Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0].index - 1;
    if (after < this.committed) {
      throw new Error(`raft: after(${after}) is out of range [committed(${this.committed})]`);
    }
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /** Index of the first entry in ents that is new or differs in term from ours, else 0. */
  findConflict(ents: Entry[]): number {
    for (let k = 0; k < ents.length; k++) {
      const e = ents[k];
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * The largest index <= index whose term is <= term. Used for fast backtracking: every entry
   * after it is known not to match a log whose entry at `index` has term `term`.
   */
  findConflictByTerm(index: number, term: number): number {
    const first = this.firstIndex() - 1;
    for (; index > first; index--) {
      const t = this.term(index);
      if (t <= term) return index;
    }
    return index;
  }

  /** A copy of the entries not yet persisted (the live array keeps growing under proposals). */
  unstableEntries(): Entry[] {
    return this.unstable.entries.length === 0 ? [] : this.unstable.entries.slice();
  }

  hasUnstableEntries(): boolean {
    return this.unstable.entries.length > 0;
  }

  hasNextEnts(): boolean {
    const off = Math.max(this.applied + 1, this.firstIndex());
    return this.committed + 1 > off;
  }

  /** Committed entries not yet applied (bounded by maxApplyingSize). */
  nextEnts(): Entry[] {
    const off = Math.max(this.applied + 1, this.firstIndex());
    if (this.committed + 1 > off) return this.slice(off, this.committed + 1, this.maxApplyingSize);
    return [];
  }

  /** A snapshot for a lagging follower (the unstable one if a restore is in flight). */
  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  commitTo(tocommit: number): void {
    if (this.committed < tocommit) {
      if (this.lastIndex() < tocommit) {
        throw new Error(`raft: tocommit(${tocommit}) is out of range [lastIndex(${this.lastIndex()})]`);
      }
      this.committed = tocommit;
    }
  }

  appliedTo(i: number): void {
    if (i === 0) return;
    if (this.committed < i || i < this.applied) {
      throw new Error(`raft: applied(${i}) is out of range [prevApplied(${this.applied}), committed(${this.committed})]`);
    }
    this.applied = i;
  }

  stableTo(i: number, t: number): boolean {
    return this.unstable.stableTo(i, t);
  }

  stableSnapTo(i: number): void {
    this.unstable.stableSnapTo(i);
  }

  /**
   * Highest index known persisted and part of this log: what a leader may count for itself.
   * While a snapshot restore is unpersisted nothing is counted (conservative, and brief).
   */
  persistedIndex(): number {
    if (this.unstable.snapshot) return 0;
    return this.unstable.offset - 1;
  }

  /** Entries from i on, limited to maxSize bytes. Throws Compacted if i is before the log. */
  entriesFrom(i: number, maxSize: number): Entry[] {
    if (i > this.lastIndex()) return [];
    return this.slice(i, this.lastIndex() + 1, maxSize);
  }

  /** Entries in [lo, hi) across storage and unstable, limited to maxSize bytes (at least one). */
  slice(lo: number, hi: number, maxSize: number): Entry[] {
    if (lo === hi) return [];
    const fi = this.firstIndex();
    if (lo < fi) throw new RaftError('Compacted');
    if (hi > this.lastIndex() + 1) throw new Error(`raft: slice[${lo},${hi}) out of bound [${fi},${this.lastIndex()}]`);
    const uoff = this.unstable.offset;
    let ents: Entry[];
    if (lo < uoff) {
      const stored = this.storage.entries(lo, Math.min(hi, uoff), maxSize);
      // Storage stopped early because of the size limit: do not add unstable entries.
      if (stored.length < Math.min(hi, uoff) - lo) return stored;
      ents = hi > uoff ? stored.concat(this.unstable.slice(uoff, hi)) : stored;
    } else {
      ents = this.unstable.slice(lo, hi);
    }
    return limitSize(ents, maxSize);
  }

  restore(s: Snapshot): void {
    this.committed = s.metadata.index;
    this.unstable.restore(s);
  }
}
