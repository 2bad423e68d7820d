// The LMDB backend: one environment with etcd's named buckets, and a write buffer that is
// committed in batches (every batchIntervalMs or batchLimit writes, at quickBatchWrites for a
// fast writer, or on forceCommit()).
//
// Why a fast writer's batches are 250 writes (quickBatchWrites; batchLimit 1,000) where etcd's
// limit is 10,000: a flush hands every write to lmdb-js
// in one synchronous turn (lmdb-js copies each key and value into its write buffer, 1.5-3 us a
// write here), so the limit bounds the main-thread pause a flush causes: ~2-3 ms at 1,000,
// against 15-30 ms at 10,000, a pause every client in flight would wait out. And a buffered
// write's objects (its key and value buffers, the map entry) live until the flush: at 1,000
// writes, ~30 ms under 100 clients, long enough to outlive two scavenges, so V8 promoted them
// to the old generation, whose mark-compacts then had them to collect. At 250 they mostly die
// young: put-cost (150k puts by 100 clients, 6 alternating pairs, issue 14) gave 0.90 -> 0.65
// KB promoted per put, 1,140 -> 870-900 KB copied by a median scavenge, CPU per put within the
// noise and 6% more bytes written to the disk. The commit itself runs on lmdb-js's own thread
// either way; more, smaller transactions cost little beside that.
//
// Why slower writers get bigger batches and fewer commits (500 ms, up to 1,000 writes), where
// etcd commits every 100 ms: every LMDB commit ends in a sync of the data file, and on one
// disk that sync shares the device with the WAL's fdatasync, which every write waits for. A
// single client writing ~2,000 puts a second met ~10 LMDB syncs a second, and its p99 showed
// them: with commits 1-2 a second its p99 was 0.85x-0.92x (four runs of 12 alternating reps;
// this rule against the old one 0.83x-1.03x in four more: issue 14, docs/performance.md
// session 42). Writes held that long do outlive scavenges, but
// at such rates there is little to promote. Fast writers still commit every 250 writes: a
// batch that reached quickBatchWrites within quickFillMs commits then, so under 100 clients
// the batches stay as small as before (1,000-write batches there doubled the bytes promoted
// per put, 0.16 -> 0.38 KB, and the mark-compacts).
//
// Why a buffer of our own rather than a write per put: the apply path runs on the server's one
// thread and must stay cheap; etcd's backend commits every 100 ms / 10,000 writes because the
// WAL, not the backend, is the durability point. Buffered writes are visible to get()/scan()
// at once (read-your-writes), and a flush hands the whole buffer to lmdb-js's asynchronous
// writer in one event turn, which lmdb-js commits as one transaction on its own thread. So a
// flush is atomic: everything written before it (the data of an entry and the consistent index
// stored by the onBeforeCommit hook) lands in the same LMDB transaction.
//
// A flush is only ever started at an asynchronous boundary (timer or setImmediate), never in
// the middle of a synchronous apply, so an entry's writes are never split across commits.
//
// Durability: LMDB runs with overlappingSync (lmdb-js's default on Linux, set explicitly
// here): a commit becomes visible before its pages are fsynced, and the sync overlaps the
// next transactions. That is right for the batched commits (the WAL covers them), but
// whatever *relies* on the backend (the snapshot policy, which then writes the snap file and
// releases WAL segments; close) goes through forceCommit(), which also waits for lmdb-js's
// `flushed` promise: only then is the data on disk. Defrag fsyncs its copy and the directory
// around the rename, so a power cut leaves either the old file or the whole new one.

import fs from 'node:fs';
import path from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { diskMetrics, loopTrace } from '../metrics/index.js';

/** etcd's buckets (mvcc/kvstore.go, lease, auth, membership, alarm), one LMDB database each. */
export const DB_NAMES = [
  'key',
  'meta',
  'lease',
  'auth',
  'authUsers',
  'authRoles',
  'members',
  'members_removed',
  'cluster',
  'alarm',
] as const;
export type DbName = (typeof DB_NAMES)[number];

const DB_INDEX: Record<DbName, number> = Object.fromEntries(DB_NAMES.map((n, i) => [n, i])) as Record<DbName, number>;

export interface BackendOptions {
  /** Path of the LMDB environment file (a lock file `<path>-lock` sits beside it). */
  path: string;
  /** Commit the write buffer at least this often while it holds writes. Default 500 (see defaultBatchIntervalMs). */
  batchIntervalMs?: number;
  /**
   * Commit the write buffer once it holds this many writes (bounds a flush's main-thread pause).
   * Default 1,000, and a batch that filled to 250 within 50 ms commits then (see the top of this file);
   * a limit given here is the only count, as etcd's --backend-batch-limit.
   */
  batchLimit?: number;
  /** Initial LMDB map size (virtual address space, not disk). Default 10 GiB (quota up to 8 GiB). */
  mapSizeBytes?: number;
  /** Milliseconds from a fixed point, for the quick-fill rule; tests move it by hand. Default performance.now. */
  clockMs?: () => number;
  /**
   * For a backend being filled before anything relies on it (a restore, an import): commits
   * are not fsynced one by one (LMDB's noSync), and forceCommit() and close() sync the whole
   * file once, so the disk writes overlap the filling instead of stalling each commit.
   */
  deferSync?: boolean;
  /**
   * etcd's --unsafe-no-fsync (bbolt's NoSync): commits are never fsynced, not even by
   * forceCommit(); a power cut may lose or corrupt the backend. For tests and measurements.
   */
  unsafeNoSync?: boolean;
}

/** Where Concord keeps its environment in a data dir: beside etcd's `member/snap/db`, never on it. */
export function backendPath(dataDir: string): string {
  return path.join(dataDir, 'member', 'snap', 'concord.lmdb');
}

/** A point-in-time copy of the environment (the shape server/service.ts's BackendSnapshot expects). */
export interface BackendSnapshotFile {
  readonly size: number;
  readonly path: string;
  chunks(): AsyncIterable<Uint8Array>;
  close(): Promise<void>;
}

/**
 * A consistent read-only view of every database as of one commit (an LMDB read transaction):
 * later writes do not show in it and do not wait for it. close() releases it (until then LMDB
 * keeps the pages it sees, and a defrag waits before swapping files).
 */
export interface BackendReadView {
  /** Entries of `db` in key order. */
  scan(db: DbName): Iterable<[Buffer, Buffer]>;
  /**
   * Entries of `db` in key order, each value a view of LMDB's read buffer that the next step
   * of the iteration overwrites: consume it (copy what is kept) before pulling the next. No
   * value is copied into a buffer of its own, so a scan of a large store makes no garbage of
   * its size (a snapshot of 1 GiB reads every value twice).
   */
  scanTransient(db: DbName): Iterable<readonly [Buffer, Uint8Array]>;
  close(): void;
}

/** One buffered write: value `null` is a delete. */
interface PendingWrite {
  key: Buffer;
  value: Buffer | null;
}

/** Writes of one database, keyed by the key's latin1 string (a Map needs a primitive key). */
type Batch = Map<string, PendingWrite>[];

function newBatch(): Batch {
  return DB_NAMES.map(() => new Map<string, PendingWrite>());
}

interface Inflight {
  batch: Batch;
  done: Promise<void>;
}

export interface ScanOptions {
  /** First key (inclusive); default: the start of the database. */
  start?: Buffer;
  /** End key (exclusive); default: the end of the database. */
  end?: Buffer;
  /** Stop after this many entries. */
  limit?: number;
}

const DEFAULT_MAP_SIZE = 10 * 1024 * 1024 * 1024;
const DB_OPTIONS = { keyEncoding: 'binary', encoding: 'binary' } as const;

/**
 * A value "decoder" that keeps lmdb-js's bytes as they are: lmdb-js then hands a decoder its
 * shared read buffer (or a view of the map) instead of a fresh copy of each value, as it does
 * for a decoder that copies what it keeps (decoderCopies). Read-only: never used to write.
 */
const transientValues = {
  needsStableBuffer: false,
  encode(): never { throw new Error('backend: the transient-value handle is read-only'); },
  decode: (bytes: Uint8Array, size: number): Uint8Array => bytes.subarray(0, size),
};
const TRANSIENT_DB_OPTIONS = { keyEncoding: 'binary', encoder: transientValues } as const;

/** Writes buffered before a flush is started at the latest (see the top of this file for why not etcd's 10,000). */
export const defaultBatchLimitWrites = 1000;
/** A batch that reached this many writes quickly (fast writers) commits then: its writes die young. */
export const quickBatchWrites = 250;
/** How young a batch of quickBatchWrites must be to count as filled quickly (5,000 writes a second or more). */
export const quickFillMs = 50;
/** How long a write may wait in the buffer (etcd: 100 ms; see the top of this file for why longer). */
export const defaultBatchIntervalMs = 500;

/** LMDB environment with etcd's buckets and a batched, read-your-writes write buffer. */
export class Backend {
  readonly path: string;
  readonly batchIntervalMs: number;
  readonly batchLimit: number;
  /**
   * The batch size at which a batch filled within quickFillMs commits: quickBatchWrites, or
   * undefined when a batchLimit was given (etcd's --backend-batch-limit is then the only count).
   */
  private readonly quickLimit: number | undefined;
  /** When the buffer's oldest pending write (or commit request) armed the interval timer (performance.now()). */
  private batchStartedAtMs = 0;
  private readonly clockMs: () => number;
  private readonly mapSizeBytes: number;
  /** Opened with deferSync (commits unsynced until forceCommit/close). */
  readonly deferSync: boolean;
  private readonly unsafeNoSync: boolean;
  private env!: RootDatabase;
  private dbs!: Database<Buffer, Buffer>[];
  /** The same databases read through transientValues (read views' scanTransient only). */
  private transientDbs!: Database<Uint8Array, Buffer>[];
  private pending: Batch = newBatch();
  private pendingCount = 0;
  /** Batches handed to lmdb-js, oldest first, until their commit resolves. */
  private inflight: Inflight[] = [];
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private beforeCommit: (() => void)[] = [];
  /** Set while defrag holds the buffer (no flush) or swaps files (no LMDB reads). */
  private defragging: Promise<void> | undefined;
  private swapping = false;
  /** While defrag copies, the buffer is held: a commit to the old file would miss the copy. */
  private holdFlush = false;
  private closed = false;
  /** writebackSoFar() syncs still running: close() waits for them (a sync worker must not outlive the environment). */
  private writebacks = new Set<Promise<void>>();
  /** Read views open (readView), and who waits for them all to close (defrag's swap). */
  private openViews = 0;
  private viewsClosedWaiters: (() => void)[] = [];
  /** A failed commit is unrecoverable (the data would diverge from the WAL): every later call throws it. */
  private fatal: unknown;

  private constructor(opts: BackendOptions) {
    this.path = opts.path;
    this.batchIntervalMs = opts.batchIntervalMs ?? defaultBatchIntervalMs;
    this.batchLimit = opts.batchLimit ?? defaultBatchLimitWrites;
    // A limit given (etcd's --backend-batch-limit) means what it means in etcd: commit at that many writes.
    this.quickLimit = opts.batchLimit === undefined ? quickBatchWrites : undefined;
    this.clockMs = opts.clockMs ?? (() => performance.now());
    this.mapSizeBytes = opts.mapSizeBytes ?? DEFAULT_MAP_SIZE;
    this.deferSync = opts.deferSync ?? false;
    this.unsafeNoSync = opts.unsafeNoSync ?? false;
  }

  /** Opens (creating if needed) the environment at `opts.path` and all of etcd's buckets. */
  static open(opts: BackendOptions): Backend {
    const b = new Backend(opts);
    fs.mkdirSync(path.dirname(b.path), { recursive: true });
    // A defrag interrupted by a crash leaves its copy behind; the original is still whole.
    fs.rmSync(b.path + '.defrag', { force: true });
    b.openEnv();
    return b;
  }

  private openEnv(): void {
    this.env = open({
      path: this.path,
      noSubdir: true,
      maxDbs: DB_NAMES.length + 4,
      mapSize: this.mapSizeBytes,
      // Explicit, so durability never depends on a library default: commits resolve when
      // visible, `env.flushed` when synced (see forceCommit). deferSync: synced by syncEnv().
      ...(this.deferSync || this.unsafeNoSync ? { noSync: true, overlappingSync: false } : { overlappingSync: true }),
    });
    this.dbs = DB_NAMES.map((name) => this.env.openDB<Buffer, Buffer>(name, DB_OPTIONS));
    this.transientDbs = DB_NAMES.map((name) => this.env.openDB<Uint8Array, Buffer>(name, TRANSIENT_DB_OPTIONS as never));
  }

  /**
   * Registers a hook run at the start of every flush, inside the batch being committed (the
   * MVCC store writes its consistent index there, so it lands with the data it covers).
   */
  onBeforeCommit(fn: () => void): void {
    this.beforeCommit.push(fn);
  }

  // ---------------------------------------------------------------- reads

  /** The value at `key`, including writes not yet committed to LMDB. */
  get(db: DbName, key: Buffer): Buffer | undefined {
    const i = DB_INDEX[db];
    const w = this.buffered(i, key);
    return w !== undefined ? w.value ?? undefined : this.dbs[i].getBinary(key);
  }

  /** The write of `key` buffered or in flight (newest first), else undefined; checks the backend may be read. */
  private buffered(i: number, key: Buffer): PendingWrite | undefined {
    this.check();
    if (this.pendingCount !== 0 || this.inflight.length !== 0) {
      const s = key.toString('latin1');
      let w = this.pending[i].get(s);
      for (let j = this.inflight.length - 1; w === undefined && j >= 0; j--) w = this.inflight[j].batch[i].get(s);
      if (w !== undefined) return w;
    }
    if (this.swapping) throw new Error('backend: LMDB read while defrag swaps the environment file');
    return undefined;
  }

  /**
   * As get, but a committed value comes as a view of LMDB's shared read buffer instead of a
   * copy: its bytes hold only until the next read of this backend, so the caller uses them at
   * once (a one-key Range encodes its response from them). Saves a value-sized ArrayBuffer per read.
   */
  getTransient(db: DbName, key: Buffer): Uint8Array | undefined {
    const i = DB_INDEX[db];
    const w = this.buffered(i, key);
    if (w !== undefined) return w.value ?? undefined;
    const shared = this.dbs[i].getBinaryFast(key);
    // lmdb-js hands back its reused buffer with `length` set to the value's size (the buffer
    // itself is larger): a view with that length is what callers can safely index and copy.
    return shared === undefined ? undefined : shared.subarray(0, shared.length);
  }

  /**
   * Entries of `db` in key order within [start, end), uncommitted writes included. Meant for
   * bulk work (restore, compaction, hashing): it sorts the relevant uncommitted writes first.
   */
  *scan(db: DbName, opts: ScanOptions = {}): Generator<[Buffer, Buffer]> {
    this.check();
    const i = DB_INDEX[db];
    const { start, end } = opts;
    let left = opts.limit ?? Infinity;
    if (left <= 0) return;
    const overlay = this.overlay(i, start, end);
    if (this.swapping) throw new Error('backend: LMDB read while defrag swaps the environment file');
    const range = this.dbs[i].getRange({ start, end });
    let oi = 0;
    for (const { key, value } of range) {
      // Uncommitted writes that sort before this committed key come first.
      while (oi < overlay.length && Buffer.compare(overlay[oi].key, key) < 0) {
        const w = overlay[oi++];
        if (w.value !== null) {
          yield [w.key, w.value];
          if (--left === 0) return;
        }
      }
      if (oi < overlay.length && overlay[oi].key.equals(key)) {
        const w = overlay[oi++];
        if (w.value === null) continue;
        yield [w.key, w.value];
      } else {
        yield [key, value];
      }
      if (--left === 0) return;
    }
    for (; oi < overlay.length; oi++) {
      const w = overlay[oi];
      if (w.value !== null) {
        yield [w.key, w.value];
        if (--left === 0) return;
      }
    }
  }

  /**
   * As scan(), but each value is a view of LMDB's read buffer that the next step of the
   * iteration overwrites (BackendReadView.scanTransient): consume it before pulling the next.
   * For bulk reads that keep little of each value (the key-index rebuild at start-up reads
   * every record of the store): no buffer per value, so no garbage of the store's size.
   * With writes not yet committed the values come from scan() (stable: still consumable so).
   */
  *scanTransient(db: DbName, opts: ScanOptions = {}): Generator<readonly [Buffer, Uint8Array]> {
    if (this.pendingCount !== 0 || this.inflight.length !== 0) {
      yield* this.scan(db, opts);
      return;
    }
    this.check();
    if (this.swapping) throw new Error('backend: LMDB read while defrag swaps the environment file');
    let left = opts.limit ?? Infinity;
    if (left <= 0) return;
    for (const { key, value } of this.transientDbs[DB_INDEX[db]].getRange({ start: opts.start, end: opts.end })) {
      yield [key as Buffer, value] as const;
      if (--left === 0) return;
    }
  }

  /** Uncommitted writes of database `i` within [start, end), newest value per key, sorted. */
  private overlay(i: number, start: Buffer | undefined, end: Buffer | undefined): PendingWrite[] {
    if (this.pendingCount === 0 && this.inflight.length === 0) return [];
    const merged = new Map<string, PendingWrite>();
    for (const f of this.inflight) for (const [s, w] of f.batch[i]) merged.set(s, w);
    for (const [s, w] of this.pending[i]) merged.set(s, w);
    const out: PendingWrite[] = [];
    for (const w of merged.values()) {
      if (start && Buffer.compare(w.key, start) < 0) continue;
      if (end && Buffer.compare(w.key, end) >= 0) continue;
      out.push(w);
    }
    return out.sort((a, b) => Buffer.compare(a.key, b.key));
  }

  // ---------------------------------------------------------------- writes

  /** Buffers a put; visible to reads at once, committed with the next batch. Keeps `value` (no copy). */
  put(db: DbName, key: Buffer, value: Buffer): void {
    this.write(DB_INDEX[db], key, value);
  }

  /** Buffers a delete. */
  del(db: DbName, key: Buffer): void {
    this.write(DB_INDEX[db], key, null);
  }

  private write(i: number, key: Buffer, value: Buffer | null): void {
    this.check();
    if (this.closed) throw new Error('backend: write after close');
    this.pending[i].set(key.toString('latin1'), { key, value });
    this.pendingCount++;
    this.schedule();
  }

  /** Asks for a commit within batchIntervalMs even if nothing is buffered (onBeforeCommit hooks may add writes). */
  requestCommit(): void {
    if (!this.closed && !this.fatal) this.schedule();
  }

  /** Resolves when no defrag is running (LMDB may be read directly). */
  ready(): Promise<void> {
    return this.defragging ? this.defragging.catch(() => {}) : Promise.resolve();
  }

  /** Writes buffered and not yet handed to LMDB. */
  get pendingWrites(): number {
    return this.pendingCount;
  }

  private schedule(): void {
    if (this.defragging) return; // defrag flushes when it is done
    if (this.pendingCount >= this.batchLimit || (this.pendingCount === this.quickLimit && this.filledQuickly())) {
      // Never flush synchronously: the caller may be half-way through applying an entry.
      this.immediate ??= setImmediate(() => {
        this.immediate = undefined;
        this.flush();
      });
    } else if (this.timer === undefined) {
      this.batchStartedAtMs = this.clockMs();
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.flush();
      }, this.batchIntervalMs);
      this.timer.unref();
    }
  }

  /** Whether the buffer reached quickLimit within quickFillMs of its interval timer being armed. */
  private filledQuickly(): boolean {
    return this.timer !== undefined && this.clockMs() - this.batchStartedAtMs <= quickFillMs;
  }

  /** Hands the buffer to LMDB as one transaction; returns when everything so far is committed. */
  private flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer), (this.timer = undefined);
    if (this.immediate) clearImmediate(this.immediate), (this.immediate = undefined);
    if (this.fatal) return Promise.reject(this.fatal);
    if (this.holdFlush) return Promise.resolve();
    for (const fn of this.beforeCommit) fn();
    if (this.pendingCount === 0) return this.inflight.length ? this.inflight[this.inflight.length - 1].done : Promise.resolve();
    const batch = this.pending;
    this.pending = newBatch();
    this.pendingCount = 0;
    // All of these are issued in this one event turn, so lmdb-js (eventTurnBatching) commits
    // them in one transaction, in order; the last promise settles when that commit does.
    let last: Promise<boolean> | undefined;
    const t0 = performance.now();
    for (let i = 0; i < batch.length; i++) {
      const db = this.dbs[i];
      for (const w of batch[i].values()) last = w.value === null ? db.remove(w.key) : db.put(w.key, w.value);
    }
    loopTrace?.span('backend.flush', t0, batch.reduce((n, b) => n + b.size, 0));
    const rec: Inflight = { batch, done: Promise.resolve() };
    rec.done = last!.then(
      () => {
        const t1 = performance.now();
        diskMetrics.backendCommit.observe((t1 - t0) / 1000);
        // Make the next LMDB read see this commit before the buffer stops covering it.
        this.env.resetReadTxn();
        const k = this.inflight.indexOf(rec);
        if (k >= 0) this.inflight.splice(k, 1);
        loopTrace?.span('backend.committed', t1);
      },
      (err: unknown) => {
        this.fatal ??= err;
        throw err;
      },
    );
    this.inflight.push(rec);
    return rec.done;
  }

  /**
   * Commits everything written so far; resolves once it is in LMDB *and synced to disk*
   * (etcd's ForceCommit, a bbolt commit with fsync). Anything that relies on the backend
   * holding an entry (a snapshot, releasing WAL) must wait for this.
   */
  async forceCommit(): Promise<void> {
    if (this.defragging) await this.defragging;
    await this.flush();
    await this.env.flushed;
    if (this.deferSync) await this.syncEnv();
  }

  /**
   * For crash simulations (simtest/): what a power cut does to this process's buffer. Every
   * write not yet handed to LMDB is dropped, with the commit hooks of the store that made it
   * (a store opened over this backend afterwards registers its own, as after a reopen).
   * Commits already handed over (forceCommit) still land: they are durable from that call.
   */
  loseUncommitted(): void {
    if (this.timer) clearTimeout(this.timer), (this.timer = undefined);
    if (this.immediate) clearImmediate(this.immediate), (this.immediate = undefined);
    this.pending = newBatch();
    this.pendingCount = 0;
    this.beforeCommit = [];
  }

  private check(): void {
    if (this.fatal) throw this.fatal;
  }

  // ---------------------------------------------------------------- bulk load (imports)

  /**
   * For filling a backend nothing serves yet (a restore, the import of an etcd data dir):
   * puts `entries` of `db` straight into LMDB in one synchronous transaction and returns how
   * many it wrote. No write buffer, no per-entry promise, no copies (LMDB copies
   * the bytes during the put, so views of a file read may be passed). Durable once
   * forceCommit() returns, as any write; with deferSync the commits are not synced one by one.
   * Refused while buffered writes are pending, so the two paths never interleave.
   */
  bulkLoad(db: DbName, entries: Iterable<readonly [Uint8Array, Uint8Array]>): number {
    this.check();
    if (this.closed) throw new Error('backend: write after close');
    if (this.pendingCount !== 0 || this.inflight.length !== 0 || this.defragging) {
      throw new Error('backend: bulkLoad while buffered writes are pending');
    }
    const target = this.dbs[DB_INDEX[db]];
    let n = 0;
    this.env.transactionSync(() => {
      for (const [key, value] of entries) {
        target.putSync(key as Buffer, value as Buffer);
        n++;
      }
    });
    return n;
  }

  /**
   * deferSync only: fdatasyncs the commits so far on a pool thread while the caller goes on
   * committing, and resolves when done. A bulk load calls it every so many bytes, so the disk
   * writes the load while it is being made instead of all of it in forceCommit's one sync at
   * the end (1 GB of dirty pages was a second or more there). Promises nothing about
   * durability: forceCommit() still syncs, and only it makes the load durable.
   */
  writebackSoFar(): Promise<void> {
    this.check();
    if (!this.deferSync) throw new Error('backend: writebackSoFar needs deferSync');
    if (this.closed) throw new Error('backend: writeback after close');
    const done = this.syncEnv();
    this.writebacks.add(done);
    const forget = (): void => void this.writebacks.delete(done);
    done.then(forget, forget);
    return done;
  }

  /** fsyncs every commit so far (LMDB's mdb_env_sync, forced): deferSync's one sync. */
  private async syncEnv(): Promise<void> {
    const env = this.env as unknown as { sync(cb: (err?: Error) => void): void };
    await new Promise<void>((resolve, reject) => env.sync((err) => (err ? reject(err) : resolve())));
  }

  // ---------------------------------------------------------------- size

  /** Size of the environment file in bytes (etcd's db size). */
  size(): number {
    try {
      return fs.statSync(this.path).size;
    } catch {
      return 0;
    }
  }

  /** Entries committed to database `db` (LMDB's count; writes still in the buffer are not counted). */
  entryCount(db: DbName): number {
    this.check();
    return (this.dbs[DB_INDEX[db]].getStats() as { entryCount: number }).entryCount;
  }

  /** Bytes of pages holding data: every database's tree pages plus the free list and two meta pages. */
  sizeInUse(): number {
    if (this.swapping) return this.size();
    type Stats = { pageSize: number; treeBranchPageCount: number; treeLeafPageCount: number; overflowPages: number };
    const pages = (s: Stats) => s.treeBranchPageCount + s.treeLeafPageCount + s.overflowPages;
    const env = this.env.getStats() as Stats & { root: Stats; free: Stats };
    let n = 2 + pages(env.root) + pages(env.free);
    for (const db of this.dbs) n += pages(db.getStats() as Stats);
    return n * env.pageSize;
  }

  // ---------------------------------------------------------------- defrag, copies

  /**
   * Rewrites the environment compactly (LMDB's compacting copy) and swaps it in. Writes made
   * while it runs stay in the buffer (readable as usual) and are committed to the new file
   * afterwards, so no write is lost. LMDB reads are refused only during the short file swap;
   * the server holds its applies and reads for the duration (etcd blocks them too).
   */
  defrag(): Promise<void> {
    if (this.defragging) return this.defragging;
    const run = async () => {
      try {
        const committed = this.flush();
        this.holdFlush = true;
        await committed; // commits are in order: the newest one settling means all have
        const tmp = this.path + '.defrag';
        fs.rmSync(tmp, { force: true });
        await this.env.backup(tmp, true);
        fsyncPath(tmp); // the copy's bytes are on disk before the rename makes it the database
        await this.viewsClosed(); // an open read transaction must not outlive its environment
        await this.reopenEnv(() => {
          fs.renameSync(tmp, this.path);
          fsyncPath(path.dirname(this.path)); // and the rename itself survives a power cut
        });
      } finally {
        this.holdFlush = false;
        this.defragging = undefined;
        if (this.pendingCount !== 0 && !this.closed) this.schedule();
      }
    };
    this.defragging = run();
    return this.defragging;
  }

  /**
   * Replaces the whole environment with the LMDB file `file` (a leader's snapshot, imported
   * there): what is buffered is committed to the old file first, then `file` is renamed over
   * the environment, durably, and opened. Buffered writes made meanwhile are not allowed (the
   * caller holds the apply loop).
   */
  async replaceWith(file: string): Promise<void> {
    if (this.defragging) await this.defragging;
    await this.forceCommit();
    fsyncPath(file);
    await this.viewsClosed();
    if (this.pendingCount !== 0) throw new Error('backend: writes buffered while the environment is replaced');
    await this.reopenEnv(() => {
      fs.renameSync(file, this.path);
      fs.rmSync(`${file}-lock`, { force: true });
      fsyncPath(path.dirname(this.path));
    });
  }

  /**
   * Gives back the file pages this process's reads have mapped so far, by closing and opening
   * the environment again (the OS page cache keeps them; later reads map what they touch).
   * LMDB reads through a memory map, so a bulk read, such as the key-index rebuild at
   * start-up reading every revision, leaves every page of the file counted in the process's
   * RSS for good: 100k keys of 256 bytes, 33 MiB. For start-up only, while nothing else uses
   * the backend: buffered writes are committed first, and LMDB reads are refused meanwhile.
   */
  async releaseMappedPages(): Promise<void> {
    if (this.defragging) await this.defragging;
    await this.forceCommit();
    await this.viewsClosed();
    if (this.pendingCount !== 0) throw new Error('backend: writes buffered while mapped pages are released');
    await this.reopenEnv(() => {});
  }

  /** Closes the environment, runs `between` (a file swap), opens it again; LMDB reads are refused meanwhile. */
  private async reopenEnv(between: () => void): Promise<void> {
    this.swapping = true;
    try {
      await this.env.close();
      between();
      this.openEnv();
    } finally {
      this.swapping = false;
    }
  }

  /**
   * Writes a consistent point-in-time copy of the environment to `dest` (a file), including
   * every write made before the call. `compact` drops free pages (slower, smaller).
   */
  async copy(dest: string, compact = false): Promise<void> {
    await this.forceCommit();
    fs.rmSync(dest, { force: true });
    await this.env.backup(dest, compact);
  }

  /** A point-in-time copy for Maintenance.Snapshot, streamed from a temporary file removed on close(). */
  async snapshot(): Promise<BackendSnapshotFile> {
    const file = `${this.path}.snapshot-${process.pid}-${Date.now()}-${Math.floor(Math.random() * 1e9)}`;
    await this.copy(file, false);
    const size = fs.statSync(file).size;
    return {
      size,
      path: file,
      async *chunks() {
        const stream = fs.createReadStream(file, { highWaterMark: 32 * 1024 });
        for await (const chunk of stream) yield chunk as Buffer;
      },
      async close() {
        await fs.promises.rm(file, { force: true });
      },
    };
  }

  /**
   * A read view of everything written before the call (committed first), for streaming a
   * snapshot while writes go on. Committed, not synced: the view only reads, and the server
   * holds its applies while it waits here, so an fsync (hundreds of ms on a loaded disk) would
   * stall every put for nothing. (A snapshot's data is durable in the WAL.)
   */
  async readView(): Promise<BackendReadView> {
    if (this.defragging) await this.defragging;
    await this.flush();
    this.check();
    const txn = this.env.useReadTransaction();
    const { dbs, transientDbs } = this;
    this.openViews++;
    let open = true;
    return {
      scan: (db) => ({
        *[Symbol.iterator]() {
          if (!open) throw new Error('backend: read view used after close');
          for (const { key, value } of dbs[DB_INDEX[db]].getRange({ transaction: txn })) yield [key, value] as [Buffer, Buffer];
        },
      }),
      scanTransient: (db) => ({
        *[Symbol.iterator]() {
          if (!open) throw new Error('backend: read view used after close');
          for (const { key, value } of transientDbs[DB_INDEX[db]].getRange({ transaction: txn })) yield [key, value] as const;
        },
      }),
      close: () => {
        if (!open) return;
        open = false;
        txn.done();
        if (--this.openViews === 0) for (const w of this.viewsClosedWaiters.splice(0)) w();
      },
    };
  }

  private viewsClosed(): Promise<void> {
    return this.openViews === 0 ? Promise.resolve() : new Promise((resolve) => this.viewsClosedWaiters.push(resolve));
  }

  /** Commits the buffer and closes the environment. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.defragging) await this.defragging.catch(() => {});
    await this.flush().catch(() => {});
    await Promise.resolve(this.env.flushed).catch(() => {}); // a failed commit already set `fatal`
    if (this.deferSync && !this.fatal) await this.syncEnv();
    await Promise.allSettled([...this.writebacks]);
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    await this.env.close();
  }
}

/** fsync of a file or a directory (a directory's fsync makes a rename in it durable). */
function fsyncPath(p: string): void {
  const fd = fs.openSync(p, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
