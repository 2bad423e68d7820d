// Watchers and the groups the watchable store keeps them in (etcd's mvcc/watcher_group.go).
//
// A group answers one question on the hot path: which watchers does an event on key k
// concern? Its cost must not grow with watchers on other keys, so watchers are indexed by
// shape: single keys in a map by key; prefix ranges (the common case: `--prefix`, informers)
// in a map by prefix, probed once per distinct prefix length present; only other ranges
// (arbitrary [key, end), from-key) are scanned, once per distinct interval, not per watcher.

/** What a watcher watches: one key, a prefix, or [key, end) ("" end = every key >= key). */
export type WatchShape = 'single' | 'prefix' | 'range';

/** Per-watcher delivery state, owned by the watchable store. */
export interface Watcher {
  readonly id: number;
  readonly key: Buffer;
  /** undefined: one key; empty: every key >= key; otherwise the exclusive end. */
  readonly end: Buffer | undefined;
  readonly shape: WatchShape;
  /** Map key for the shape's index: latin1 of the key (single, prefix) or of key+end (range). */
  readonly indexKey: string;
  readonly filterPut: boolean;
  readonly filterDelete: boolean;
  /** The next revision this watcher must receive (everything below was delivered or filtered). */
  minRev: number;
}

const EMPTY = Buffer.alloc(0);

/** etcd's GetPrefixRangeEnd: the smallest key greater than every key with this prefix ("\0": none). */
export function prefixRangeEnd(prefix: Uint8Array): Buffer {
  for (let i = prefix.length - 1; i >= 0; i--) {
    if (prefix[i] < 0xff) {
      const end = Buffer.from(prefix.subarray(0, i + 1));
      end[i]++;
      return end;
    }
  }
  return Buffer.from([0]);
}

/** Classifies a watched range once, at creation. */
export function watchShape(key: Buffer, end: Buffer | undefined): { shape: WatchShape; indexKey: string } {
  if (end === undefined) return { shape: 'single', indexKey: key.toString('latin1') };
  if (end.length > 0 && prefixRangeEnd(key).equals(end)) return { shape: 'prefix', indexKey: key.toString('latin1') };
  return { shape: 'range', indexKey: `${key.length}:${key.toString('latin1')}${(end ?? EMPTY).toString('latin1')}` };
}

/** True if `key` lies in the watcher's range. */
export function watches(w: Watcher, key: Buffer): boolean {
  if (w.end === undefined) return w.key.equals(key);
  if (Buffer.compare(key, w.key) < 0) return false;
  return w.end.length === 0 || Buffer.compare(key, w.end) < 0;
}

interface Interval<W> {
  readonly key: Buffer;
  readonly end: Buffer;
  readonly watchers: Set<W>;
}

/** A set of watchers indexed for "who watches key k". Iteration order is insertion order. */
export class WatcherGroup<W extends Watcher = Watcher> {
  /** Every watcher in the group, in insertion order (round-robin: re-adding moves one to the end). */
  readonly all = new Set<W>();
  private readonly singles = new Map<string, Set<W>>();
  private readonly prefixes = new Map<string, Set<W>>();
  /** Distinct prefix lengths present -> how many prefix entries have that length. */
  private readonly prefixLengths = new Map<number, number>();
  private readonly intervals = new Map<string, Interval<W>>();

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
      case 'single': addTo(this.singles, w.indexKey, w); break;
      case 'prefix':
        if (addTo(this.prefixes, w.indexKey, w)) this.prefixLengths.set(w.key.length, (this.prefixLengths.get(w.key.length) ?? 0) + 1);
        break;
      case 'range': {
        let iv = this.intervals.get(w.indexKey);
        if (iv === undefined) {
          iv = { key: w.key, end: w.end!, watchers: new Set() };
          this.intervals.set(w.indexKey, iv);
        }
        iv.watchers.add(w);
        break;
      }
    }
  }

  delete(w: W): boolean {
    if (!this.all.delete(w)) return false;
    switch (w.shape) {
      case 'single': removeFrom(this.singles, w.indexKey, w); break;
      case 'prefix':
        if (removeFrom(this.prefixes, w.indexKey, w)) {
          const n = this.prefixLengths.get(w.key.length)! - 1;
          if (n === 0) this.prefixLengths.delete(w.key.length);
          else this.prefixLengths.set(w.key.length, n);
        }
        break;
      case 'range': {
        const iv = this.intervals.get(w.indexKey)!;
        iv.watchers.delete(w);
        if (iv.watchers.size === 0) this.intervals.delete(w.indexKey);
        break;
      }
    }
    return true;
  }

  /** Calls `fn` for every watcher whose range holds `key`. */
  forEachWatching(key: Buffer, fn: (w: W) => void): void {
    if (this.singles.size > 0) this.singles.get(key.toString('latin1'))?.forEach(fn);
    if (this.prefixes.size > 0) {
      for (const len of this.prefixLengths.keys()) {
        if (len > key.length) continue;
        this.prefixes.get(key.toString('latin1', 0, len))?.forEach(fn);
      }
    }
    if (this.intervals.size > 0) {
      for (const iv of this.intervals.values()) {
        if (Buffer.compare(key, iv.key) >= 0 && (iv.end.length === 0 || Buffer.compare(key, iv.end) < 0)) iv.watchers.forEach(fn);
      }
    }
  }
}

/** Adds to the set under `k`; true if the set was created. */
function addTo<W>(m: Map<string, Set<W>>, k: string, w: W): boolean {
  const s = m.get(k);
  if (s !== undefined) { s.add(w); return false; }
  m.set(k, new Set([w]));
  return true;
}

/** Removes from the set under `k`; true if the set became empty and was dropped. */
function removeFrom<W>(m: Map<string, Set<W>>, k: string, w: W): boolean {
  const s = m.get(k)!;
  s.delete(w);
  if (s.size !== 0) return false;
  m.delete(k);
  return true;
}
