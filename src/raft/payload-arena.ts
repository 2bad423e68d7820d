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

/**
 * Where a stored payload is: the chunk's number times 2^32 plus the offset in it (an exact
 * double: chunks are far below 4 GiB). Numbers in an array, not a view object per entry.
 */
export type PayloadHandle = number;
const chunkStride = 2 ** 32;

export class PayloadArena {
  private readonly chunkList: Uint8Array[] = [];
  private used = 0;

  /** A copy of `data` in the arena (empty data is returned as it is: nothing to hold). */
  copy(data: Uint8Array): Uint8Array {
    const n = data.length;
    if (n === 0) return data;
    return this.view(this.store(data), n);
  }

  /** Copies `data` (not empty) into the arena; view() reads it back. */
  store(data: Uint8Array): PayloadHandle {
    const handle = this.reserve(data.length);
    // reserve() placed it at the end of the newest chunk: no need to find the chunk again.
    this.chunkList[this.chunkList.length - 1]!.set(data, this.used - data.length);
    return handle;
  }

  /**
   * Room for `n` bytes (n > 0), contiguous in one chunk, right after the previous reservation
   * when it fits in the same chunk. The caller must write() them before it hands out any
   * view of them: a small chunk is not zeroed.
   */
  reserve(n: number): PayloadHandle {
    if (!(n > 0)) throw new RangeError(`PayloadArena.reserve: ${n} bytes`);
    let k = this.chunkList.length - 1;
    if (k < 0 || this.chunkList[k]!.length - this.used < n) {
      this.startChunk(n);
      k++;
    }
    const at = this.used;
    this.used = at + n;
    return k * chunkStride + at;
  }

  /** Writes `data` at `handle`: into reserved room (reserve() of at least data.length, or consecutive reservations). */
  write(handle: PayloadHandle, data: Uint8Array): void {
    const k = Math.floor(handle / chunkStride);
    this.chunkList[k]!.set(data, handle - k * chunkStride);
  }

  /** The `length` bytes stored at `handle`, as a view of their chunk (which it keeps alive). */
  view(handle: PayloadHandle, length: number): Uint8Array {
    const k = Math.floor(handle / chunkStride);
    const chunk = this.chunkList[k]!;
    return new Uint8Array(chunk.buffer, handle - k * chunkStride, length);
  }

  /** Chunks taken so far (for tests and the next engineer's measurements). */
  get chunkCount(): number {
    return this.chunkList.length;
  }

  private startChunk(atLeast: number): void {
    const size = Math.max(atLeast, this.chunkList.length < smallChunkCount ? smallChunkBytes : bigChunkBytes);
    // Uninitialized: a fresh mapping is zero already and stays unresident until written; a
    // small chunk's bytes are all written before any view of them is handed out.
    this.chunkList.push(new Uint8Array(Buffer.allocUnsafeSlow(size).buffer, 0, size));
    this.used = 0;
  }
}
