// key -> KeyIndex, ordered by key bytes (etcd's treeIndex over google/btree), on sorted-btree.
// Keys are held as latin1 strings (one char per byte): string order is then byte order, a
// comparison is V8's native one-byte compare, and a key costs its length plus a small header
// instead of a Buffer object (~800 B more per key; see docs/architecture.md). The API takes
// Buffers; a lookup converts the key once.

import * as btreeNs from 'sorted-btree';
import { KeyIndex, type KeyRevision } from './key_index.js';

// sorted-btree is CommonJS with `exports.default`; under Node's ESM the class is `.default.default`.
type Tree = btreeNs.default<string, KeyIndex>;
type TreeCtor = new (entries: undefined, compare: (a: string, b: string) => number, maxNodeSize?: number) => Tree;
const mod = btreeNs.default as unknown as { default?: TreeCtor };
const BTree: TreeCtor = mod.default ?? (mod as unknown as TreeCtor);

/**
 * A key range as etcd's index takes it: `end` undefined means the single key `key`; an empty
 * `end` means every key >= `key` (the "\0" range end); otherwise [key, end).
 */
export type RangeEnd = Buffer | undefined;

/** Byte-wise key order of two latin1-held keys (UTF-16 unit order equals byte order there). */
function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The index's form of a key. */
function held(key: Buffer): string {
  return key.toString('latin1');
}

export class TreeIndex {
  private tree: Tree = new BTree(undefined, compareKeys);

  /** Number of keys with history (live or not yet compacted away). */
  get size(): number {
    return this.tree.size;
  }

  keyIndex(key: Buffer): KeyIndex | undefined {
    return this.tree.get(held(key));
  }

  /** As keyIndex, for a key already in the index's form (latin1; the rebuild at start-up). */
  heldKeyIndex(key: string): KeyIndex | undefined {
    return this.tree.get(key);
  }

  insert(ki: KeyIndex): void {
    this.tree.set(ki.key, ki, true);
  }

  get(key: Buffer, atRev: number): KeyRevision | undefined {
    return this.tree.get(held(key))?.get(atRev);
  }

  /** Records a put. */
  put(key: Buffer, main: number, sub: number): void {
    this.getOrCreate(key).put(main, sub);
  }

  /** The key's index, created (empty) if absent: one tree walk for a lookup-then-put. */
  getOrCreate(key: Buffer): KeyIndex {
    const k = held(key);
    let ki = this.tree.get(k);
    if (!ki) {
      ki = new KeyIndex(k);
      this.tree.set(k, ki);
    }
    return ki;
  }

  /** Records a delete; false if the key has no live generation. */
  tombstone(key: Buffer, main: number, sub: number): boolean {
    const ki = this.tree.get(held(key));
    if (!ki) return false;
    return ki.tombstone(main, sub);
  }

  /** Calls fn for each key index in the range, in key order. */
  visit(key: Buffer, end: RangeEnd, fn: (ki: KeyIndex) => void): void {
    const low = held(key);
    if (end === undefined) {
      const ki = this.tree.get(low);
      if (ki) fn(ki);
      return;
    }
    if (end.length === 0) {
      const max = this.tree.maxKey();
      if (max === undefined || compareKeys(low, max) > 0) return;
      this.tree.forRange(low, max, true, (_k, ki) => fn(ki));
      return;
    }
    const high = held(end);
    if (compareKeys(low, high) >= 0) return;
    this.tree.forRange(low, high, false, (_k, ki) => fn(ki));
  }

  /** Key indexes alive at atRev in the range with the revision found for each. */
  range(key: Buffer, end: RangeEnd, atRev: number): { keys: KeyIndex[]; revs: KeyRevision[] } {
    const keys: KeyIndex[] = [];
    const revs: KeyRevision[] = [];
    this.visit(key, end, (ki) => {
      const r = ki.get(atRev);
      if (r) {
        keys.push(ki);
        revs.push(r);
      }
    });
    return { keys, revs };
  }

  /**
   * Compacts up to maxKeys key indexes starting at `from` (inclusive); returns the key to
   * continue from, or undefined when done. Emptied keys leave the tree.
   */
  compactChunk(atRev: number, from: string | undefined, maxKeys: number, available: Set<string>): string | undefined {
    const low = from ?? this.tree.minKey();
    const high = this.tree.maxKey();
    if (low === undefined || high === undefined || compareKeys(low, high) > 0) return undefined;
    const chunk = this.tree.getRange(low, high, true, maxKeys + 1);
    const n = Math.min(chunk.length, maxKeys);
    for (let i = 0; i < n; i++) {
      const ki = chunk[i][1];
      ki.compact(atRev, available);
      if (ki.isEmpty()) this.tree.delete(ki.key);
    }
    return chunk.length > maxKeys ? chunk[maxKeys][0] : undefined;
  }

  /** All revisions a compaction at atRev keeps. */
  keep(atRev: number): Set<string> {
    const available = new Set<string>();
    this.tree.forEach((ki) => ki.keep(atRev, available));
    return available;
  }

  /** Revisions (flat [main, sub] pairs) in the range at or after rev, in revision order. For watchers. */
  rangeSince(key: Buffer, end: RangeEnd, rev: number): number[] {
    const pairs: [number, number][] = [];
    this.visit(key, end, (ki) => {
      const s = ki.since(rev);
      for (let i = 0; i < s.length; i += 2) pairs.push([s[i], s[i + 1]]);
    });
    pairs.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    return pairs.flat();
  }
}
