/**
 * Segment files with their blocks really allocated, prepared off the hot path.
 *
 * A segment "preallocated" with ftruncate is sparse: every append into it makes the
 * fdatasync that follows allocate blocks and journal the metadata, which on ext4 roughly
 * doubles the sync's median and multiplies its p99. etcd fallocates instead; Node has no
 * fallocate, and zero-filled blocks sync faster still (no unwritten-extent conversion), so
 * segments are written full of zeros before any record goes into them.
 *
 * Writing 64 MB at a cut would stall every save behind it, so, like etcd's filePipeline
 * (wal/file_pipeline.go), the next segment is prepared in the background while the current
 * one is in use, as `0.tmp` / `1.tmp` in the WAL directory; a cut takes it, writes the
 * segment header into it and renames it into place. The file read back is the same as
 * etcd's: records, then zeros to the segment size.
 *
 * The price is writing every segment twice (zeros, then records). Below disk saturation
 * that is hidden in the background; at saturation (bench/wal.ts, batch=256: ~120 MB/s of
 * records, a cut every ~0.5 s) saves that overlap the background fill have a higher p99.
 * Two things keep the fill off the saves' way: it syncs every FILL_SYNC_EVERY_BYTES rather
 * than once at the end (no 64 MB writeback for a WAL fdatasync to queue behind), and the WAL
 * starts it only once its tail is a quarter full (wal.ts), not at open: a server that just
 * started is not writing 64 MB of zeros while its first clients wait on fdatasync.
 */

import { open, readdir, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { WalError } from './errors.js';

/** Zeros are written (and compared) this many bytes at a time. */
export const ZERO_CHUNK_BYTES = 1024 * 1024;

let zeroBuf: Buffer | undefined;
function zeros(): Buffer {
  return (zeroBuf ??= Buffer.alloc(ZERO_CHUNK_BYTES));
}

/** Suffix of a segment being prepared (etcd: `%d.tmp`). */
const TMP_SUFFIX = '.tmp';

export type PipelineLogger = (level: 'info' | 'warn', msg: string, fields: Record<string, unknown>) => void;

/**
 * Dirty zeros a background fill leaves in the page cache before it syncs them. Without a
 * bound, a 64 MB segment was one 64 MB writeback at its final datasync: the disk queue was
 * full for that long, and every WAL fdatasync (a client's put) waited behind it. 4 MiB
 * bursts leave the disk to the WAL's syncs between them.
 */
export const FILL_SYNC_EVERY_BYTES = 4 * 1024 * 1024;

/**
 * Writes zeros over [from, to) of `h` in ZERO_CHUNK_BYTES pieces. `stop` is asked between
 * pieces; returns false if it said to stop. With `syncEveryBytes`, the file is datasynced
 * each time that many bytes have been written (not at the end: the caller syncs then).
 */
export async function writeZeros(h: FileHandle, from: number, to: number, stop?: () => boolean, syncEveryBytes = 0): Promise<boolean> {
  const z = zeros();
  let off = from;
  let unsynced = 0;
  while (off < to) {
    if (stop?.()) return false;
    const n = Math.min(z.length, to - off);
    const { bytesWritten } = await h.write(z, 0, n, off);
    off += bytesWritten;
    unsynced += bytesWritten;
    if (syncEveryBytes > 0 && unsynced >= syncEveryBytes && off < to) {
      await h.datasync();
      unsynced = 0;
    }
  }
  return true;
}

/**
 * Makes [from, to) of `h` zeros on allocated blocks, extending the file if it is shorter.
 * If every block of the file is already allocated (one of ours, zero-filled, or etcd's,
 * fallocated), only the pieces that are not zero (a torn write's leftovers) are rewritten;
 * otherwise (a sparse file) the whole range is written. No sync; returns the bytes written.
 */
export async function zeroRange(h: FileHandle, from: number, to: number): Promise<number> {
  if (from >= to) return 0;
  const st = await h.stat();
  if (st.size < to || st.blocks * 512 < st.size) {
    await writeZeros(h, from, to);
    return to - from;
  }
  const z = zeros();
  const buf = Buffer.allocUnsafe(z.length);
  let written = 0;
  for (let off = from; off < to; ) {
    const n = Math.min(buf.length, to - off);
    let got = 0;
    while (got < n) {
      const { bytesRead } = await h.read(buf, got, n - got, off + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    if (got < n || !buf.subarray(0, n).equals(z.subarray(0, n))) {
      await writeZeros(h, off, off + n);
      written += n;
    }
    off += n;
  }
  return written;
}

/** Removes segment files left half-prepared by a crash (`*.tmp` in the WAL directory). */
export async function removeTmpSegments(dir: string): Promise<string[]> {
  const removed: string[] = [];
  for (const n of await readdir(dir)) {
    if (!n.endsWith(TMP_SUFFIX)) continue;
    await unlink(join(dir, n));
    removed.push(n);
  }
  return removed;
}

export interface PreparedFile {
  /** Open read-write, `size` bytes of synced zeros. */
  handle: FileHandle;
  path: string;
}

/**
 * Prepares one segment file ahead, in the background. `take()` hands it over (waiting if it
 * is not ready yet); the caller renames it away and calls `prepare()` for the next one.
 * Files alternate between `0.tmp` and `1.tmp` (etcd's count % 2), so a file being
 * prepared never has the name of one just handed over.
 */
export class FilePipeline {
  private count = 0;
  private next: Promise<PreparedFile> | undefined;
  private ready = false;
  private stopped = false;

  constructor(
    private readonly dir: string,
    private readonly size: number,
    private readonly log: PipelineLogger,
    /** Dirty bytes a fill may leave before syncing them (0: one sync at the end). */
    private readonly syncEveryBytes = FILL_SYNC_EVERY_BYTES,
  ) {}

  /** True while a file is being prepared or waits, prepared, to be taken. */
  get preparing(): boolean {
    return this.next !== undefined;
  }

  /** Starts preparing the next file, unless one is already prepared or being prepared. */
  prepare(): void {
    if (this.stopped || this.next !== undefined) return;
    this.ready = false;
    const p = this.alloc();
    this.next = p;
    p.then(
      () => {
        if (this.next === p) this.ready = true;
      },
      (err: unknown) => {
        if (!this.stopped) this.log('warn', 'wal: failed to prepare the next segment file', { dir: this.dir, error: String(err) });
      },
    );
  }

  /** Resolves once the file being prepared (if any) is ready, or its preparation failed. */
  async prepared(): Promise<void> {
    await this.next?.catch(() => {});
  }

  /**
   * The prepared file, now the caller's. If it is not ready the caller waits for it (and
   * this is logged: the pipeline fell behind); if preparing it failed, it is tried once
   * more here before the error is passed on.
   */
  async take(): Promise<PreparedFile> {
    if (this.stopped) throw new WalError('Closed', 'wal: closed');
    this.prepare();
    const p = this.next!;
    const wasReady = this.ready;
    this.next = undefined;
    this.ready = false;
    const t0 = performance.now();
    let f: PreparedFile;
    try {
      f = await p;
    } catch {
      f = await this.alloc();
    }
    if (!wasReady) {
      this.log('warn', 'wal: the next segment file was not prepared in time; the cut waited for it', {
        path: f.path,
        waitedMs: Math.round((performance.now() - t0) * 1000) / 1000,
      });
    }
    return f;
  }

  /** Stops preparing, and removes a file prepared but never taken. */
  async close(): Promise<void> {
    this.stopped = true;
    const p = this.next;
    this.next = undefined;
    if (p === undefined) return;
    let f: PreparedFile;
    try {
      f = await p;
    } catch {
      return; // alloc() cleaned up after itself
    }
    try {
      await f.handle.close();
    } finally {
      await unlink(f.path).catch(() => {});
    }
  }

  private async alloc(): Promise<PreparedFile> {
    const path = join(this.dir, `${this.count % 2}${TMP_SUFFIX}`);
    this.count++;
    const h = await open(path, 'w+', 0o600);
    try {
      if (!(await writeZeros(h, 0, this.size, () => this.stopped, this.syncEveryBytes))) {
        throw new WalError('Closed', 'wal: closed while preparing a segment file');
      }
      await h.datasync();
    } catch (err) {
      await h.close().catch(() => {});
      await unlink(path).catch(() => {});
      throw err;
    }
    return { handle: h, path };
  }
}
