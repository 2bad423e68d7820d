/**
 * How the WAL fdatasyncs its tail: blocking the caller, on the thread pool, or blocking the
 * event loop at most a budget (`DataSyncer.within`).
 *
 * The bounded sync goes through the native addon `src/wal/native/sync_within.c` (built by
 * `npm ci` into build/Release/concord_sync_within.node): one thread per WAL runs the sync
 * and the loop waits for it up to the budget. In time, the write is durable on return, as
 * with a blocking fdatasync (two thread wake-ups dearer); late, the loop goes on and the
 * outcome comes back through a callback on the loop, as with node:fs's asynchronous sync.
 * The WAL bounds a sync only while BlockingSyncPolicy.bounded() says so.
 *
 * Why: a blocking fdatasync holds the loop for as long as the disk takes, and no rule can
 * tell beforehand which sync of a fast disk will take 30 ms. A bench run's put-1 windows
 * held the loop 13-31 ms this way several times a run (issue 14).
 *
 * Without the addon (not built: no compiler where the package was installed) `within` is
 * absent and the WAL blocks as before; `boundedSyncUnavailable` says why.
 */
import { strict as assert } from 'node:assert';
import { createRequire } from 'node:module';
import { getSystemErrorMap } from 'node:util';
import { fdatasync, fdatasyncSync } from 'node:fs';

/** fdatasync of a file descriptor: blocking the caller, on the thread pool, or bounded. */
export interface DataSyncer {
  now(fd: number): void;
  later(fd: number, done: (err: Error | null) => void): void;
  /**
   * fdatasync blocking the caller at most `budgetMs`: true when it is done (it throws if the
   * sync failed); false when it still runs at the deadline, and then `late` gets its outcome
   * on the loop, once. One sync at a time. Absent: the WAL blocks on now().
   */
  within?(fd: number, budgetMs: number, late: (err: Error | null) => void): boolean;
  /** Ends what the syncer holds (its thread); the WAL's close() calls it last. */
  close?(): void;
}

/** --unsafe-no-fsync: the tail's syncs are skipped (etcd's WAL.sync returns early). */
export const noDataSyncer: DataSyncer = { now: () => {}, later: (_fd, done) => setImmediate(done, null) };

interface SyncWithinAddon {
  open(late: (errno: number) => void): object;
  /** 0: synced in time; > 0: that sync failed with this errno; -1: still running at the deadline. */
  syncWithin(syncer: object, fd: number, budgetMs: number): number;
  close(syncer: object): void;
}

/** From dist/src/wal/ (or src/wal/ under a TypeScript loader) to the package root's build/. */
const ADDON_PATHS = ['../../../build/Release/concord_sync_within.node', '../../build/Release/concord_sync_within.node'];

function loadAddon(): { addon?: SyncWithinAddon; error?: string } {
  const require = createRequire(import.meta.url);
  const errors: string[] = [];
  for (const p of ADDON_PATHS) {
    try {
      return { addon: require(p) as SyncWithinAddon };
    } catch (e) {
      errors.push(String((e as Error).message).split('\n')[0]!);
    }
  }
  return { error: errors.join('; ') };
}

const loaded = loadAddon();

/** Why the bounded sync is not available (undefined: it is). */
export const boundedSyncUnavailable: string | undefined = loaded.error;

/** node:fs's error for a failed fdatasync's errno ("EIO: i/o error, fdatasync"). */
export function fdatasyncError(errno: number): NodeJS.ErrnoException {
  const [code, text] = getSystemErrorMap().get(-errno) ?? [`E${errno}`, 'unknown error'];
  const err: NodeJS.ErrnoException = new Error(`${code}: ${text}, fdatasync`);
  err.errno = -errno;
  err.code = code;
  err.syscall = 'fdatasync';
  return err;
}

/**
 * A DataSyncer for one WAL: now/later through node:fs, and `within` through the addon's
 * thread (started on its first use, so a WAL only read never starts one). undefined `within`
 * when the addon is not built.
 */
export function boundedDataSyncer(): DataSyncer {
  const addon = loaded.addon;
  // Looked up per call (not captured), so tests that count node:fs calls see these.
  const base: DataSyncer = { now: (fd) => fdatasyncSync(fd), later: (fd, done) => fdatasync(fd, done) };
  if (addon === undefined) return base;
  let syncer: object | undefined;
  let late: ((err: Error | null) => void) | undefined;
  const onLate = (errno: number) => {
    const done = late;
    assert(done !== undefined, 'wal: a late fdatasync reported with none outstanding');
    late = undefined;
    done(errno === 0 ? null : fdatasyncError(errno));
  };
  return {
    ...base,
    within(fd, budgetMs, whenLate) {
      syncer ??= addon.open(onLate);
      const r = addon.syncWithin(syncer, fd, budgetMs);
      if (r === 0) return true;
      if (r > 0) throw fdatasyncError(r);
      late = whenLate;
      return false;
    },
    close() {
      if (syncer !== undefined) addon.close(syncer);
      syncer = undefined;
    },
  };
}
