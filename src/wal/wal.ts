/**
 * The write-ahead log: etcd's wal package in TypeScript, writing and reading the same files.
 *
 * Life cycle, as in etcd: `Wal.create()` returns a WAL ready to append; `Wal.open()` returns
 * one ready to read from a snapshot marker, and after `readAll()` it appends after the last
 * valid record. Only the newest segment (the tail) is kept open; older ones are read once
 * at open and later deleted by `releaseLockTo()`.
 *
 * Durability: `save()` encodes everything it is given into one buffer, issues one write and,
 * when asked to sync, one fdatasync — so a caller that gathers every proposal arriving during
 * an fsync into the next save() gets group commit. Calls are serialized internally; each
 * resolves once its bytes are written (and synced, if asked).
 */

import { open, rename, rm, mkdir, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { writeSync } from 'node:fs';
import {
  decodeEntry,
  decodeHardState,
  encodeHardState,
  isEmptyHardState,
  type Entry,
  type HardState,
} from '../proto/index.js';
import { decodeWalSnapshot, encodeWalSnapshot, type WalSnapshot } from '../proto/index.js';
import { loopTrace } from '../metrics/index.js';
import { decodeSegment } from './decoder.js';
import { RecordEncoder } from './encoder.js';
import { WalCorruptError, WalError } from './errors.js';
import { FilePipeline, removeTmpSegments, writeZeros, zeroRange } from './file_pipeline.js';
import { RecordType } from './frame.js';
import { isValidSeq, parseWalName, readWalNames, searchIndex, walName } from './names.js';
import { BlockingSyncPolicy } from './blocking-sync-policy.js';
import { boundedDataSyncer, boundedSyncUnavailable, noDataSyncer, type DataSyncer } from './data-syncer.js';
import { formatDuration } from '../log/index.js';

export type { DataSyncer } from './data-syncer.js';

/** etcd's wal.SegmentSizeBytes: 64 * 1000 * 1000 (etcd's "64MB", decimal). */
export const DEFAULT_SEGMENT_SIZE_BYTES = 64 * 1000 * 1000;

/**
 * Fraction of the tail segment written before the next segment starts being prepared. Not
 * at once (at open the tail is empty, and a server just started would fill 64 MB of zeros
 * while its first clients wait on fdatasync); not late (the three quarters left give the
 * fill a segment's worth of time minus a quarter, enough below disk saturation).
 */
export const PREPARE_NEXT_AT_FRACTION = 0.25;
/**
 * How long a deferred commit-only hard state may wait for a write to carry it before the WAL
 * writes it alone (not synced). Under load the next batch carries it well within this; when
 * writes stop, it still reaches the file (the page cache), so a member killed after applying
 * an entry has a WAL that says the entry was committed. etcd's buffered encoder keeps it in
 * the process until the next sync, and a killed survivor forced with --force-new-cluster then
 * drops the entry as uncommitted (etcd 3.4.23: test/force-new-cluster.test.ts).
 */
export const PENDING_STATE_IDLE_MS = 5;

/** Receives the WAL's notable events (a truncated torn tail, a new segment, ...). */
export type WalLogger = (level: 'info' | 'warn', msg: string, fields: Record<string, unknown>) => void;

export interface WalOptions {
  /**
   * Size segments are preallocated to (zero-filled, so their blocks are allocated) and cut
   * at. Tests use small ones.
   */
  segmentSizeBytes?: number;
  logger?: WalLogger;
  /** When saveNow may fdatasync on the calling thread (default: disk pressure and recent sync times). */
  blockingSync?: BlockingSyncPolicy;
  /** The tail's fdatasync (tests make it slow); default node:fs's, and the bounded one when built. */
  datasync?: DataSyncer;
  /**
   * How long saveNow's fdatasync may hold the calling thread (the event loop) before it goes
   * on in the background (DataSyncer.within). Default LOOP_SYNC_BUDGET_MS.
   */
  loopSyncBudgetMs?: number;
  /**
   * etcd's --unsafe-no-fsync (wal.SetUnsafeNoFsync): saves and sync() write but never
   * fdatasync the tail, so an acknowledged write may be lost to a power cut or a crash of the
   * machine. For tests and for measuring what a write costs besides the disk.
   */
  unsafeNoSync?: boolean;
}

/**
 * A bounded saveNow fdatasync (BlockingSyncPolicy.bounded) holds the event loop at most this
 * long (ms); a sync still running then finishes in the background. The loop's bound is 10 ms
 * a turn (issue 14) and the turn also applies and answers; a sync here takes ~0.2 ms at the
 * median and ~1 ms at p99.9, so a sync past 4 ms is the disk's hiccup.
 */
export const LOOP_SYNC_BUDGET_MS = 4;

/** The missing addon is logged once per process, not per WAL. */
let warnedUnbounded = false;

/** etcd's warnSyncDuration: an fdatasync longer than this (ms) is logged as "slow fdatasync". */
const WARN_SYNC_MS = 1000;

export interface ReadAllResult {
  metadata: Uint8Array;
  hardState: HardState;
  /** Entries after the snapshot the WAL was opened at, conflicts already resolved. */
  entries: Entry[];
}

const EMPTY_HARD_STATE: HardState = { term: 0, vote: 0n, commit: 0 };

async function fsyncDir(dir: string): Promise<void> {
  const h = await open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

/** Writes all of `buf` at `position` (a positional write may be short). */
async function writeFully(h: FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await h.write(buf, done, buf.length - done, position + done);
    done += bytesWritten;
  }
}

export class Wal {
  private readonly segmentSize: number;
  private readonly log: WalLogger;
  private readonly blockingSync: BlockingSyncPolicy;
  /** Every sync of the records' segment goes through it (one place, as etcd's WAL.sync): --unsafe-no-fsync swaps it. */
  private readonly datasync: DataSyncer;
  private readonly loopSyncBudgetMs: number;
  /** The bounded sync outlasted its budget: settles the save it belongs to (see datasyncTailNow). */
  private lateSync: { started: number; resolve: () => void; reject: (err: Error) => void } | undefined;
  /** DataSyncer.within's late callback, made once. */
  private readonly onLateSync = (err: Error | null): void => {
    const s = this.lateSync!;
    this.lateSync = undefined;
    if (err) return s.reject(err);
    this.synced(performance.now() - s.started);
    s.resolve();
  };

  /** Every segment this WAL holds, oldest first; the last is the tail. */
  private names: string[] = [];
  /** Read mode: the first segment readAll() reads, and the snapshot it starts after. */
  private readFrom = -1;
  private start: WalSnapshot | undefined;

  private tail: FileHandle | undefined;
  private tailOffset = 0;
  private encoder: RecordEncoder | undefined;
  private metadata: Uint8Array = new Uint8Array(0);
  /** The last hard state saved, restated at the head of every new segment. */
  private state: HardState = EMPTY_HARD_STATE;
  /**
   * A hard state saved without mustSync and without entries (only the commit index moved:
   * raft's MustSync rule says it need not be durable) and not yet written: it goes out with
   * the next write, as etcd's buffered encoder holds it until its next flush. One syscall
   * fewer per committed batch on the main thread.
   */
  private pendingState: HardState | undefined;
  /** Writes pendingState once no write carried it for PENDING_STATE_IDLE_MS (re-armed on each deferral). */
  private pendingStateTimer: NodeJS.Timeout | undefined;
  /** Index of the last entry (or snapshot) saved: names the next segment. */
  private enti = 0;
  private closed = false;
  /** Prepares the next segment file while the tail is in use (once the WAL is writable). */
  private pipeline: FilePipeline | undefined;
  /** Serializes save/saveSnapshot/releaseLockTo/close. */
  private queue: Promise<unknown> = Promise.resolve();
  /** Calls queued on `queue` and not yet finished (saveNow runs only when none is). */
  private queued = 0;

  private constructor(
    private readonly dir: string,
    opts: WalOptions,
  ) {
    this.segmentSize = opts.segmentSizeBytes ?? DEFAULT_SEGMENT_SIZE_BYTES;
    this.log = opts.logger ?? (() => {});
    this.blockingSync = opts.blockingSync ?? new BlockingSyncPolicy();
    this.datasync = opts.unsafeNoSync ? noDataSyncer : opts.datasync ?? boundedDataSyncer();
    if (this.datasync.within === undefined && opts.datasync === undefined && !opts.unsafeNoSync && !warnedUnbounded) {
      warnedUnbounded = true;
      this.log('warn', 'wal: the bounded fdatasync is not built; a slow sync holds the event loop', { reason: boundedSyncUnavailable });
    }
    this.loopSyncBudgetMs = opts.loopSyncBudgetMs ?? LOOP_SYNC_BUDGET_MS;
  }

  /** True if `dir` holds any WAL segment. */
  static async exists(dir: string): Promise<boolean> {
    try {
      return (await readWalNames(dir)).length > 0;
    } catch {
      return false;
    }
  }

  /**
   * Creates a WAL in `dir` (which must not hold one) ready for appending: a first segment
   * with a crc record, a metadata record and the snapshot record {0, 0}, as etcd writes it.
   * The segment is built in `dir.tmp` and renamed, so creation appears atomic. It is
   * zero-filled to the segment size first (a one-off cost of creation), and the segment
   * after it starts being prepared in the background.
   */
  static async create(dir: string, metadata: Uint8Array, opts: WalOptions = {}): Promise<Wal> {
    if (await Wal.exists(dir)) throw new WalError('Exist', `wal: ${dir} already holds a WAL`);
    const tmpDir = dir.replace(/\/+$/, '') + '.tmp';
    await rm(tmpDir, { recursive: true, force: true });
    await mkdir(tmpDir, { recursive: true });

    const w = new Wal(dir, opts);
    const name = walName(0, 0);
    const h = await open(join(tmpDir, name), 'w+', 0o600);
    try {
      await writeZeros(h, 0, w.segmentSize);
      w.metadata = metadata;
      const enc = new RecordEncoder(0);
      enc.appendCrc();
      enc.appendData(RecordType.metadata, metadata);
      enc.appendData(RecordType.snapshot, encodeWalSnapshot({ index: 0, term: 0 }));
      await writeFully(h, enc.bytes(), 0);
      await h.datasync();
      w.tailOffset = enc.length;
      enc.reset();
      w.encoder = enc;

      await rm(dir, { recursive: true, force: true });
      await rename(tmpDir, dir);
      await fsyncDir(dirname(dir));
    } catch (err) {
      await h.close();
      throw err;
    }
    w.tail = h;
    w.names = [name];
    w.startPipeline();
    return w;
  }

  /**
   * Opens the WAL in `dir` for reading from the snapshot `snap` (a snapshot record the WAL
   * holds, e.g. {0, 0} for a new one). Call readAll() next; appends are possible after it.
   * Segment files a crash left half-prepared (`*.tmp`) are removed.
   */
  static async open(dir: string, snap: WalSnapshot, opts: WalOptions = {}): Promise<Wal> {
    let names: string[];
    try {
      names = await readWalNames(dir);
    } catch {
      names = [];
    }
    if (names.length === 0) throw new WalError('FileNotFound', `wal: file not found in ${dir}`);
    const from = searchIndex(names, snap.index);
    if (from < 0 || !isValidSeq(names.slice(from))) {
      throw new WalError('FileNotFound', `wal: no segment sequence in ${dir} covers snapshot index ${snap.index}`);
    }
    const w = new Wal(dir, opts);
    const leftovers = await removeTmpSegments(dir);
    if (leftovers.length > 0) w.log('info', 'wal: removed unfinished segment files', { dir, files: leftovers });
    w.names = names;
    w.readFrom = from;
    w.start = { index: snap.index, term: snap.term };
    w.tail = await open(join(dir, names[names.length - 1]), 'r+');
    return w;
  }

  /**
   * Reads every record after the snapshot marker. A torn last record is cut off (and
   * logged); the rest of the tail segment, up to the segment size, is zeros on allocated
   * blocks so new records follow the last valid one. Throws WalCorruptError on damage before the tail, and WalError 'SnapshotNotFound'
   * if the WAL has no record of the snapshot it was opened at.
   */
  async readAll(): Promise<ReadAllResult> {
    const start = this.start;
    if (start === undefined || this.tail === undefined) {
      throw new WalError('NotRead', 'wal: readAll() is only for a WAL just opened');
    }
    this.start = undefined;

    let metadata: Uint8Array | undefined;
    let hardState: HardState = EMPTY_HARD_STATE;
    const entries: Entry[] = [];
    let match = false;
    let crc = 0;
    let end = 0;
    let tornAt: string | undefined;
    let lastFile = '';

    for (let i = this.readFrom; i < this.names.length; i++) {
      const file = join(this.dir, this.names[i]);
      const isLast = i === this.names.length - 1;
      lastFile = file;
      const res = await decodeSegment(file, file, isLast, crc, (rec, offset) => {
        const data = rec.data ?? new Uint8Array(0);
        switch (rec.type) {
          case RecordType.entry: {
            const e = decodeEntry(data);
            if (e.index > start.index) {
              // A later record for an index replaces it and everything after (raft truncated
              // a conflicting suffix): keep entries up to index-1, then this one.
              const up = e.index - start.index - 1;
              if (up > entries.length) {
                throw new WalError('SliceOutOfRange', `wal: entry ${e.index} leaves a gap in ${file} at offset ${offset}`);
              }
              entries.length = up;
              entries.push(e);
            }
            this.enti = e.index;
            break;
          }
          case RecordType.state:
            hardState = decodeHardState(data);
            break;
          case RecordType.metadata:
            if (metadata !== undefined && Buffer.compare(metadata, data) !== 0) {
              throw new WalError('MetadataConflict', `wal: conflicting metadata found in ${file} at offset ${offset}`);
            }
            // Copy: `data` is a view into the segment buffer.
            metadata = Uint8Array.prototype.slice.call(data);
            break;
          case RecordType.crc:
            break;
          case RecordType.snapshot: {
            const s = decodeWalSnapshot(data);
            if (s.index === start.index) {
              if (s.term !== start.term) {
                throw new WalError(
                  'SnapshotMismatch',
                  `wal: snapshot mismatch: WAL has {index ${s.index}, term ${s.term}}, asked for term ${start.term}`,
                );
              }
              match = true;
            }
            break;
          }
          default:
            throw new WalCorruptError(file, offset, `unexpected block type ${rec.type}`);
        }
      });
      crc = res.crc;
      end = res.end;
      tornAt = res.torn;
    }

    // Zero everything after the last valid record (etcd's ZeroToEnd): a torn write may have
    // left non-zero bytes past a zero sector, which later appends would only partly cover.
    // Zeros are written, not left as a hole, so appends need no block allocation.
    const size = (await this.tail.stat()).size;
    if ((await zeroRange(this.tail, end, Math.max(size, this.segmentSize))) > 0) await this.tail.datasync();
    if (tornAt !== undefined) {
      this.log('warn', 'wal: truncated a torn last record', { path: lastFile, detail: tornAt, offset: end });
    }

    this.tailOffset = end;
    this.encoder = new RecordEncoder(crc);
    this.metadata = metadata ?? new Uint8Array(0);
    this.state = hardState;
    if (!match) {
      throw new WalError('SnapshotNotFound', `wal: snapshot {index ${start.index}, term ${start.term}} not found`);
    }
    this.startPipeline();
    return { metadata: this.metadata, hardState, entries };
  }

  /**
   * Appends `entries` and then `hardState` (if given and not empty) in one write; with
   * `mustSync`, one fdatasync. Cuts to a new segment when the tail passes the segment size.
   */
  save(hardState: HardState | undefined, entries: readonly Entry[], mustSync: boolean): Promise<void> {
    return this.serialize(async () => {
      const hsEmpty = hardState === undefined || isEmptyHardState(hardState);
      if (hsEmpty && entries.length === 0) return;
      const enc = this.writable();
      if (!hsEmpty && entries.length === 0 && !mustSync) {
        this.deferState(hardState!);
        return;
      }
      const t0 = loopTrace ? performance.now() : 0;
      this.encodeRecords(enc, hardState, hsEmpty, entries);
      this.append(enc);
      loopTrace?.span('wal.write', t0, entries.length);
      if (this.tailOffset < this.segmentSize) {
        if (mustSync) await this.datasyncTail();
        return;
      }
      await this.cut();
    });
  }

  /**
   * save(), done on the calling thread when nothing else is queued, no segment cut is due and
   * the disk looks fast (BlockingSyncPolicy): the write, then an fdatasync that blocks the
   * thread, or holds it at most loopSyncBudgetMs while the policy says syncs are bounded (one
   * lately held the loop past its bound). Returns true when the save is durable; a promise
   * when it is written and its bounded sync outlasted the budget (durable once the promise
   * resolves; later saves queue behind it); false when it declined (nothing written), and
   * the caller uses save(). A follower's write is on its acknowledgement's path and it has little else
   * to do meanwhile: waiting spares the thread pool's round trip (two thread hand-offs, each
   * a scheduling delay on a loaded machine) and a turn of the loop per write.
   */
  saveNow(hardState: HardState | undefined, entries: readonly Entry[], mustSync: boolean): boolean | Promise<void> {
    if (this.queued > 0) return false;
    if (mustSync && !this.blockingSync.mayBlock()) return false;
    const enc = this.writable();
    const hsEmpty = hardState === undefined || isEmptyHardState(hardState);
    if (hsEmpty && entries.length === 0) return true;
    if (!hsEmpty && entries.length === 0 && !mustSync) {
      this.deferState(hardState!);
      return true;
    }
    // A cut is due once the tail passes the segment size: leave that to save().
    if (this.tailOffset >= this.segmentSize) return false;
    const t0 = loopTrace ? performance.now() : 0;
    this.encodeRecords(enc, hardState, hsEmpty, entries);
    this.append(enc);
    loopTrace?.span('wal.write-now', t0, entries.length);
    const late = mustSync ? this.datasyncTailNow(entries.length) : undefined;
    // The tail is full: the cut goes on the queue, and later writes wait behind it.
    if (this.tailOffset >= this.segmentSize) void this.serialize(() => this.cut());
    return late ?? true;
  }

  /** Records that a snapshot at {index, term} exists, and syncs. */
  saveSnapshot(snap: WalSnapshot): Promise<void> {
    return this.serialize(async () => {
      const enc = this.writable();
      enc.reset();
      this.appendPendingState(enc); // a restart trusts snapshot records at or below the saved commit
      enc.appendData(RecordType.snapshot, encodeWalSnapshot(snap));
      this.append(enc);
      if (this.enti < snap.index) this.enti = snap.index;
      await this.datasyncTail();
    });
  }

  /** fdatasync of the tail segment (with a deferred hard state written first). */
  sync(): Promise<void> {
    return this.serialize(async () => {
      this.writable();
      this.flushPendingState();
      await this.datasyncTail();
    });
  }

  /**
   * Deletes segments wholly before `index`, as etcd's ReleaseLockTo picks them: every
   * segment older than the last one whose first index is below `index` (that one may still
   * hold entries at or after `index`, since raft can rewrite a conflicting suffix into a
   * newer segment). The tail is never deleted.
   */
  releaseLockTo(index: number): Promise<void> {
    return this.serialize(async () => {
      let smaller = this.names.length - 1;
      for (let i = 0; i < this.names.length; i++) {
        if (parseWalName(this.names[i])!.index >= index) {
          smaller = i - 1;
          break;
        }
      }
      if (smaller <= 0) return;
      const released = this.names.slice(0, smaller);
      this.names = this.names.slice(smaller);
      if (this.readFrom >= 0) this.readFrom = Math.max(0, this.readFrom - smaller);
      for (const n of released) await unlink(join(this.dir, n));
      this.log('info', 'wal: released segments', { count: released.length, upToIndex: index });
    });
  }

  /**
   * Syncs and closes the tail, and stops the pipeline (removing a segment file prepared but
   * unused). Later calls fail with WalError 'Closed'.
   */
  close(): Promise<void> {
    return this.serialize(async () => {
      if (this.closed) return;
      if (this.tail !== undefined) this.flushPendingState();
      clearTimeout(this.pendingStateTimer);
      this.closed = true;
      const p = this.pipeline;
      this.pipeline = undefined;
      const stopping = p?.close();
      const t = this.tail;
      this.tail = undefined;
      if (t !== undefined) {
        try {
          if (this.encoder !== undefined) await this.datasyncFd(t.fd);
        } finally {
          await t.close();
        }
      }
      this.datasync.close?.(); // after every sync the queue held, a late one included
      await stopping;
    });
  }

  /**
   * Resolves once the next segment file is prepared (for tests and benchmarks that want a
   * quiet disk; the WAL never needs to wait for this outside a cut).
   */
  async nextSegmentPrepared(): Promise<void> {
    await this.pipeline?.prepared();
  }

  /** Segment file names currently held, oldest first (for tools and tests). */
  segments(): string[] {
    return [...this.names];
  }

  /** Entries, then the hard state (given, or one deferred earlier), into enc. */
  private encodeRecords(enc: RecordEncoder, hardState: HardState | undefined, hsEmpty: boolean, entries: readonly Entry[]): void {
    enc.reset();
    for (let i = 0; i < entries.length; i++) enc.appendEntry(entries[i]);
    if (entries.length > 0) this.enti = entries[entries.length - 1].index;
    if (!hsEmpty) this.state = hardState!;
    if (!hsEmpty || this.pendingState !== undefined) enc.appendData(RecordType.state, encodeHardState(this.state));
    this.pendingState = undefined;
  }

  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    this.queued++;
    const run = this.queue.then(fn).finally(() => { this.queued--; });
    // Keep the chain going whatever this call's outcome; the caller sees its own error.
    this.queue = run.catch(() => {});
    return run;
  }

  private startPipeline(): void {
    this.pipeline = new FilePipeline(this.dir, this.segmentSize, this.log);
    this.maybePrepareNext();
  }

  /** Starts preparing the next segment once the tail is PREPARE_NEXT_AT_FRACTION full. */
  private maybePrepareNext(): void {
    const p = this.pipeline;
    if (p !== undefined && !p.preparing && this.tailOffset >= this.segmentSize * PREPARE_NEXT_AT_FRACTION) p.prepare();
  }

  private writable(): RecordEncoder {
    if (this.closed) throw new WalError('Closed', 'wal: closed');
    if (this.encoder === undefined) throw new WalError('NotRead', 'wal: call readAll() before appending');
    return this.encoder;
  }

  /**
   * Writes the encoded records at the tail. Synchronously: a batch is a few KiB landing in
   * the page cache (microseconds), and a thread-pool round trip for it would add latency to
   * every save; the fdatasync that follows is the slow part and stays asynchronous (but in
   * saveNow).
   */
  private append(enc: RecordEncoder): void {
    const buf = enc.bytes();
    const fd = this.tail!.fd;
    for (let done = 0; done < buf.length;) done += writeSync(fd, buf, done, buf.length - done, this.tailOffset + done);
    this.tailOffset += enc.length;
    this.maybePrepareNext();
  }

  private appendPendingState(enc: RecordEncoder): void {
    if (this.pendingState === undefined) return;
    enc.appendData(RecordType.state, encodeHardState(this.pendingState));
    this.pendingState = undefined;
  }

  /** Holds a commit-only hard state for the next write, and arms the idle write of it. */
  private deferState(hardState: HardState): void {
    this.state = hardState;
    this.pendingState = hardState;
    if (this.pendingStateTimer === undefined) {
      this.pendingStateTimer = setTimeout(() => this.writeIdlePendingState(), PENDING_STATE_IDLE_MS).unref();
    } else {
      this.pendingStateTimer.refresh();
    }
  }

  /** The idle write: at once when nothing is queued (no write in flight), else behind the queue. */
  private writeIdlePendingState(): void {
    if (this.pendingState === undefined || this.closed) return;
    if (this.queued === 0 && this.tailOffset < this.segmentSize) {
      this.flushPendingState();
      return;
    }
    void this.serialize(async () => {
      if (!this.closed) this.flushPendingState();
    }).catch((err: unknown) => this.log('warn', 'wal: writing a deferred hard state failed', { error: String(err) }));
  }

  /** Writes a deferred hard state, if any (not synced). */
  private flushPendingState(): void {
    if (this.pendingState === undefined) return;
    const enc = this.writable();
    enc.reset();
    this.appendPendingState(enc);
    this.append(enc);
  }

  /** fdatasync of the tail through the callback API (cheaper than FileHandle's promise path). */
  private datasyncTail(): Promise<void> {
    const fd = this.tail!.fd;
    const started = performance.now();
    return new Promise((resolve, reject) => this.datasync.later(fd, (err) => {
      if (err) return reject(err);
      this.synced(performance.now() - started);
      resolve();
    }));
  }

  /** fdatasync of a segment holding records through the WAL's syncer (none under --unsafe-no-fsync). */
  private datasyncFd(fd: number): Promise<void> {
    return new Promise((resolve, reject) => this.datasync.later(fd, (err) => (err ? reject(err) : resolve())));
  }

  /**
   * fdatasync of the tail on this thread (saveNow): undefined once it is done; a promise,
   * queued like a save, when it outlasted loopSyncBudgetMs and goes on in the background.
   * Bounded only while the policy says so (a sync lately held the loop past its bound);
   * otherwise, or without DataSyncer.within, it blocks for as long as the disk takes.
   */
  private datasyncTailNow(entries: number): Promise<void> | undefined {
    const fd = this.tail!.fd;
    const started = performance.now();
    const ds = this.datasync;
    if (ds.within === undefined || !this.blockingSync.bounded()) {
      ds.now(fd);
      loopTrace?.span('wal.fdatasync-now', started, entries);
    } else if (ds.within(fd, this.loopSyncBudgetMs, this.onLateSync)) {
      loopTrace?.span('wal.fdatasync-bounded', started, entries);
    } else {
      loopTrace?.span('wal.fdatasync-late', started, entries);
      const running = new Promise<void>((resolve, reject) => { this.lateSync = { started, resolve, reject }; });
      return this.serialize(() => running);
    }
    this.synced(performance.now() - started);
    return undefined;
  }

  /** A tail fdatasync took `ms`: the blocking policy learns of it; etcd's warning if over a second. */
  private synced(ms: number): void {
    this.blockingSync.synced(ms);
    if (ms > WARN_SYNC_MS) {
      this.log('warn', 'slow fdatasync', { took: formatDuration(ms), 'expected-duration': formatDuration(WARN_SYNC_MS) });
    }
  }

  /**
   * Closes the full tail (trimmed to its records, synced) and starts segment seq+1, named
   * for the next index, holding a crc record, the metadata and the last hard state. It is
   * written into the file the pipeline prepared (zero-filled, under a temporary name),
   * synced, then renamed, so a crash never leaves a half-made segment under a real name.
   * Then the pipeline starts preparing the one after.
   */
  private async cut(): Promise<void> {
    const old = this.tail!;
    await old.truncate(this.tailOffset);
    await this.datasyncFd(old.fd);

    const { seq } = parseWalName(this.names[this.names.length - 1])!;
    const name = walName(seq + 1, this.enti + 1);
    if (this.pipeline === undefined) this.startPipeline(); // appending after a failed readAll()
    const { handle: h, path: tmpPath } = await this.pipeline!.take();
    try {
      const enc = this.encoder!;
      enc.reset();
      enc.appendCrc();
      enc.appendData(RecordType.metadata, this.metadata);
      if (!isEmptyHardState(this.state)) enc.appendData(RecordType.state, encodeHardState(this.state));
      await writeFully(h, enc.bytes(), 0);
      await h.datasync();
      await rename(tmpPath, join(this.dir, name));
      await fsyncDir(this.dir);
      this.tailOffset = enc.length;
    } catch (err) {
      await h.close();
      await unlink(tmpPath).catch(() => {});
      throw err;
    }
    await old.close();
    this.tail = h;
    this.names.push(name);
    this.maybePrepareNext();
    this.log('info', 'wal: created a new WAL segment', { path: join(this.dir, name) });
  }
}

/**
 * Snapshot records in the WAL in `dir` that a restart may use: those at or below the last
 * hard state's commit index (etcd's ValidSnapshotEntries). Pair with
 * `Snapshotter.loadNewestAvailable()` to pick a snapshot both the snap dir and the WAL have.
 */
export async function validSnapshotEntries(dir: string): Promise<WalSnapshot[]> {
  const names = await readWalNames(dir);
  const snaps: WalSnapshot[] = [];
  let state: HardState = EMPTY_HARD_STATE;
  let crc = 0;
  for (let i = 0; i < names.length; i++) {
    const file = join(dir, names[i]);
    const res = await decodeSegment(file, file, i === names.length - 1, crc, (rec) => {
      if (rec.type === RecordType.snapshot) snaps.push(decodeWalSnapshot(rec.data ?? new Uint8Array(0)));
      else if (rec.type === RecordType.state) state = decodeHardState(rec.data ?? new Uint8Array(0));
    });
    crc = res.crc;
  }
  return snaps.filter((s) => s.index <= state.commit);
}

