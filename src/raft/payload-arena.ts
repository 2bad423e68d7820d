/**
 * Where MemoryStorage keeps its entries' payload bytes: copied, in log order, into chunks of
 * a fixed size instead of one allocation per entry.
 *
 * Why: a member holds every entry since its last snapshot (up to --snapshot-count, 100,000 by
 * default; etcd holds the same) and drops ~95% of them at once when it compacts. Kept as one
 * ArrayBuffer each (~300 bytes of payload plus ~200 bytes of V8 and Node bookkeeping, all
 * malloc'd), the dropped entries left ~40 MiB of free blocks in glibc's main heap after 100k
 * puts, resident for good: scattered among live blocks, they are neither given back nor
 * reused whole. A chunk is dropped whole when the log is compacted past its last entry. The
 * `concord` launcher (bin/concord.js) fixes glibc's mmap threshold at chunkBytes, so each chunk
 * is a mapping of its own, unmapped when freed. Under glibc's default, whose threshold rises to
 * the size of any large block freed, the chunks land in the main heap once one was freed, pin
 * its top and keep what is freed below them resident (RSS after 100k keys 147 vs 124 MiB).
 *
 * Why chunks of 1 MiB and not larger: V8 counts an ArrayBuffer's whole size as external
 * memory when it is allocated, and a step of 32 MiB (the chunk size this arena had, so as to
 * be always an mmap of its own) crossed V8's external-memory limit: two scavenges back to back
 * ("external memory pressure") and the start of a full marking, a 20-25 ms pause of the main
 * thread at every snapshot under put load (issue 14, --trace-gc). Compaction no longer
 * allocates or copies anything: it drops the chunks wholly before the first kept entry.
 *
 * A log starts in small chunks (a few entries in tests, a quiet member), then goes on in
 * chunkBytes ones. A view handed out keeps its whole chunk alive: whoever keeps bytes of an
 * entry past its apply must copy them (the MVCC store does; the generated decoders copy bytes
 * fields).
 */

/** Small chunks: the first ones a log takes; wasted tails stay small. */
export const smallChunkBytes = 64 * 1024;
/** Small chunks an arena takes before it goes on in chunkBytes ones (1 MiB of payload). */
export const smallChunkCount = 16;
/** The chunks after the small ones (a larger payload gets a chunk of its own size). */
export const chunkBytes = 1024 * 1024;

/**
 * Where a stored payload is: the chunk's number (counted from the oldest chunk held) times
 * 2^32 plus the offset in it (an exact double). Numbers in an array, not a view object per
 * entry. releaseBefore() renumbers the chunks it keeps: handles then move by its result.
 */
export type PayloadHandle = number;
const chunkStride = 2 ** 32;

export class PayloadArena {
  private readonly chunkList: Uint8Array[] = [];
  /** Bytes used in the newest chunk. */
  private used = 0;
  /** Chunks taken since the arena was made (released ones too): when the small ones end. */
  private taken = 0;

  /** A copy of `data` in the arena (empty data is returned as it is: nothing to hold). */
  copy(data: Uint8Array): Uint8Array {
    const n = data.length;
    if (n === 0) return data;
    return this.view(this.store(data), n);
  }

  /** Copies `data` (not empty) into the arena, after the previous payload when it fits in the same chunk. */
  store(data: Uint8Array): PayloadHandle {
    const n = data.length;
    if (!(n > 0)) throw new RangeError(`PayloadArena.store: ${n} bytes`);
    let k = this.chunkList.length - 1;
    if (k < 0 || this.chunkList[k]!.length - this.used < n) {
      this.startChunk(n);
      k++;
    }
    const at = this.used;
    this.chunkList[k]!.set(data, at);
    this.used = at + n;
    return k * chunkStride + at;
  }

  /** The `length` bytes stored at `handle`, as a view of their chunk (which it keeps alive). */
  view(handle: PayloadHandle, length: number): Uint8Array {
    const k = Math.floor(handle / chunkStride);
    const chunk = this.chunkList[k]!;
    return new Uint8Array(chunk.buffer, handle - k * chunkStride, length);
  }

  /**
   * Drops every chunk before the one holding `handle` (every chunk when it is undefined: no
   * payload is kept). Returns what to subtract from each handle kept (those at or after
   * `handle`): the kept chunks are renumbered from 0, so handles stay small however long the
   * member runs.
   */
  releaseBefore(handle: PayloadHandle | undefined): number {
    if (handle === undefined) {
      this.chunkList.length = 0;
      this.used = 0;
      return 0;
    }
    const k = Math.floor(handle / chunkStride);
    if (!(k >= 0 && k < this.chunkList.length)) throw new RangeError(`PayloadArena.releaseBefore: chunk ${k} of ${this.chunkList.length}`);
    this.chunkList.splice(0, k);
    return k * chunkStride;
  }

  /** Chunks held (for tests and the next engineer's measurements). */
  get chunkCount(): number {
    return this.chunkList.length;
  }

  private startChunk(atLeast: number): void {
    const size = Math.max(atLeast, this.taken < smallChunkCount ? smallChunkBytes : chunkBytes);
    // Uninitialized: every byte is written before any view of it is handed out.
    this.chunkList.push(new Uint8Array(Buffer.allocUnsafeSlow(size).buffer, 0, size));
    this.taken++;
    this.used = 0;
  }
}
