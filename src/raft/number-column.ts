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
