/**
 * A growable column of numbers held in fixed-size Float64Array blocks: the raft log's columns
 * (MemoryStorage: term, type, payload handle, length per entry).
 *
 * Why not a number[]: V8 grows an array by allocating a backing store 1.5x as large and copying
 * into it, and at the raft log's lengths (every entry since the last snapshot: up to
 * --snapshot-count, 100,000, plus the catch-up tail) that one push took 12-65 ms on this
 * machine, with nothing else running (at 78,881, 118,337 and 177,505 entries): a pause of the
 * main thread every client in flight waits out (issue 14). Blocks never move; a new one is a
 * 32 KiB allocation. Every value a column holds is an integer below 2^53, exact in a double.
 */
const blockShift = 12;
/** Entries per block (4,096: 32 KiB of doubles). */
const blockEntries = 1 << blockShift;
const blockMask = blockEntries - 1;

export class NumberColumn {
  private readonly blocks: Float64Array[] = [];
  private n = 0;

  /** Values in the column. */
  get length(): number {
    return this.n;
  }

  push(value: number): void {
    const b = this.n >>> blockShift;
    if (b === this.blocks.length) this.blocks.push(new Float64Array(blockEntries));
    this.blocks[b]![this.n & blockMask] = value;
    this.n++;
  }

  /** The value at slot k (0 <= k < length). */
  at(k: number): number {
    if (!(k >= 0 && k < this.n)) throw new RangeError(`NumberColumn: slot ${k} outside [0, ${this.n})`);
    return this.blocks[k >>> blockShift]![k & blockMask]!;
  }

  /** Writes `value` at slot k (0 <= k < length). */
  set(k: number, value: number): void {
    if (!(k >= 0 && k < this.n)) throw new RangeError(`NumberColumn: slot ${k} outside [0, ${this.n})`);
    this.blocks[k >>> blockShift]![k & blockMask] = value;
  }

  /**
   * A new column holding slots [k, length) of this one, copied a block's run at a time
   * (TypedArray.set) rather than value by value: the raft log's compaction keeps a tail of
   * thousands of entries once per snapshot, in code that is cold by then (interpreted), where
   * four pushes per entry took 9-14 ms of the main thread for 5,000 entries (issue 14).
   */
  tailFrom(k: number): NumberColumn {
    if (!(k >= 0 && k <= this.n)) throw new RangeError(`NumberColumn: tail from ${k} outside [0, ${this.n}]`);
    const out = new NumberColumn();
    for (let from = k; from < this.n; ) {
      const at = from & blockMask;
      const count = Math.min(blockEntries - at, this.n - from);
      out.append(this.blocks[from >>> blockShift]!.subarray(at, at + count));
      from += count;
    }
    return out;
  }

  /** Adds `delta` to every value at or above zero (negative values are markers, not amounts). */
  addToNonNegative(delta: number): void {
    for (let b = 0; b < this.blocks.length; b++) {
      const block = this.blocks[b]!;
      const end = Math.min(blockEntries, this.n - b * blockEntries);
      for (let i = 0; i < end; i++) {
        const v = block[i]!;
        if (v >= 0) block[i] = v + delta;
      }
    }
  }

  /** Appends `values` in order. */
  private append(values: Float64Array): void {
    for (let i = 0; i < values.length; ) {
      const b = this.n >>> blockShift;
      if (b === this.blocks.length) this.blocks.push(new Float64Array(blockEntries));
      const at = this.n & blockMask;
      const count = Math.min(blockEntries - at, values.length - i);
      this.blocks[b]!.set(values.subarray(i, i + count), at);
      this.n += count;
      i += count;
    }
  }

  /** Keeps slots [0, k) (k <= length); blocks past the new end are released. */
  truncate(k: number): void {
    if (!(k >= 0 && k <= this.n)) throw new RangeError(`NumberColumn: truncate to ${k} outside [0, ${this.n}]`);
    this.n = k;
    this.blocks.length = (k + blockMask) >>> blockShift;
  }
}

/** A column holding one value. */
export function columnOf(value: number): NumberColumn {
  const c = new NumberColumn();
  c.push(value);
  return c;
}
