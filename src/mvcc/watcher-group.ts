import { prefixRangeEnd } from '../proto/index.js';
// Watchers and the groups the watchable store keeps them in (etcd's mvcc/watcher_group.go).
//
// A group answers one question on the hot path: which watchers does an event on key k
// concern? Its cost must not grow with watchers on other keys (etcd uses a map for single
// keys and an interval tree for ranges). Here every shape is found through a map probe on a
// prefix of k, never by scanning unrelated watchers:
//   single keys     map by key;
//   prefixes        map by prefix, probed once per distinct prefix length present;
//   ranges [a, b)   every key in the range starts with the longest common prefix of a and b,
//                   so ranges are bucketed by that prefix and probed the same way; only the
//                   ranges of a matching bucket are compared with k;
//   from-key [a, ∞) sorted by a: those with a <= k are exactly a leading run of the array.
// Watchers of the same range share one entry, so fan-out on one key costs one probe.

/** What a watcher watches: one key, a prefix, [key, end), or every key >= key. */
export type WatchShape = 'single' | 'prefix' | 'range' | 'fromKey';

/** What a group indexes: a watched range (a watcher, or the store's set of watchers of one range). */
export interface WatchedRange {
  readonly key: Buffer;
  /** undefined: one key; empty: every key >= key; otherwise the exclusive end. */
  readonly end: Buffer | undefined;
  readonly shape: WatchShape;
  /** Map key of the watcher's range (latin1 of key, or of key and end). */
  readonly indexKey: string;
}

/** Per-watcher delivery state, owned by the watchable store. */
export interface Watcher extends WatchedRange {
  readonly id: number;
  readonly filterPut: boolean;
  readonly filterDelete: boolean;
  /** The next revision this watcher must receive (everything below was delivered or filtered). */
  minRev: number;
}

/** Classifies a watched range once, at creation. */
export function watchShape(key: Buffer, end: Buffer | undefined): { shape: WatchShape; indexKey: string } {
  if (end === undefined) return { shape: 'single', indexKey: key.toString('latin1') };
  if (end.length === 0) return { shape: 'fromKey', indexKey: key.toString('latin1') };
  if (prefixRangeEnd(key).equals(end)) return { shape: 'prefix', indexKey: key.toString('latin1') };
  return { shape: 'range', indexKey: `${key.length}:${key.toString('latin1')}${end.toString('latin1')}` };
}

/** Length of the longest common prefix. */
function commonPrefixLength(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/** Watchers of one range. */
interface Interval<W> {
  readonly key: Buffer;
  readonly end: Buffer;
  readonly watchers: Set<W>;
}

/**
 * Sets of watchers under string keys, probed with prefixes of an event key: one probe per
 * distinct key length present.
 */
class PrefixIndex<V> {
  readonly byPrefix = new Map<string, V>();
  /** Distinct key lengths present -> how many entries have that length. */
  private readonly lengths = new Map<number, number>();

  get size(): number {
    return this.byPrefix.size;
  }

  /** The entry under `k` (of `len` bytes), created by `make` if absent. */
  getOrAdd(k: string, len: number, make: () => V): V {
    let v = this.byPrefix.get(k);
    if (v === undefined) {
      v = make();
      this.byPrefix.set(k, v);
      this.lengths.set(len, (this.lengths.get(len) ?? 0) + 1);
    }
    return v;
  }

  remove(k: string, len: number): void {
    if (!this.byPrefix.delete(k)) return;
    const n = this.lengths.get(len)! - 1;
    if (n === 0) this.lengths.delete(len);
    else this.lengths.set(len, n);
  }

  /** Calls `fn` with the entry under every prefix of `key` that has one. */
  forEachPrefixOf(key: Buffer, fn: (v: V) => void): void {
    for (const len of this.lengths.keys()) {
      if (len > key.length) continue;
      const v = this.byPrefix.get(key.toString('latin1', 0, len));
      if (v !== undefined) fn(v);
    }
  }
}

/** A set of watchers indexed for "who watches key k". Iteration order is insertion order. */
export class WatcherGroup<W extends WatchedRange = Watcher> {
  /** Every watcher in the group, in insertion order (round-robin: re-adding moves one to the end). */
  readonly all = new Set<W>();
  private readonly singles = new Map<string, Set<W>>();
  private readonly prefixes = new PrefixIndex<Set<W>>();
  /** Ranges bucketed by the common prefix of their ends; each bucket maps indexKey -> interval. */
  private readonly ranges = new PrefixIndex<Map<string, Interval<W>>>();
  /** From-key intervals sorted by key, and by indexKey. */
  private fromKeys: Array<Interval<W>> = [];
  private readonly fromKeyByIndex = new Map<string, Interval<W>>();

  get size(): number {
    return this.all.size;
  }

  has(w: W): boolean {
    return this.all.has(w);
  }

  add(w: W): void {
    if (this.all.has(w)) return;
    this.all.add(w);
    switch (w.shape) {
      case 'single': {
        let s = this.singles.get(w.indexKey);
        if (s === undefined) this.singles.set(w.indexKey, (s = new Set()));
        s.add(w);
        break;
      }
      case 'prefix':
        this.prefixes.getOrAdd(w.indexKey, w.key.length, () => new Set()).add(w);
        break;
      case 'range': {
        const lcp = commonPrefixLength(w.key, w.end!);
        const bucket = this.ranges.getOrAdd(w.key.toString('latin1', 0, lcp), lcp, () => new Map());
        let iv = bucket.get(w.indexKey);
        if (iv === undefined) bucket.set(w.indexKey, (iv = { key: w.key, end: w.end!, watchers: new Set() }));
        iv.watchers.add(w);
        break;
      }
      case 'fromKey': {
        let iv = this.fromKeyByIndex.get(w.indexKey);
        if (iv === undefined) {
          iv = { key: w.key, end: w.end!, watchers: new Set() };
          this.fromKeyByIndex.set(w.indexKey, iv);
          this.fromKeys.splice(this.fromKeyInsertAt(w.key), 0, iv);
        }
        iv.watchers.add(w);
        break;
      }
    }
  }

  delete(w: W): boolean {
    if (!this.all.delete(w)) return false;
    switch (w.shape) {
      case 'single': {
        const s = this.singles.get(w.indexKey)!;
        s.delete(w);
        if (s.size === 0) this.singles.delete(w.indexKey);
        break;
      }
      case 'prefix': {
        const s = this.prefixes.byPrefix.get(w.indexKey)!;
        s.delete(w);
        if (s.size === 0) this.prefixes.remove(w.indexKey, w.key.length);
        break;
      }
      case 'range': {
        const lcp = commonPrefixLength(w.key, w.end!);
        const bk = w.key.toString('latin1', 0, lcp);
        const bucket = this.ranges.byPrefix.get(bk)!;
        const iv = bucket.get(w.indexKey)!;
        iv.watchers.delete(w);
        if (iv.watchers.size === 0) bucket.delete(w.indexKey);
        if (bucket.size === 0) this.ranges.remove(bk, lcp);
        break;
      }
      case 'fromKey': {
        const iv = this.fromKeyByIndex.get(w.indexKey)!;
        iv.watchers.delete(w);
        if (iv.watchers.size === 0) {
          this.fromKeyByIndex.delete(w.indexKey);
          this.fromKeys = this.fromKeys.filter((x) => x !== iv);
        }
        break;
      }
    }
    return true;
  }

  /** Calls `fn` for every watcher whose range holds `key`. */
  forEachWatching(key: Buffer, fn: (w: W) => void): void {
    if (this.singles.size > 0) this.singles.get(key.toString('latin1'))?.forEach(fn);
    if (this.prefixes.size > 0) this.prefixes.forEachPrefixOf(key, (s) => s.forEach(fn));
    if (this.ranges.size > 0) {
      this.ranges.forEachPrefixOf(key, (bucket) => {
        for (const iv of bucket.values()) if (Buffer.compare(key, iv.key) >= 0 && Buffer.compare(key, iv.end) < 0) iv.watchers.forEach(fn);
      });
    }
    for (const iv of this.fromKeys) {
      if (Buffer.compare(key, iv.key) < 0) break; // sorted: the rest start after key
      iv.watchers.forEach(fn);
    }
  }

  /** Index where a from-key interval starting at `key` keeps fromKeys sorted (binary search). */
  private fromKeyInsertAt(key: Buffer): number {
    let lo = 0;
    let hi = this.fromKeys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (Buffer.compare(this.fromKeys[mid].key, key) <= 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
