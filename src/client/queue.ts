// A bounded hand-off from a stream's callbacks to an async iterator's consumer. Pushing past
// the bound is the producer's signal to pause its source (the gRPC stream), so a slow consumer
// slows the server's sends through HTTP/2 flow control instead of growing memory.

type Waiter<T> = { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void };

export class AsyncQueue<T> implements AsyncIterableIterator<T> {
  private items: T[] = [];
  private head = 0;
  private waiters: Waiter<T>[] = [];
  private ended = false;
  private failure: { error: unknown } | undefined;

  /**
   * @param maxQueuedItems items held before `push` returns false (the producer should pause)
   * @param onDrained called when a consumer takes the queue back under half the bound
   * @param onReturn called once when the consumer stops early (break, return())
   */
  constructor(
    private readonly maxQueuedItems: number,
    private readonly onDrained: () => void,
    private readonly onReturn: () => void,
  ) {}

  get size(): number { return this.items.length - this.head; }

  /** False when the queue is at its bound: pause the source until onDrained. */
  push(item: T): boolean {
    if (this.ended) return true;
    const w = this.waiters.shift();
    if (w) { w.resolve({ value: item, done: false }); return true; }
    this.items.push(item);
    return this.size < this.maxQueuedItems;
  }

  end(): void {
    this.ended = true;
    for (const w of this.waiters.splice(0)) w.resolve({ value: undefined, done: true });
  }

  fail(error: unknown): void {
    if (this.ended) return;
    this.failure = { error };
    this.ended = true;
    for (const w of this.waiters.splice(0)) w.reject(error);
  }

  next(): Promise<IteratorResult<T>> {
    if (this.size > 0) {
      const value = this.items[this.head]!;
      this.items[this.head++] = undefined as T;
      if (this.head > 1024 && this.head * 2 > this.items.length) { this.items = this.items.slice(this.head); this.head = 0; }
      if (this.size === Math.floor(this.maxQueuedItems / 2)) this.onDrained();
      return Promise.resolve({ value, done: false });
    }
    if (this.failure) return Promise.reject(this.failure.error);
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  return(): Promise<IteratorResult<T>> {
    if (!this.ended) { this.end(); this.onReturn(); }
    this.items = [];
    this.head = 0;
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this { return this; }
}
