// The revisions of one key, as etcd's mvcc/key_index.go keeps them: a list of generations,
// each the life of the key from a creation to a tombstone. A tombstone ends the current
// generation and opens a new empty one. Revisions are stored flat ([main, sub, main, sub, ...])
// to keep a million keys' history cheap.
//
// Example (from etcd): put(1.0); put(2.0); tombstone(3.0); put(4.0); tombstone(5.0) gives
//   {empty}  {4.0, 5.0(t)}  {1.0, 2.0, 3.0(t)}
// and compact(n) drops versions <= n except the largest one (or that one too if it is a
// tombstone), dropping generations that become empty.

import { revId } from './revision.js';

/** One generation, copied out of a KeyIndex (for tests and inspection; the index keeps none). */
export interface Generation {
  /** Versions in this generation, counting those compacted away. */
  ver: number;
  createdMain: number;
  createdSub: number;
  /** Flat pairs [main, sub, ...] in ascending order. */
  revs: number[];
}

/** What a lookup of a key at a revision finds. */
export interface KeyRevision {
  modMain: number;
  modSub: number;
  createdMain: number;
  createdSub: number;
  version: number;
}

// Layout of KeyIndex.r, one flat array of numbers per key (empty until the first put):
//   r[MOD_MAIN], r[MOD_SUB]: the key's last modification;
//   r[LAST_GEN]: offset of the last generation;
//   from GENS on, the generations in order, each [ver, createdMain, createdSub, count, main0,
//   sub0, main1, sub1, ...] (G_* below are offsets inside one), the last one at the end so a
//   put appends to it.
// Objects per key were the memory: a KeyIndex, its generations array, a Generation and its
// revs array (and boxed numbers for fields V8 saw a non-small integer in) cost ~270 B for a key
// put once; the flat array costs ~110 B. It holds its numbers unboxed, as doubles (unboxed()).
const MOD_MAIN = 0;
const MOD_SUB = 1;
const LAST_GEN = 2;
const GENS = 3;
const G_VER = 0;
const G_CREATED_MAIN = 1;
const G_CREATED_SUB = 2;
const G_COUNT = 3;
const G_REVS = 4;

/**
 * `a` with its elements stored as unboxed doubles (V8's PACKED_DOUBLE_ELEMENTS), though they are
 * integers. Storing one non-integer moves an array of small integers there, and V8 never moves
 * it back (pushing integers keeps it there). Same 8 bytes an element (Node's builds have no
 * pointer compression, under which a small integer would take 4), but the garbage collector
 * does not look inside a double array, while it visits every slot of a small-integer array on
 * each mark: these arrays are most of a large store's heap (31 of the 61 MiB on the heap after
 * 700k puts over 100k keys), and each mark-compact walked them all. 600k puts by 100 clients
 * over 100k keys (bench/loop-stalls.js with --trace-gc-nvp, two alternating runs each): the
 * main thread's marking steps per mark-compact 42.7 and 44.5 ms -> 33.8 and 30.0, the V8
 * worker's marking 89 and 99 ms -> 85 and 73 (issue 14).
 */
function unboxed(a: number[]): number[] {
  // Every caller's array starts with r[MOD_MAIN], an integer: writing it back leaves the value.
  if (a.length === 0) throw new Error('mvcc: unboxed() of an empty history');
  const first = a[0]!;
  a[0] = 0.5;
  a[0] = first;
  return a;
}

/** The history of a key with none yet, or in its one-revision form: shared, never written. */
const noHistory: number[] = [];

export class KeyIndex {
  private r: number[] = noHistory;
  // The one-revision form: one generation holding one revision (a key put once, or restored
  // at start-up), in four fields instead of r. r, a 9-element array, cost 120 B of the ~210 B
  // a key put once took (its JSArray 32 B and FixedArray 88 B); most keys of a large store are
  // in this form, and every key after a restart. Any other change first expands it into r.
  /** The revision: main, sub. */
  private m = 0;
  private s = 0;
  /** The generation's creation main revision (its sub is s when c === m and v === 1, else 0). */
  private c = 0;
  /** The generation's version; 0 when the key is not in the one-revision form. */
  private v = 0;

  /**
   * The key's bytes as a latin1 string (one char per byte, so string order is byte order). A
   * one-byte V8 string costs a header plus the bytes; a Buffer per key cost ~800 B more.
   */
  constructor(readonly key: string) {}

  /** The key as bytes (a fresh Buffer: callers may keep it). */
  keyBytes(): Buffer {
    return Buffer.from(this.key, 'latin1');
  }

  get modMain(): number {
    if (this.v !== 0) return this.m;
    return this.r.length === 0 ? 0 : this.r[MOD_MAIN];
  }
  get modSub(): number {
    if (this.v !== 0) return this.s;
    return this.r.length === 0 ? 0 : this.r[MOD_SUB];
  }

  /** True once a revision was put or restored (even if compaction later emptied it). */
  hasHistory(): boolean {
    return this.v !== 0 || this.r.length !== 0;
  }

  /** Creation sub revision of the one-revision form (see c). */
  private get createdSubOfOne(): number {
    return this.c === this.m && this.v === 1 ? this.s : 0;
  }

  /** Leaves the one-revision form: the same history as r, which every other change works on. */
  private expand(): void {
    if (this.v === 0) return;
    this.r = unboxed([this.m, this.s, GENS, this.v, this.c, this.createdSubOfOne, 1, this.m, this.s]);
    this.v = 0;
  }

  /** The generations, copied out (oldest first). */
  get generations(): Generation[] {
    if (this.v !== 0) return [{ ver: this.v, createdMain: this.c, createdSub: this.createdSubOfOne, revs: [this.m, this.s] }];
    const out: Generation[] = [];
    for (let o = GENS; o < this.r.length; o = this.nextGen(o)) {
      const n = this.r[o + G_COUNT];
      out.push({
        ver: this.r[o + G_VER], createdMain: this.r[o + G_CREATED_MAIN], createdSub: this.r[o + G_CREATED_SUB],
        revs: this.r.slice(o + G_REVS, o + G_REVS + 2 * n),
      });
    }
    return out;
  }

  /** Appends a revision to the current generation (creating the key if it has none). */
  put(main: number, sub: number): void {
    const r = this.r;
    if (!(main > this.modMain || (main === this.modMain && sub > this.modSub))) {
      throw new Error(`mvcc: 'put' with an unexpected smaller revision ${main}.${sub} <= ${this.modMain}.${this.modSub}`);
    }
    if (r.length === 0 && this.v === 0) {
      this.m = main; this.s = sub; this.c = main; this.v = 1;
      return;
    }
    this.expand();
    this.putInHistory(main, sub);
  }

  private putInHistory(main: number, sub: number): void {
    const r = this.r;
    const g = r[LAST_GEN];
    if (r[g + G_COUNT] === 0) {
      r[g + G_CREATED_MAIN] = main;
      r[g + G_CREATED_SUB] = sub;
    }
    r.push(main, sub);
    r[g + G_COUNT]++;
    r[g + G_VER]++;
    r[MOD_MAIN] = main;
    r[MOD_SUB] = sub;
  }

  /** Starts a key from a record found on disk after compaction removed its earlier history. */
  restore(createdMain: number, modMain: number, modSub: number, ver: number): void {
    if (this.hasHistory()) throw new Error('mvcc: restore on a non-empty keyIndex');
    // Created at sub 0 (etcd restores only the main); the one-revision form cannot say that
    // for a version-1 key created at its own revision with a sub over 0. Nor can it hold
    // version 0 (v === 0 marks the array form): etcdutl's --bump-revision record, an empty
    // KeyValue at the bumped revision, restores as a version-0 key.
    if (ver === 0 || (createdMain === modMain && ver === 1 && modSub !== 0)) {
      // An array literal, not push onto []: V8 gives a pushed-to array room for 16 more elements.
      this.r = unboxed([modMain, modSub, GENS, ver, createdMain, 0, 1, modMain, modSub]);
      return;
    }
    this.m = modMain; this.s = modSub; this.c = createdMain; this.v = ver;
  }

  /** Ends the current generation with a tombstone; false when it is already empty. */
  tombstone(main: number, sub: number): boolean {
    if (!this.hasHistory() || this.isEmpty()) throw new Error(`mvcc: tombstone on empty keyIndex ${this.key}`);
    this.expand();
    if (this.r[this.r[LAST_GEN] + G_COUNT] === 0) return false;
    this.put(main, sub);
    this.r[LAST_GEN] = this.r.length;
    this.r.push(0, 0, 0, 0);
    return true;
  }

  /** The newest revision at or below atRev, with its creation and version; undefined if the key did not exist then. */
  get(atRev: number): KeyRevision | undefined {
    if (this.v !== 0) {
      if (this.m > atRev) return undefined;
      return { modMain: this.m, modSub: this.s, createdMain: this.c, createdSub: this.createdSubOfOne, version: this.v };
    }
    const g = this.findGeneration(atRev);
    if (g === -1) return undefined;
    const n = this.lastAtOrBelow(g, atRev);
    if (n === -1) return undefined;
    const r = this.r;
    const count = r[g + G_COUNT];
    return {
      modMain: r[g + G_REVS + 2 * n],
      modSub: r[g + G_REVS + 2 * n + 1],
      createdMain: r[g + G_CREATED_MAIN],
      createdSub: r[g + G_CREATED_SUB],
      version: r[g + G_VER] - (count - n - 1),
    };
  }

  /**
   * Revisions at or after rev, flat pairs; of several with the same main only the one with the
   * largest sub (what outside observers may see). For watchers catching up.
   */
  since(rev: number): number[] {
    if (this.v !== 0) return this.m >= rev ? [this.m, this.s] : [];
    const r = this.r;
    // The last non-empty generation created before rev (or the first generation).
    let start = GENS;
    for (let o = GENS; o < r.length; o = this.nextGen(o)) {
      if (o !== GENS && r[o + G_COUNT] !== 0 && rev > r[o + G_CREATED_MAIN]) start = o;
    }
    const out: number[] = [];
    let last = 0;
    for (let o = start; o < r.length; o = this.nextGen(o)) {
      for (let i = 0; i < r[o + G_COUNT]; i++) {
        const m = r[o + G_REVS + 2 * i];
        const s = r[o + G_REVS + 2 * i + 1];
        if (m < rev) continue;
        if (m === last) {
          out[out.length - 1] = s;
          continue;
        }
        out.push(m, s);
        last = m;
      }
    }
    return out;
  }

  /** Drops history at or below atRev except what compaction keeps; records kept revisions in `available`. */
  compact(atRev: number, available: Set<string>): void {
    if (this.isEmpty()) throw new Error(`mvcc: compact on empty keyIndex ${this.key}`);
    // One revision, in the last generation: kept whatever atRev (a live key's newest revision).
    if (this.v !== 0) {
      if (this.m <= atRev) available.add(revId(this.m, this.s));
      return;
    }
    const r = this.r;
    let [g, revIndex] = this.doCompact(atRev, available);
    let drop = 0; // revisions dropped from the head of generation g
    let keepFrom = g;
    const count = r[g + G_COUNT];
    if (count !== 0) {
      if (revIndex !== -1) drop = revIndex;
      // A lone tombstone closing an older generation is not kept.
      if (count - drop === 1 && g !== r[LAST_GEN]) {
        const i = g + G_REVS + 2 * drop;
        available.delete(revId(r[i], r[i + 1]));
        keepFrom = this.nextGen(g);
      }
    }
    if (keepFrom === GENS && drop === 0) return;
    const head = [r[MOD_MAIN], r[MOD_SUB], 0];
    let rest: number[];
    if (keepFrom === g && drop > 0) {
      rest = [r[g + G_VER], r[g + G_CREATED_MAIN], r[g + G_CREATED_SUB], count - drop,
        ...r.slice(g + G_REVS + 2 * drop, this.nextGen(g)), ...r.slice(this.nextGen(g))];
    } else {
      rest = r.slice(keepFrom);
    }
    this.r = unboxed(head.concat(rest));
    let last = GENS;
    for (let o = GENS; o < this.r.length; o = this.nextGen(o)) last = o;
    this.r[LAST_GEN] = last;
  }

  /** The revisions a compaction at atRev would keep (HashKV), without changing anything. */
  keep(atRev: number, available: Set<string>): void {
    if (this.isEmpty()) return;
    if (this.v !== 0) {
      if (this.m <= atRev) available.add(revId(this.m, this.s));
      return;
    }
    const r = this.r;
    const [g, revIndex] = this.doCompact(atRev, available);
    if (r[g + G_COUNT] !== 0 && revIndex === r[g + G_COUNT] - 1 && g !== r[LAST_GEN]) {
      const i = g + G_REVS + 2 * revIndex;
      available.delete(revId(r[i], r[i + 1]));
    }
  }

  /** [offset of the generation atRev compacts into, index of its revision at or below atRev or -1]. */
  private doCompact(atRev: number, available: Set<string>): [number, number] {
    const r = this.r;
    if (r.length === 0) throw new Error(`mvcc: compact on keyIndex ${this.key} without revisions`);
    let g = GENS;
    // The first generation that includes atRev or was created after it.
    while (g !== r[LAST_GEN]) {
      if (r[g + G_REVS + 2 * (r[g + G_COUNT] - 1)] > atRev) break;
      g = this.nextGen(g);
    }
    const revIndex = this.lastAtOrBelow(g, atRev);
    if (revIndex !== -1) {
      const i = g + G_REVS + 2 * revIndex;
      available.add(revId(r[i], r[i + 1]));
    }
    return [g, revIndex];
  }

  isEmpty(): boolean {
    if (this.v !== 0) return false;
    const r = this.r;
    return r.length !== 0 && r[LAST_GEN] === GENS && r[GENS + G_COUNT] === 0;
  }

  private nextGen(g: number): number {
    return g + G_REVS + 2 * this.r[g + G_COUNT];
  }

  /** Index of the newest revision of generation g with main <= atRev, or -1 (etcd's walk from the end). */
  private lastAtOrBelow(g: number, atRev: number): number {
    const r = this.r;
    for (let i = r[g + G_COUNT] - 1; i >= 0; i--) if (r[g + G_REVS + 2 * i] <= atRev) return i;
    return -1;
  }

  /**
   * Offset of the generation atRev falls in, or -1 (before the key existed, or in the gap after
   * a tombstone): the last non-empty generation created at or before atRev, unless atRev is at
   * or after that generation's tombstone.
   */
  private findGeneration(rev: number): number {
    const r = this.r;
    let found = -1;
    for (let o = GENS; o < r.length; o = this.nextGen(o)) {
      if (r[o + G_COUNT] === 0) continue;
      if (r[o + G_REVS] > rev) break;
      found = o;
    }
    if (found === -1) return -1;
    if (found !== r[LAST_GEN] && r[found + G_REVS + 2 * (r[found + G_COUNT] - 1)] <= rev) return -1;
    return found;
  }
}
