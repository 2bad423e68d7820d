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

export class Generation {
  /** Versions in this generation, counting those compacted away. */
  ver = 0;
  createdMain = 0;
  createdSub = 0;
  /** Flat pairs [main, sub, ...] in ascending order. */
  revs: number[] = [];

  isEmpty(): boolean {
    return this.revs.length === 0;
  }
  get count(): number {
    return this.revs.length >> 1;
  }
  main(i: number): number {
    return this.revs[2 * i];
  }
  sub(i: number): number {
    return this.revs[2 * i + 1];
  }
  /** Index of the newest revision with main <= atRev, or -1 (etcd's walk from the end). */
  lastAtOrBelow(atRev: number): number {
    for (let i = this.count - 1; i >= 0; i--) if (this.revs[2 * i] <= atRev) return i;
    return -1;
  }
}

/** What a lookup of a key at a revision finds. */
export interface KeyRevision {
  modMain: number;
  modSub: number;
  createdMain: number;
  createdSub: number;
  version: number;
}

export class KeyIndex {
  modMain = 0;
  modSub = 0;
  generations: Generation[] = [];

  /**
   * The key's bytes as a latin1 string (one char per byte, so string order is byte order). A
   * one-byte V8 string costs a header plus the bytes; a Buffer per key cost ~800 B more.
   */
  constructor(readonly key: string) {}

  /** The key as bytes (a fresh Buffer: callers may keep it). */
  keyBytes(): Buffer {
    return Buffer.from(this.key, 'latin1');
  }

  /** Appends a revision to the current generation (creating the key if it has none). */
  put(main: number, sub: number): void {
    if (!(main > this.modMain || (main === this.modMain && sub > this.modSub))) {
      throw new Error(`mvcc: 'put' with an unexpected smaller revision ${main}.${sub} <= ${this.modMain}.${this.modSub}`);
    }
    // Array literals, not push onto []: V8 gives a pushed-to empty array room for 17 elements,
    // ~270 B per key that most keys (one generation, one or few revisions) never use.
    if (this.generations.length === 0) this.generations = [new Generation()];
    const g = this.generations[this.generations.length - 1];
    if (g.isEmpty()) {
      g.createdMain = main;
      g.createdSub = sub;
      g.revs = [main, sub];
    } else {
      g.revs.push(main, sub);
    }
    g.ver++;
    this.modMain = main;
    this.modSub = sub;
  }

  /** Starts a key from a record found on disk after compaction removed its earlier history. */
  restore(createdMain: number, modMain: number, modSub: number, ver: number): void {
    if (this.generations.length !== 0) throw new Error('mvcc: restore on a non-empty keyIndex');
    const g = new Generation();
    g.createdMain = createdMain;
    g.ver = ver;
    g.revs = [modMain, modSub];
    this.generations = [g];
    this.modMain = modMain;
    this.modSub = modSub;
  }

  /** Ends the current generation with a tombstone; false when it is already empty. */
  tombstone(main: number, sub: number): boolean {
    if (this.isEmpty()) throw new Error(`mvcc: tombstone on empty keyIndex ${this.key}`);
    if (this.generations[this.generations.length - 1].isEmpty()) return false;
    this.put(main, sub);
    this.generations.push(new Generation());
    return true;
  }

  /** The newest revision at or below atRev, with its creation and version; undefined if the key did not exist then. */
  get(atRev: number): KeyRevision | undefined {
    const g = this.findGeneration(atRev);
    if (!g || g.isEmpty()) return undefined;
    const n = g.lastAtOrBelow(atRev);
    if (n === -1) return undefined;
    return {
      modMain: g.main(n),
      modSub: g.sub(n),
      createdMain: g.createdMain,
      createdSub: g.createdSub,
      version: g.ver - (g.count - n - 1),
    };
  }

  /**
   * Revisions at or after rev, flat pairs; of several with the same main only the one with the
   * largest sub (what outside observers may see). For watchers catching up.
   */
  since(rev: number): number[] {
    let gi = this.generations.length - 1;
    for (; gi > 0; gi--) {
      const g = this.generations[gi];
      if (g.isEmpty()) continue;
      if (rev > g.createdMain) break; // revision{rev,0} > created
    }
    const out: number[] = [];
    let last = 0;
    for (; gi < this.generations.length; gi++) {
      const g = this.generations[gi];
      for (let i = 0; i < g.count; i++) {
        const m = g.main(i);
        if (m < rev) continue;
        if (m === last) {
          out[out.length - 1] = g.sub(i);
          continue;
        }
        out.push(m, g.sub(i));
        last = m;
      }
    }
    return out;
  }

  /** Drops history at or below atRev except what compaction keeps; records kept revisions in `available`. */
  compact(atRev: number, available: Set<string>): void {
    if (this.isEmpty()) throw new Error(`mvcc: compact on empty keyIndex ${this.key}`);
    let [genIdx, revIndex] = this.doCompact(atRev, available);
    const g = this.generations[genIdx];
    if (!g.isEmpty()) {
      if (revIndex !== -1) g.revs = g.revs.slice(2 * revIndex);
      // A lone tombstone closing an older generation is not kept.
      if (g.count === 1 && genIdx !== this.generations.length - 1) {
        available.delete(revId(g.main(0), g.sub(0)));
        genIdx++;
      }
    }
    if (genIdx > 0) this.generations = this.generations.slice(genIdx);
  }

  /** The revisions a compaction at atRev would keep (HashKV), without changing anything. */
  keep(atRev: number, available: Set<string>): void {
    if (this.isEmpty()) return;
    const [genIdx, revIndex] = this.doCompact(atRev, available);
    const g = this.generations[genIdx];
    if (!g.isEmpty() && revIndex === g.count - 1 && genIdx !== this.generations.length - 1) {
      available.delete(revId(g.main(revIndex), g.sub(revIndex)));
    }
  }

  private doCompact(atRev: number, available: Set<string>): [number, number] {
    let genIdx = 0;
    let g = this.generations[0];
    // The first generation that includes atRev or was created after it.
    while (genIdx < this.generations.length - 1) {
      if (g.main(g.count - 1) > atRev) break;
      genIdx++;
      g = this.generations[genIdx];
    }
    const revIndex = g.lastAtOrBelow(atRev);
    if (revIndex !== -1) available.add(revId(g.main(revIndex), g.sub(revIndex)));
    return [genIdx, revIndex];
  }

  isEmpty(): boolean {
    return this.generations.length === 1 && this.generations[0].isEmpty();
  }

  /** The generation atRev falls in; undefined in the gap after a tombstone. */
  private findGeneration(rev: number): Generation | undefined {
    const lastg = this.generations.length - 1;
    for (let cg = lastg; cg >= 0; cg--) {
      const g = this.generations[cg];
      if (g.isEmpty()) continue;
      if (cg !== lastg && g.main(g.count - 1) <= rev) return undefined;
      if (g.main(0) <= rev) return g;
    }
    return undefined;
  }
}
