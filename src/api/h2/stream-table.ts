/**
 * A connection's streams by id (those open, and those waiting for a window): an open-addressing
 * hash table (linear probing) in two flat arrays that are replaced only when the table grows.
 *
 * Why not a Map (issue 14): a Map's backing table is replaced every few insertions once
 * deletions have left holes in it, and V8 keeps a link from each replaced table to the next
 * one, with the entries it held at that moment. A table that a mark-compact promoted stays in
 * the old generation, dead but uncollected until the next mark-compact, and a scavenge takes
 * every old-to-young pointer as a root: so the chain of replaced tables kept every stream that
 * passed through the Map (with its gRPC call, headers and listeners) alive through two
 * scavenges, and every one of them was promoted. Under 100 clients that was two thirds of all
 * the bytes promoted by a put, and nearly all of a range's: the old generation filled with
 * dead streams, and its marking (the phase where the main thread's long turns cluster) came
 * round about once a second. Here a deleted slot is cleared, and the arrays stay the same
 * objects until the table grows, so nothing dead stays reachable.
 */
export class StreamTable<V> {
  /** Stream ids (0: empty slot; stream ids are positive). */
  private ids: number[];
  private values: Array<V | undefined>;
  private mask: number;
  private count = 0;

  constructor(initialSlots = 16) {
    if (initialSlots < 2 || (initialSlots & (initialSlots - 1)) !== 0) {
      throw new RangeError(`StreamTable: ${initialSlots} slots is not a power of two of at least 2`);
    }
    this.ids = new Array<number>(initialSlots).fill(0);
    this.values = new Array<V | undefined>(initialSlots).fill(undefined);
    this.mask = initialSlots - 1;
  }

  get size(): number { return this.count; }

  get(id: number): V | undefined {
    const i = this.slotOf(id);
    return this.ids[i] === id ? this.values[i] : undefined;
  }

  /** Adds or replaces the value of `id` (a positive integer below 2^31, as HTTP/2's stream ids). */
  set(id: number, value: V): void {
    if (!(id > 0 && id <= 0x7fffffff && Number.isInteger(id))) throw new RangeError(`StreamTable: bad stream id ${id}`);
    // At most half full: probe runs stay short.
    if ((this.count + 1) * 2 > this.ids.length) this.grow();
    this.place(id, value);
  }

  /** Removes `id`; true if it was there. */
  delete(id: number): boolean {
    const ids = this.ids;
    const mask = this.mask;
    let hole = this.slotOf(id);
    if (ids[hole] !== id) return false;
    this.count--;
    // Backward-shift deletion: pull later members of the probe run into the hole, so a lookup
    // still stops at the first empty slot and no tombstone is needed.
    for (let j = (hole + 1) & mask; ids[j] !== 0; j = (j + 1) & mask) {
      const home = this.home(ids[j]!);
      // Movable unless its home lies cyclically in (hole, j].
      const inRun = hole <= j ? home > hole && home <= j : home > hole || home <= j;
      if (inRun) continue;
      ids[hole] = ids[j]!;
      this.values[hole] = this.values[j];
      hole = j;
    }
    ids[hole] = 0;
    this.values[hole] = undefined;
    return true;
  }

  /** The values, copied out (callers may delete while they walk it). */
  list(): V[] {
    const out: V[] = [];
    for (let i = 0; i < this.ids.length; i++) if (this.ids[i] !== 0) out.push(this.values[i]!);
    return out;
  }

  clear(): void {
    this.ids.fill(0);
    this.values.fill(undefined);
    this.count = 0;
  }

  /** Client stream ids are odd and increase: halving them spreads consecutive ids over consecutive slots. */
  private home(id: number): number {
    return (id >>> 1) & this.mask;
  }

  /** The slot holding `id`, else the empty slot that ends its probe run (where it would go). */
  private slotOf(id: number): number {
    const ids = this.ids;
    const mask = this.mask;
    let i = this.home(id);
    while (ids[i] !== id && ids[i] !== 0) i = (i + 1) & mask;
    return i;
  }

  private place(id: number, value: V): void {
    const i = this.slotOf(id);
    if (this.ids[i] !== id) {
      this.ids[i] = id;
      this.count++;
    }
    this.values[i] = value;
  }

  private grow(): void {
    const oldIds = this.ids;
    const oldValues = this.values;
    const slots = oldIds.length * 2;
    this.ids = new Array<number>(slots).fill(0);
    this.values = new Array<V | undefined>(slots).fill(undefined);
    this.mask = slots - 1;
    this.count = 0;
    for (let i = 0; i < oldIds.length; i++) if (oldIds[i] !== 0) this.place(oldIds[i]!, oldValues[i] as V);
    // The old arrays are dropped whole; clear them anyway, so that if one was promoted it holds nothing.
    oldIds.fill(0);
    oldValues.fill(undefined);
  }
}
