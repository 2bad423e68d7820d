import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BlockingSyncPolicy, WARY_MS, Wal, meminfoPressure, WalError, parseWalName, validSnapshotEntries, type DataSyncer } from './index.js';
import { LOOP_SYNC_BUDGET_MS, PENDING_STATE_IDLE_MS } from './wal.js';
import { decodeHardState, type HardState } from '../proto/index.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeSegment } from './decoder.js';
import { RecordType } from './frame.js';
import { makeEntries, plain, tempDir } from './testutil.js';

const META = Buffer.from('concord-metadata');

/** A disk that always looks fast, whatever this machine's other processes do to it: saveNow's choice is then only the WAL's. */
const calmDisk = () => new BlockingSyncPolicy({ probe: () => 0, slowSyncMs: Number.POSITIVE_INFINITY });
/** A calm disk that lately held the loop past its bound, for good: every saveNow sync is bounded. */
const waryDisk = () => {
  const p = new BlockingSyncPolicy({ probe: () => 0, slowSyncMs: Number.POSITIVE_INFINITY, waryMs: Number.POSITIVE_INFINITY });
  p.synced(60_000);
  return p;
};

/** Everything the WAL in `d` holds from its start, read by a fresh Wal that is then closed. */
async function readBack(d: string) {
  const r = await Wal.open(d, { index: 0, term: 0 });
  try {
    return await r.readAll();
  } finally {
    await r.close();
  }
}

async function walFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.endsWith('.wal')).sort();
}

test('entries, hard state and metadata survive close and reopen', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const d = join(dir, 'wal');
    assert.equal(await Wal.exists(d), false);
    const w = await Wal.create(d, META);
    assert.equal(await Wal.exists(d), true);
    await w.save({ term: 1, vote: 0xfedcba9876543210n, commit: 0 }, makeEntries(1, 10, 1), true);
    await w.save({ term: 1, vote: 0xfedcba9876543210n, commit: 10 }, [], true);
    await w.save(undefined, [{ term: 1, index: 11, type: 0 }], false); // data undefined (Go nil)
    await w.close();

    const r = await Wal.open(d, { index: 0, term: 0 });
    const got = await r.readAll();
    assert.deepEqual(Buffer.from(got.metadata), META);
    assert.deepEqual(got.hardState, { term: 1, vote: 0xfedcba9876543210n, commit: 10 });
    assert.deepEqual(plain(got.entries), plain([...makeEntries(1, 10, 1), { term: 1, index: 11, type: 0 }]));
    assert.equal(got.entries[10].data, undefined);
    await r.close();
  } finally {
    cleanup();
  }
});

test('a new WAL starts with crc, metadata and snapshot {0,0} records, as etcd writes it', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const d = join(dir, 'wal');
    const w = await Wal.create(d, META, { segmentSizeBytes: 64 * 1024 });
    await w.close();
    const files = await walFiles(d);
    assert.deepEqual(files, ['0000000000000000-0000000000000000.wal']);
    const buf = await readFile(join(d, files[0]));
    assert.equal(buf.length, 64 * 1024, 'preallocated');
    const types: number[] = [];
    await decodeSegment(buf, files[0], true, 0, (r) => types.push(r.type));
    assert.deepEqual(types, [RecordType.crc, RecordType.metadata, RecordType.snapshot]);
    await assert.rejects(Wal.create(d, META), (e: WalError) => e.code === 'Exist');
  } finally {
    cleanup();
  }
});

test('a later entry at an index replaces it and everything after it', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const d = join(dir, 'wal');
    const w = await Wal.create(d, META);
    await w.save(undefined, makeEntries(1, 10, 1), true);
    await w.save(undefined, makeEntries(6, 7, 2), true); // a new leader overwrote 6..10
    await w.close();
    const got = await readBack(d);
    assert.deepEqual(plain(got.entries), plain([...makeEntries(1, 5, 1), ...makeEntries(6, 7, 2)]));
  } finally {
    cleanup();
  }
});

test('unsafeNoSync (--unsafe-no-fsync): saves write their records but never fdatasync the tail', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const d = join(dir, 'wal');
    const w = await Wal.create(d, META, { unsafeNoSync: true, blockingSync: calmDisk() });
    await w.nextSegmentPrepared(); // the background pipeline's syncs are not the tail's
    const realSync = fs.fdatasync, realSyncNow = fs.fdatasyncSync;
    let syncs = 0;
    (fs as { fdatasync: unknown }).fdatasync = (...a: Parameters<typeof fs.fdatasync>) => { syncs++; return realSync(...a); };
    (fs as { fdatasyncSync: unknown }).fdatasyncSync = (fd: number) => { syncs++; realSyncNow(fd); };
    syncBuiltinESMExports();
    try {
      await w.save({ term: 1, vote: 1n, commit: 0 }, makeEntries(1, 10, 1), true);
      assert.equal(w.saveNow({ term: 1, vote: 1n, commit: 10 }, makeEntries(11, 20, 1), true), true);
      await w.sync();
      await w.saveSnapshot({ index: 5, term: 1 });
      assert.equal(syncs, 0);
    } finally {
      (fs as { fdatasync: unknown }).fdatasync = realSync;
      (fs as { fdatasyncSync: unknown }).fdatasyncSync = realSyncNow;
      syncBuiltinESMExports();
    }
    await w.close();
    const r = await Wal.open(d, { index: 0, term: 0 });
    const got = await r.readAll();
    assert.deepEqual(got.hardState, { term: 1, vote: 1n, commit: 10 });
    assert.deepEqual(plain(got.entries), plain(makeEntries(1, 20, 1)));
    await r.close();
  } finally {
    cleanup();
  }
});

test('save() issues one write and one fdatasync per call when mustSync, none without', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const d = join(dir, 'wal');
    const w = await Wal.create(d, META);
    await w.nextSegmentPrepared(); // the background pipeline's writes are not save()'s
    // Count the fs calls save() makes (builtin ESM exports follow the CJS object once synced).
    const realSync = fs.fdatasync, realWrite = fs.writeSync;
    let syncs = 0, writes = 0;
    (fs as { fdatasync: unknown }).fdatasync = (...a: Parameters<typeof fs.fdatasync>) => { syncs++; return realSync(...a); };
    (fs as { writeSync: unknown }).writeSync = (...a: Parameters<typeof fs.writeSync>) => { writes++; return (realWrite as (...x: unknown[]) => number)(...a); };
    syncBuiltinESMExports();
    try {
      await w.save({ term: 1, vote: 1n, commit: 1 }, makeEntries(1, 256, 1, 256), true);
      assert.deepEqual({ syncs, writes }, { syncs: 1, writes: 1 });
      await w.save(undefined, makeEntries(257, 300, 1), false);
      assert.deepEqual({ syncs, writes }, { syncs: 1, writes: 2 });
      await w.save(undefined, [], true); // nothing to save: nothing done
      assert.deepEqual({ syncs, writes }, { syncs: 1, writes: 2 });
    } finally {
      (fs as { fdatasync: unknown }).fdatasync = realSync;
      (fs as { writeSync: unknown }).writeSync = realWrite;
      syncBuiltinESMExports();
    }
    await w.close();
  } finally {
    cleanup();
  }
});

test('a commit-only hard state without mustSync is not written until the next write (etcd MustSync), and close writes it', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const d = join(dir, 'wal');
    const w = await Wal.create(d, META);
    await w.nextSegmentPrepared();
    const realWrite = fs.writeSync;
    let writes = 0;
    (fs as { writeSync: unknown }).writeSync = (...a: Parameters<typeof fs.writeSync>) => { writes++; return (realWrite as (...x: unknown[]) => number)(...a); };
    syncBuiltinESMExports();
    try {
      await w.save({ term: 2, vote: 1n, commit: 0 }, makeEntries(1, 10, 2), true);
      assert.equal(writes, 1);
      await w.save({ term: 2, vote: 1n, commit: 10 }, [], false); // only the commit index moved
      assert.equal(writes, 1, 'a commit-only hard state is held, not written');
      await w.save(undefined, makeEntries(11, 12, 2), true);
      assert.equal(writes, 2, 'it goes out in the next write, with the entries');
      await w.save({ term: 2, vote: 1n, commit: 12 }, [], false);
      assert.equal(writes, 2);
    } finally {
      (fs as { writeSync: unknown }).writeSync = realWrite;
      syncBuiltinESMExports();
    }
    await w.close();
    const segs = await walFiles(d);
    const types: number[] = [];
    await decodeSegment(await readFile(join(d, segs[0]!)), segs[0]!, true, 0, (rec) => types.push(rec.type));
    const states = types.filter((t) => t === RecordType.state);
    assert.equal(segs.length, 1);
    assert.equal(states.length, 3, 'the first state, the one written with entries 11-12 and the one close wrote');
    const r = await Wal.open(d, { index: 0, term: 0 });
    const all = await r.readAll();
    assert.deepEqual(all.hardState, { term: 2, vote: 1n, commit: 12 });
    assert.equal(all.entries.length, 12);
    await r.close();
  } finally {
    cleanup();
  }
});

test('a deferred commit-only hard state reaches the file by itself once writes stop (a kill then keeps the commit), and a following write still carries a newer one', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const d = join(dir, 'wal');
    const w = await Wal.create(d, META, { blockingSync: calmDisk() });
    await w.save({ term: 2, vote: 1n, commit: 0 }, makeEntries(1, 5, 2), true);
    /** The segment file's bytes now (read synchronously, before the idle write can run), the WAL still open: what a restart after a kill reads. */
    const bytesNow = (): Buffer => {
      const seg = fs.readdirSync(d).filter((n) => n.endsWith('.wal')).sort()[0]!;
      return fs.readFileSync(join(d, seg));
    };
    const lastState = async (bytes: Buffer): Promise<HardState | undefined> => {
      let last: HardState | undefined;
      await decodeSegment(bytes, 'tail.wal', true, 0, (rec) => {
        if (rec.type === RecordType.state) last = decodeHardState(rec.data ?? new Uint8Array(0));
      });
      return last;
    };
    await w.save({ term: 2, vote: 1n, commit: 5 }, [], false);
    assert.deepEqual(await lastState(bytesNow()), { term: 2, vote: 1n, commit: 0 }, 'deferred at first');
    await sleep(PENDING_STATE_IDLE_MS * 4 + 20);
    assert.deepEqual(await lastState(bytesNow()), { term: 2, vote: 1n, commit: 5 }, 'written once nothing else carried it');
    assert.equal(w.saveNow({ term: 2, vote: 1n, commit: 6 }, [], false), true);
    await w.save(undefined, makeEntries(6, 6, 2), true);
    assert.deepEqual(await lastState(bytesNow()), { term: 2, vote: 1n, commit: 6 }, 'carried by the next write');
    await w.close();
  } finally {
    cleanup();
  }
});

test('concurrent save() calls are applied in call order', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const d = join(dir, 'wal');
    const w = await Wal.create(d, META);
    const all = makeEntries(1, 100, 1);
    await Promise.all(all.map((e) => w.save(undefined, [e], e.index % 10 === 0)));
    await w.close();
    const r = await Wal.open(d, { index: 0, term: 0 });
    assert.deepEqual(plain((await r.readAll()).entries), plain(all));
    await r.close();
  } finally {
    cleanup();
  }
});

test('an entry larger than the segment remainder overflows it, then the WAL cuts a new segment', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const d = join(dir, 'wal');
    const seg = 64 * 1024;
    const w = await Wal.create(d, META, { segmentSizeBytes: seg });
    const hs = { term: 3, vote: 2n, commit: 4 };
    await w.save(hs, makeEntries(1, 4, 3, 1000), true);
    const big = makeEntries(5, 5, 3, 3 * seg); // larger than a whole segment
    await w.save(undefined, big, true);
    await w.save(undefined, makeEntries(6, 8, 3, 100), true);
    await w.close();

    const files = await walFiles(d);
    assert.deepEqual(files.map((f) => parseWalName(f)), [{ seq: 0, index: 0 }, { seq: 1, index: 6 }]);
    const first = await readFile(join(d, files[0]));
    assert.ok(first.length > 3 * seg, 'the full segment is trimmed to its records, past the preallocation');
    // The new segment restates the chain, the metadata and the last hard state.
    const second = await readFile(join(d, files[1]));
    const recs: { type: number; data?: Uint8Array }[] = [];
    await decodeSegment(second, files[1], false, 0, (r) => recs.push(r));
    assert.deepEqual(recs.slice(0, 3).map((r) => r.type), [RecordType.crc, RecordType.metadata, RecordType.state]);

    const got = await readBack(d);
    assert.deepEqual(plain(got.entries), plain([...makeEntries(1, 4, 3, 1000), ...big, ...makeEntries(6, 8, 3, 100)]));
    assert.deepEqual(got.hardState, hs);
  } finally {
    cleanup();
  }
});

test('saveNow() writes and syncs before returning; declines while a save is queued; a full tail is cut behind it', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const d = join(dir, 'wal');
    const seg = 64 * 1024;
    const w = await Wal.create(d, META, { segmentSizeBytes: seg, blockingSync: calmDisk() });
    const hs = { term: 2, vote: 1n, commit: 3 };
    assert.equal(w.saveNow(hs, makeEntries(1, 3, 2), true), true);
    const queued = w.save(undefined, makeEntries(4, 4, 2), true);
    assert.equal(w.saveNow(undefined, makeEntries(5, 5, 2), true), false, 'a queued save goes first');
    await queued;
    assert.equal(w.saveNow(undefined, makeEntries(5, 6, 2, 40 * 1024), true), true, 'this one fills the tail: a cut is queued');
    assert.equal(w.saveNow(undefined, makeEntries(7, 7, 2), true), false, 'the cut goes first');
    await w.save(undefined, makeEntries(7, 7, 2), true);
    assert.equal(w.saveNow({ ...hs, commit: 8 }, makeEntries(8, 8, 2), true), true);
    await w.close();

    assert.equal((await walFiles(d)).length, 2);
    const got = await readBack(d);
    assert.deepEqual(plain(got.entries), plain([...makeEntries(1, 4, 2), ...makeEntries(5, 6, 2, 40 * 1024), ...makeEntries(7, 8, 2)]));
    assert.deepEqual(got.hardState, { ...hs, commit: 8 });
  } finally {
    cleanup();
  }
});

test('saveNow whose fdatasync outlasts the loop budget returns a promise: written, durable once it resolves; later writes queue behind it', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const d = join(dir, 'wal');
    // A disk whose bounded syncs all miss the budget: each finishes when the test says.
    const lates: Array<(err: Error | null) => void> = [];
    const budgets: number[] = [];
    const syncer: DataSyncer = {
      now: () => assert.fail('a wary policy bounds every saveNow sync'),
      later: (fd, done) => fs.fdatasync(fd, done),
      within(fd, budgetMs, late) {
        budgets.push(budgetMs);
        fs.fdatasyncSync(fd);
        lates.push(late);
        return false;
      },
    };
    const w = await Wal.create(d, META, { datasync: syncer, blockingSync: waryDisk() });
    const hs = { term: 2, vote: 1n, commit: 0 };
    const first = w.saveNow(hs, makeEntries(1, 1, 2), true);
    assert.ok(first instanceof Promise, 'late: a promise, not true');
    assert.deepEqual(budgets, [LOOP_SYNC_BUDGET_MS]);
    let durable = false;
    void first.then(() => { durable = true; });
    assert.equal(w.saveNow(hs, makeEntries(2, 2, 2), true), false, 'declined while the late sync runs');
    const second = w.save(hs, makeEntries(2, 2, 2), true);
    let secondDone = false;
    void second.then(() => { secondDone = true; });
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(durable, false);
    assert.equal(secondDone, false, 'a save queued behind the late sync waits for it');
    lates.shift()!(null);
    await first;
    await second;
    // A late sync that failed: the promise rejects with the disk's error.
    const third = w.saveNow(hs, makeEntries(3, 3, 2), true);
    assert.ok(third instanceof Promise);
    const eio = Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
    lates.shift()!(eio);
    await assert.rejects(third, /EIO/);
    await w.close();
    const got = await readBack(d);
    assert.deepEqual(plain(got.entries), plain(makeEntries(1, 3, 2)), 'each write once, in order');
  } finally {
    cleanup();
  }
});

test('a sync on the loop past its bound (10 ms) makes the next ones bounded for a while; then they block again', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const d = join(dir, 'wal');
    let clock = 0;
    const policy = new BlockingSyncPolicy({ probe: () => 0, now: () => clock });
    const calls: string[] = [];
    let slowMs = 0;
    const syncer: DataSyncer = {
      now(fd) {
        calls.push('now');
        blockFor(slowMs);
        fs.fdatasyncSync(fd);
      },
      later: (fd, done) => fs.fdatasync(fd, done),
      within(fd) {
        calls.push('within');
        fs.fdatasyncSync(fd);
        return true;
      },
    };
    const w = await Wal.create(d, META, { datasync: syncer, blockingSync: policy });
    const hs = { term: 2, vote: 1n, commit: 0 };
    assert.equal(w.saveNow(hs, makeEntries(1, 1, 2), true), true);
    slowMs = 15; // this one holds the loop past the bound (it cannot be foreseen)
    assert.equal(w.saveNow(hs, makeEntries(2, 2, 2), true), true);
    slowMs = 0;
    assert.equal(policy.bounded(), true);
    assert.equal(w.saveNow(hs, makeEntries(3, 3, 2), true), true);
    clock += WARY_MS - 1;
    assert.equal(w.saveNow(hs, makeEntries(4, 4, 2), true), true);
    clock += 2;
    assert.equal(w.saveNow(hs, makeEntries(5, 5, 2), true), true);
    assert.deepEqual(calls, ['now', 'now', 'within', 'within', 'now']);
    await w.close();
  } finally {
    cleanup();
  }
});

test('the real bounded sync: a budget of 0 sends every saveNow sync to the background, and every write is read back', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const d = join(dir, 'wal');
    const w = await Wal.create(d, META, { blockingSync: waryDisk(), loopSyncBudgetMs: 0, segmentSizeBytes: 64 * 1024 });
    const hs = { term: 2, vote: 1n, commit: 0 };
    let late = 0;
    for (let i = 1; i <= 300; i++) {
      const e = makeEntries(i, i, 2, 512);
      const r = w.saveNow(hs, e, true);
      if (r === false) await w.save(hs, e, true);
      else if (r !== true) {
        late++;
        await r;
      }
    }
    assert.ok(late > 250, `most syncs missed a budget of 0 (${late} of 300)`);
    await w.close();
    assert.ok((await walFiles(d)).length > 1, 'cuts happened behind late syncs');
    const got = await readBack(d);
    assert.deepEqual(plain(got.entries), plain(makeEntries(1, 300, 2, 512)));
  } finally {
    cleanup();
  }
});

test('a leader\'s pattern: saveNow of one entry, a commit-only state deferred at once, then a big save in the background; all read back', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const d = join(dir, 'wal');
    const w = await Wal.create(d, META, { blockingSync: calmDisk() });
    assert.equal(w.saveNow({ term: 3, vote: 1n, commit: 0 }, makeEntries(1, 1, 3), true), true);
    assert.equal(w.saveNow({ term: 3, vote: 1n, commit: 1 }, [], false), true, 'a commit-only state is deferred, not written');
    await w.save(undefined, makeEntries(2, 11, 3, 500), true);
    assert.equal(w.saveNow({ term: 3, vote: 1n, commit: 11 }, [], false), true);
    await w.close();

    const got = await readBack(d);
    assert.deepEqual(plain(got.entries), plain([...makeEntries(1, 1, 3), ...makeEntries(2, 11, 3, 500)]));
    assert.deepEqual(got.hardState, { term: 3, vote: 1n, commit: 11 }, 'the deferred states reach the disk');
  } finally {
    cleanup();
  }
});

/** Blocks this thread for `ms` (a slow fdatasync holding the event loop). */
function blockFor(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * A disk whose syncs take as long as the test says: blocking ones sleep `blockingMs`, pool
 * ones finish when released (or at once while `fast`).
 */
function slowDisk(blockingMs: number) {
  const held: Array<() => void> = [];
  const disk = {
    fast: false,
    blockingSyncs: 0,
    poolSyncs: 0,
    held,
    syncer: {
      now(fd: number) {
        disk.blockingSyncs++;
        blockFor(blockingMs);
        fs.fdatasyncSync(fd);
      },
      later(fd: number, done: (err: Error | null) => void) {
        disk.poolSyncs++;
        const sync = () => fs.fdatasync(fd, done);
        if (disk.fast) sync();
        else held.push(() => setTimeout(sync, 300)); // slower than the policy's SLOW_SYNC_MS
      },
    } satisfies DataSyncer,
  };
  return disk;
}

test('a slow fdatasync sends the next writes to the thread pool: the loop runs while they sync; a run of fast syncs brings saveNow back', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const d = join(dir, 'wal');
    const disk = slowDisk(300);
    const w = await Wal.create(d, META, { datasync: disk.syncer, blockingSync: new BlockingSyncPolicy({ probe: () => 0 }) });
    const hs = { term: 2, vote: 1n, commit: 0 };
    // The first slow sync cannot be foreseen: it blocks (and is what marks the disk slow).
    assert.equal(w.saveNow(hs, makeEntries(1, 1, 2), true), true);
    assert.equal(disk.blockingSyncs, 1);
    // The next write is declined (nothing written), so the caller saves on the pool...
    assert.equal(w.saveNow(hs, makeEntries(2, 2, 2), true), false, 'a disk just seen slow is not synced on the loop');
    assert.equal(disk.blockingSyncs, 1);
    let saved = false;
    const saving = w.save(hs, makeEntries(2, 2, 2), true).then(() => { saved = true; });
    // ...and while that sync is in progress, this thread serves other work (a Range would run here).
    let served = 0;
    await new Promise<void>((resolve) => setImmediate(() => { served++; resolve(); }));
    await new Promise<void>((resolve) => setTimeout(() => { served++; resolve(); }, 5));
    assert.equal(served, 2);
    await until(() => disk.held.length === 1);
    assert.equal(saved, false, 'the slow sync is still in progress while the loop ran');
    disk.held.shift()!();
    await saving;
    assert.equal(saved, true);
    // Still slow (that pool sync took 300 ms): the policy waits for a run of fast syncs.
    assert.equal(w.saveNow(hs, makeEntries(3, 3, 2), true), false);
    disk.fast = true;
    let index = 3;
    while (!w.saveNow(hs, makeEntries(index, index, 2), true)) {
      await w.save(hs, makeEntries(index, index, 2), true);
      index++;
      assert.ok(index < 3 + 100, 'fast syncs bring saveNow back');
    }
    assert.ok(index - 3 >= 8, `several fast syncs in a row were needed (${index - 3})`);
    assert.equal(disk.blockingSyncs, 2);
    await w.close();

    const got = await readBack(d);
    assert.deepEqual(plain(got.entries), plain(makeEntries(1, index, 2)), 'every write is in the WAL once, in order');
  } finally {
    cleanup();
  }
});

test('under disk pressure (much page cache being flushed) saveNow declines before writing: the sync goes to the pool', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const d = join(dir, 'wal');
    let dirtyBytes = 0;
    let clock = 0;
    const policy = new BlockingSyncPolicy({ probe: () => dirtyBytes, now: () => clock, slowSyncMs: Number.POSITIVE_INFINITY });
    const w = await Wal.create(d, META, { blockingSync: policy });
    const hs = { term: 2, vote: 1n, commit: 0 };
    assert.equal(w.saveNow(hs, makeEntries(1, 1, 2), true), true);
    dirtyBytes = 1024 * 1024 * 1024; // another process wrote 1 GiB it has not synced yet
    assert.equal(w.saveNow(hs, makeEntries(2, 2, 2), true), true, 'the last reading stands for a while');
    clock += 1000;
    assert.equal(w.saveNow(hs, makeEntries(3, 3, 2), true), false, 'a new reading shows the pressure');
    await w.save(hs, makeEntries(3, 3, 2), true);
    assert.equal(w.saveNow({ ...hs, commit: 3 }, [], false), true, 'a write with nothing to sync never waits on the disk');
    dirtyBytes = 1024 * 1024;
    clock += 1000;
    assert.equal(w.saveNow(hs, makeEntries(4, 4, 2), true), true, 'the flush is over');
    await w.close();
    const got = await readBack(d);
    assert.deepEqual(plain(got.entries), plain(makeEntries(1, 4, 2)));
    assert.deepEqual(got.hardState, hs);
  } finally {
    cleanup();
  }
});

test('an fdatasync over a second is logged as etcd logs it ("slow fdatasync")', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const logged: Array<{ level: string; msg: string; fields: Record<string, unknown> }> = [];
    const syncer: DataSyncer = { now: (fd) => fs.fdatasyncSync(fd), later: (fd, done) => setTimeout(() => fs.fdatasync(fd, done), 1100) };
    const w = await Wal.create(join(dir, 'wal'), META, { datasync: syncer, logger: (level, msg, fields) => logged.push({ level, msg, fields }) });
    await w.save({ term: 1, vote: 0n, commit: 0 }, makeEntries(1, 1, 1), true);
    await w.close();
    const slow = logged.filter((l) => l.msg === 'slow fdatasync');
    assert.equal(slow.length, 1);
    assert.equal(slow[0]!.level, 'warn');
    assert.match(String(slow[0]!.fields.took), /^\d+(\.\d+)?s$/);
    assert.equal(slow[0]!.fields['expected-duration'], '1s');
  } finally {
    cleanup();
  }
});

test('meminfoPressure reads the dirty and writeback bytes on Linux', () => {
  const bytes = meminfoPressure();
  if (process.platform !== 'linux') return void assert.equal(bytes, undefined);
  assert.equal(typeof bytes, 'number');
  assert.ok(bytes! >= 0 && bytes! % 1024 === 0);
});

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 10_000 && !cond(); i++) await new Promise((r) => setTimeout(r, 1));
  assert.ok(cond(), 'condition reached');
}

test('opens at a snapshot marker: entries after it only; a wrong term or unknown index is refused', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const d = join(dir, 'wal');
    const w = await Wal.create(d, META);
    await w.save({ term: 2, vote: 1n, commit: 20 }, makeEntries(1, 20, 2), true);
    await w.saveSnapshot({ index: 12, term: 2 });
    await w.close();

    const r = await Wal.open(d, { index: 12, term: 2 });
    const got = await r.readAll();
    assert.deepEqual(got.entries.map((e) => e.index), [13, 14, 15, 16, 17, 18, 19, 20]);
    await r.close();

    const bad = await Wal.open(d, { index: 12, term: 5 });
    await assert.rejects(bad.readAll(), (e: WalError) => e.code === 'SnapshotMismatch');
    await bad.close();
    const missing = await Wal.open(d, { index: 11, term: 2 });
    await assert.rejects(missing.readAll(), (e: WalError) => e.code === 'SnapshotNotFound');
    await missing.close();
    assert.deepEqual(await validSnapshotEntries(d), [{ index: 0, term: 0 }, { index: 12, term: 2 }]);
  } finally {
    cleanup();
  }
});

test('thousands of segments: release after each snapshot keeps few, and reopening at the last snapshot recovers the rest', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const d = join(dir, 'wal');
    // 8 KiB segments of 1 KiB entries: a cut every ~7 saves of 1 entry.
    const w = await Wal.create(d, META, { segmentSizeBytes: 8 * 1024 });
    const total = 15000;
    const batch = 1;
    let snap = { index: 0, term: 0 };
    let maxHeld = 0;
    for (let i = 1; i <= total; i += batch) {
      const ents = makeEntries(i, i + batch - 1, 1, 1000);
      await w.save({ term: 1, vote: 1n, commit: i + batch - 1 }, ents, false);
      if (i % 500 === 0) {
        snap = { index: i - 100, term: 1 };
        await w.saveSnapshot(snap);
        await w.releaseLockTo(snap.index);
        const held = (await walFiles(d)).length;
        maxHeld = Math.max(maxHeld, held);
        assert.deepEqual(await walFiles(d), w.segments(), 'the directory holds exactly the segments in use');
      }
    }
    const cuts = parseWalName(w.segments()[w.segments().length - 1])!.seq;
    assert.ok(cuts >= 1500, `segments written: ${cuts}`);
    assert.ok(maxHeld <= 80, `segments held at most ${maxHeld}`);
    await w.close();

    // The oldest segments are gone: opening at {0,0} is impossible now.
    await assert.rejects(Wal.open(d, { index: 0, term: 0 }), (e: WalError) => e.code === 'FileNotFound');
    const r = await Wal.open(d, snap);
    const got = await r.readAll();
    assert.equal(got.entries.length, total - snap.index);
    assert.equal(got.entries[0].index, snap.index + 1);
    assert.equal(got.entries[got.entries.length - 1].index, total);
    assert.deepEqual(got.hardState, { term: 1, vote: 1n, commit: total });
    // And it appends after reopening, into a chain a later open still verifies.
    await r.save({ term: 2, vote: 1n, commit: total + 1 }, makeEntries(total + 1, total + 1, 2), true);
    await r.close();
    const r2 = await Wal.open(d, snap);
    assert.equal((await r2.readAll()).entries.length, total + 1 - snap.index);
    await r2.close();
  } finally {
    cleanup();
  }
});

test('releaseLockTo keeps the segment before the first one at or past the index', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const d = join(dir, 'wal');
    const w = await Wal.create(d, META, { segmentSizeBytes: 4096 });
    for (let i = 1; i <= 40; i++) await w.save(undefined, makeEntries(i, i, 1, 1000), false);
    const before = w.segments().map((n) => parseWalName(n)!.index);
    const target = before[4];
    await w.releaseLockTo(target);
    // As etcd: segments named below target, except the last of them, are gone.
    assert.deepEqual(w.segments().map((n) => parseWalName(n)!.index), before.slice(3));
    await w.releaseLockTo(1e9);
    assert.equal(w.segments().length, 1, 'only the tail is left');
    await w.close();
    await assert.rejects(w.save(undefined, makeEntries(41, 41, 1), true), (e: WalError) => e.code === 'Closed');
  } finally {
    cleanup();
  }
});
