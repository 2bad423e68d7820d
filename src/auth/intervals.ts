/**
 * The union of a user's key permissions, as etcd's range_perm_cache.go merges them in an
 * interval tree: half-open byte intervals [begin, end) compared "affinely" — an empty
 * bound means +infinity (adt.BytesAffineComparable), so a from-key permission (range_end
 * "\0") reaches to the end of the keyspace. Intervals are merged once, when permissions
 * change; a check is then a binary search.
 */

/** [begin, end) with an empty `end` meaning +infinity. */
export interface KeyInterval {
  readonly begin: Buffer;
  readonly end: Buffer;
}

const emptyKey = Buffer.alloc(0);
const zeroByte = Buffer.from([0]);

/** adt.BytesAffineComparable.Compare: the empty key sorts after every other. */
export function affineCompare(a: Buffer, b: Buffer): number {
  if (a.length === 0) return b.length === 0 ? 0 : 1;
  if (b.length === 0) return -1;
  return Buffer.compare(a, b);
}

/** adt.NewBytesAffinePoint: the single key `key`, as [key, key + "\0"). */
export function pointInterval(key: Buffer): KeyInterval {
  return { begin: key, end: Buffer.concat([key, zeroByte]) };
}

/** A permission's interval: a point without range_end; to infinity with range_end "\0". */
export function permissionInterval(key: Buffer, rangeEnd: Buffer): KeyInterval {
  if (rangeEnd.length === 0) return pointInterval(key);
  return { begin: key, end: isFromKey(rangeEnd) ? emptyKey : rangeEnd };
}

export function isFromKey(rangeEnd: Buffer): boolean {
  return rangeEnd.length === 1 && rangeEnd[0] === 0;
}

/** Disjoint, sorted, merged intervals. */
export class IntervalUnion {
  private readonly blocks: KeyInterval[];

  constructor(intervals: KeyInterval[]) {
    const sorted = [...intervals].sort((x, y) => affineCompare(x.begin, y.begin));
    const blocks: KeyInterval[] = [];
    for (const iv of sorted) {
      const last = blocks[blocks.length - 1];
      // Touching intervals join ([a,b) and [b,c) cover [a,c)), as etcd's Contains treats them.
      if (last !== undefined && affineCompare(iv.begin, last.end) <= 0) {
        if (affineCompare(iv.end, last.end) > 0) blocks[blocks.length - 1] = { begin: last.begin, end: iv.end };
      } else {
        blocks.push(iv);
      }
    }
    this.blocks = blocks;
  }

  get empty(): boolean {
    return this.blocks.length === 0;
  }

  /** Whether [begin, end) lies inside the union (etcd's IntervalTree.Contains). */
  contains(begin: Buffer, end: Buffer): boolean {
    const b = this.blockAtOrBefore(begin);
    if (b === undefined) return false;
    // The block must overlap the query (etcd visits overlapping intervals only) and cover it.
    return affineCompare(begin, b.end) < 0 && affineCompare(b.begin, end) < 0 && affineCompare(b.end, end) >= 0;
  }

  /** Whether `key` lies in the union (etcd's Intersects with a point). */
  containsKey(key: Buffer): boolean {
    const b = this.blockAtOrBefore(key);
    return b !== undefined && affineCompare(key, b.end) < 0;
  }

  /** The last block whose begin is <= key. */
  private blockAtOrBefore(key: Buffer): KeyInterval | undefined {
    let lo = 0;
    let hi = this.blocks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (affineCompare(this.blocks[mid].begin, key) <= 0) lo = mid + 1;
      else hi = mid;
    }
    return lo === 0 ? undefined : this.blocks[lo - 1];
  }
}
