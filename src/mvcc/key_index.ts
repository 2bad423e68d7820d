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
// put once; the flat array of small integers costs ~110 B (a double in it makes it an unboxed
// double array, not boxes).
const MOD_MAIN = 0;
const MOD_SUB = 1;
const LAST_GEN = 2;
const GENS = 3;
const G_VER = 0;
const G_CREATED_MAIN = 1;
const G_CREATED_SUB = 2;
const G_COUNT = 3;
const G_REVS = 4;

export class KeyIndex {
  private r: number[] = [];

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
    return this.r.length === 0 ? 0 : this.r[MOD_MAIN];
  }
  get modSub(): number {
    return this.r.length === 0 ? 0 : this.r[MOD_SUB];
  }

  /** True once a revision was put or restored (even if compaction later emptied it). */
  hasHistory(): boolean {
    return this.r.length !== 0;
  }

  /** The generations, copied out (oldest first). */
  get generations(): Generation[] {
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
    // An array literal, not push onto []: V8 gives a pushed-to array room for 16 more
    // elements, which most keys (one generation, one or few revisions) never use.
    if (r.length === 0) {
      this.r = [main, sub, GENS, 1, main, sub, 1, main, sub];
      return;
    }
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
    if (this.r.length !== 0) throw new Error('mvcc: restore on a non-empty keyIndex');
    this.r = [modMain, modSub, GENS, ver, createdMain, 0, 1, modMain, modSub];
  }

  /** Ends the current generation with a tombstone; false when it is already empty. */
  tombstone(main: number, sub: number): boolean {
    if (this.r.length === 0 || this.isEmpty()) throw new Error(`mvcc: tombstone on empty keyIndex ${this.key}`);
    if (this.r[this.r[LAST_GEN] + G_COUNT] === 0) return false;
    this.put(main, sub);
    this.r[LAST_GEN] = this.r.length;
    this.r.push(0, 0, 0, 0);
    return true;
  }

  /** The newest revision at or below atRev, with its creation and version; undefined if the key did not exist then. */
  get(atRev: number): KeyRevision | undefined {
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
    this.r = head.concat(rest);
    let last = GENS;
    for (let o = GENS; o < this.r.length; o = this.nextGen(o)) last = o;
    this.r[LAST_GEN] = last;
  }

  /** The revisions a compaction at atRev would keep (HashKV), without changing anything. */
  keep(atRev: number, available: Set<string>): void {
    if (this.isEmpty()) return;
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
