/**
 * Where MemoryStorage keeps its entries' payload bytes: copied, in log order, into a few large
 * chunks instead of one allocation per entry.
 *
 * Why: a member holds every entry since its last snapshot (up to --snapshot-count, 100,000 by
 * default; etcd holds the same) and drops ~95% of them at once when it compacts. Kept as one
 * ArrayBuffer each (~300 bytes of payload plus ~200 bytes of V8 and Node bookkeeping, all
 * malloc'd), the dropped entries left ~40 MiB of free blocks in glibc's main heap after 100k
 * puts, resident for good: they are scattered among live blocks, and only malloc_trim (which
 * Node never calls) gives such blocks back. A chunk larger than glibc's largest mmap
 * threshold (32 MiB: the threshold rises to the size of any freed mapping up to that) is
 * always a mapping of its own: only the pages written count in RSS, and freeing it unmaps it.
 *
 * So a log starts in small chunks (a few entries in tests, a quiet member) and, past
 * smallChunkCount of them, goes on in big ones; MemoryStorage starts a new arena when it
 * compacts and copies the entries it keeps into it, so the old chunks, once the views handed
 * out of them are gone, are freed whole by the next GC that finds them unreachable.
 *
 * A view handed out keeps its whole chunk alive: whoever keeps bytes of an entry past its
 * apply must copy them (the MVCC store does; the generated decoders copy bytes fields).
 */

/** Small chunks: malloc'd from glibc's heap like any buffer; wasted tails stay small. */
export const smallChunkBytes = 64 * 1024;
/** Small chunks an arena takes before it goes on in big ones (1 MiB of payload). */
export const smallChunkCount = 16;
/** Over 32 MiB, glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit: always mmap'd, unmapped on free. */
export const bigChunkBytes = 32 * 1024 * 1024 + 64 * 1024;

export class PayloadArena {
  private chunk: Uint8Array | undefined;
  private used = 0;
  private chunks = 0;

  /** A copy of `data` in the arena (empty data is returned as it is: nothing to hold). */
  copy(data: Uint8Array): Uint8Array {
    const n = data.length;
    if (n === 0) return data;
    if (this.chunk === undefined || this.chunk.length - this.used < n) this.startChunk(n);
    const chunk = this.chunk!;
    const at = this.used;
    chunk.set(data, at);
    this.used = at + n;
    return new Uint8Array(chunk.buffer, at, n);
  }

  /** Chunks taken so far (for tests and the next engineer's measurements). */
  get chunkCount(): number {
    return this.chunks;
  }

  private startChunk(atLeast: number): void {
    const size = Math.max(atLeast, this.chunks < smallChunkCount ? smallChunkBytes : bigChunkBytes);
    // Uninitialized: a fresh mapping is zero already and stays unresident until written; a
    // small chunk's bytes are all written before any view of them is handed out.
    this.chunk = new Uint8Array(Buffer.allocUnsafeSlow(size).buffer, 0, size);
    this.used = 0;
    this.chunks++;
  }
}
