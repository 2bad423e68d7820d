/**
 * A FIFO bounded in count and in bytes. offer() refuses (returns false) rather than grow:
 * the caller drops the item and tells raft, which retries, as etcd does with its channels.
 */
export class BoundedQueue<T> {
  private items: T[] = [];
  private head = 0;
  /** Bytes of the queued items, as sizeOf measured them. */
  queuedBytes = 0;

  constructor(
    readonly maxQueuedItems: number,
    readonly maxQueuedBytes: number,
    private readonly sizeOf: (item: T) => number,
  ) {}

  get length(): number {
    return this.items.length - this.head;
  }

  offer(item: T): boolean {
    const size = this.sizeOf(item);
    if (this.length >= this.maxQueuedItems || this.queuedBytes + size > this.maxQueuedBytes) return false;
    this.items.push(item);
    this.queuedBytes += size;
    return true;
  }

  poll(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head]!;
    this.items[this.head] = undefined as T; // let it be collected
    this.head++;
    this.queuedBytes -= this.sizeOf(item);
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  /** Empties the queue; returns how many items it held. */
  clear(): number {
    const n = this.length;
    this.items = [];
    this.head = 0;
    this.queuedBytes = 0;
    return n;
  }
}
