// key -> KeyIndex, ordered by key bytes (etcd's treeIndex over google/btree), on sorted-btree
// with a Buffer comparator so keys are never turned into strings.

import * as btreeNs from 'sorted-btree';
import { KeyIndex, type KeyRevision } from './key_index.js';

// sorted-btree is CommonJS with `exports.default`; under Node's ESM the class is `.default.default`.
type Tree = btreeNs.default<Buffer, KeyIndex>;
type TreeCtor = new (entries: undefined, compare: (a: Buffer, b: Buffer) => number, maxNodeSize?: number) => Tree;
const mod = btreeNs.default as unknown as { default?: TreeCtor };
const BTree: TreeCtor = mod.default ?? (mod as unknown as TreeCtor);

/**
 * A key range as etcd's index takes it: `end` undefined means the single key `key`; an empty
 * `end` means every key >= `key` (the "\0" range end); otherwise [key, end).
 */
export type RangeEnd = Buffer | undefined;

/**
 * Byte-wise key order. A JS loop beats the native Buffer.compare call for the short keys
 * typical of etcd (the call overhead dominated the put path); long keys go native.
 */
export function compareKeys(a: Buffer, b: Buffer): number {
  const n = a.length < b.length ? a.length : b.length;
  if (n > 64) return Buffer.compare(a, b);
  for (let i = 0; i < n; i++) {
    const d = a[i] - b[i];
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

export class TreeIndex {
  private tree: Tree = new BTree(undefined, compareKeys);

  /** Number of keys with history (live or not yet compacted away). */
  get size(): number {
    return this.tree.size;
  }

  keyIndex(key: Buffer): KeyIndex | undefined {
    return this.tree.get(key);
  }

  insert(ki: KeyIndex): void {
    this.tree.set(ki.key, ki, true);
  }

  get(key: Buffer, atRev: number): KeyRevision | undefined {
    return this.tree.get(key)?.get(atRev);
  }

  /** Records a put; a new key's bytes are copied so the index never pins a request buffer. */
  put(key: Buffer, main: number, sub: number): void {
    this.getOrCreate(key).put(main, sub);
  }

  /** The key's index, created (empty) if absent: one tree walk for a lookup-then-put. */
  getOrCreate(key: Buffer): KeyIndex {
    let ki = this.tree.get(key);
    if (!ki) {
      ki = new KeyIndex(Buffer.from(key));
      this.tree.set(ki.key, ki);
    }
    return ki;
  }

  /** Records a delete; false if the key has no live generation. */
  tombstone(key: Buffer, main: number, sub: number): boolean {
    const ki = this.tree.get(key);
    if (!ki) return false;
    return ki.tombstone(main, sub);
  }

  /** Calls fn for each key index in the range, in key order. */
  visit(key: Buffer, end: RangeEnd, fn: (ki: KeyIndex) => void): void {
    if (end === undefined) {
      const ki = this.tree.get(key);
      if (ki) fn(ki);
      return;
    }
    if (end.length === 0) {
      const max = this.tree.maxKey();
      if (max === undefined || compareKeys(key, max) > 0) return;
      this.tree.forRange(key, max, true, (_k, ki) => fn(ki));
      return;
    }
    if (compareKeys(key, end) >= 0) return;
    this.tree.forRange(key, end, false, (_k, ki) => fn(ki));
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
  compactChunk(atRev: number, from: Buffer | undefined, maxKeys: number, available: Set<string>): Buffer | undefined {
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
