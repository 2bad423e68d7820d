import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open, readdir, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Wal, parseWalName, type WalLogger } from './index.js';
import { FILL_SYNC_EVERY_BYTES, FilePipeline, ZERO_CHUNK_BYTES, writeZeros } from './file_pipeline.js';
import { makeEntries, plain, tempDir } from './testutil.js';

const META = Buffer.from('pipeline-meta');
const SEG = 256 * 1024;

async function tmpFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.endsWith('.tmp')).sort();
}

async function walFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.endsWith('.wal')).sort();
}

/** Asserts every byte of `path` up to its size sits on an allocated block. */
async function assertNotSparse(path: string, size = SEG): Promise<void> {
  const st = await stat(path);
  assert.equal(st.size, size, `${path} size`);
  assert.ok(st.blocks * 512 >= st.size, `${path} is sparse: ${st.blocks * 512} bytes allocated of ${st.size}`);
}

test('segments are zero-filled, not sparse; a cut renames the file the pipeline prepared', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const d = join(dir, 'wal');
    const w = await Wal.create(d, META, { segmentSizeBytes: SEG });
    const [first] = await walFiles(d);
    await assertNotSparse(join(d, first));

    // Nothing is prepared while the tail is nearly empty (a server just started does not
    // write a segment of zeros while its first clients wait on fdatasync)...
    await w.nextSegmentPrepared();
    assert.deepEqual(await tmpFiles(d), [], 'no segment prepared at create');
    // ...but once a quarter of the tail is written, the next segment is prepared in the
    // background as 0.tmp, allocated and full-size.
    let i = 1;
    for (let written = 0; written < SEG / 4; written += 10 * 1000) {
      await w.save({ term: 1, vote: 1n, commit: i }, makeEntries(i, i + 9, 1, 1000), true);
      i += 10;
      if (written + 10 * 1000 < SEG / 4 - 1000) assert.deepEqual(await tmpFiles(d), [], `nothing prepared at ${written} bytes`);
    }
    await w.nextSegmentPrepared();
    assert.deepEqual(await tmpFiles(d), ['0.tmp']);
    await assertNotSparse(join(d, '0.tmp'));
    const prepared = (await stat(join(d, '0.tmp'))).ino;

    // Fill the first segment: the cut takes 0.tmp (same inode) as segment 1.
    while ((await walFiles(d)).length < 2) {
      await w.save({ term: 1, vote: 1n, commit: i }, makeEntries(i, i + 9, 1, 1000), true);
      i += 10;
    }
    const names = await walFiles(d);
    assert.deepEqual(names.map((n) => parseWalName(n)!.seq), [0, 1]);
    assert.equal((await stat(join(d, names[1]))).ino, prepared, 'segment 1 is the file the pipeline prepared');
    await assertNotSparse(join(d, names[1]));

    // And the pipeline moves on to the other name for the segment after, once that
    // segment is a quarter full in turn.
    await w.nextSegmentPrepared();
    assert.deepEqual(await tmpFiles(d), [], 'nothing prepared right after the cut');
    for (let written = 0; written < SEG / 4; written += 10 * 1000) {
      await w.save({ term: 1, vote: 1n, commit: i }, makeEntries(i, i + 9, 1, 1000), true);
      i += 10;
    }
    await w.nextSegmentPrepared();
    assert.deepEqual(await tmpFiles(d), ['1.tmp']);
    await assertNotSparse(join(d, '1.tmp'));

    // Closing removes the prepared, unused file; what was written reads back.
    await w.close();
    assert.deepEqual(await tmpFiles(d), []);
    const r = await Wal.open(d, { index: 0, term: 0 }, { segmentSizeBytes: SEG });
    const got = await r.readAll();
    assert.deepEqual(plain(got.entries), plain(makeEntries(1, i - 1, 1, 1000)));
    await r.close();
  } finally {
    cleanup();
  }
});

test('a cut before the pipeline is ready waits for it and says so', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const d = join(dir, 'wal');
    const warnings: string[] = [];
    const logger: WalLogger = (level, msg) => {
      if (level === 'warn') warnings.push(msg);
    };
    // Hold back the pipeline's zero-filling until the cut asks for its file: writes of the
    // shared zero chunk made after the WAL exists wait for take(), so the file cannot be
    // ready when the cut comes, however loaded the machine is (a 200 ms delay was not enough
    // under a full test run).
    const probe = await open(join(dir, 'probe'), 'w');
    const proto = Object.getPrototypeOf(probe) as { write: (...a: unknown[]) => Promise<unknown> };
    await probe.close();
    const realWrite = proto.write;
    let holding = false;
    let release: () => void = () => {};
    const taken = new Promise<void>((r) => { release = r; });
    proto.write = async function (this: unknown, ...a: unknown[]) {
      const buf = a[0];
      if (holding && Buffer.isBuffer(buf) && buf.length === ZERO_CHUNK_BYTES) await taken;
      return realWrite.apply(this, a);
    };
    const realPrepare = FilePipeline.prototype.prepare;
    FilePipeline.prototype.prepare = function (this: FilePipeline) {
      holding = true; // from the pipeline's first file on (the WAL's own first segment is filled before)
      realPrepare.call(this);
    };
    const realTake = FilePipeline.prototype.take;
    FilePipeline.prototype.take = function (this: FilePipeline) {
      release(); // take() reads its readiness before the held writes can go on
      return realTake.call(this);
    };
    try {
      const w = await Wal.create(d, META, { segmentSizeBytes: SEG, logger });
      let i = 1;
      while ((await walFiles(d)).length < 2) {
        await w.save({ term: 1, vote: 1n, commit: i }, makeEntries(i, i + 9, 1, 1000), true);
        i += 10;
      }
      await w.save({ term: 1, vote: 1n, commit: i }, makeEntries(i, i, 1, 1000), true);
      assert.deepEqual(warnings, ['wal: the next segment file was not prepared in time; the cut waited for it']);
      // (The warning is the evidence that the cut waited: no timed assertion, which load breaks.)
      await w.close();
      const names = await walFiles(d);
      assert.equal(names.length, 2);
      const r = await Wal.open(d, { index: 0, term: 0 }, { segmentSizeBytes: SEG });
      assert.deepEqual(plain((await r.readAll()).entries), plain(makeEntries(1, i, 1, 1000)));
      await r.close();
    } finally {
      proto.write = realWrite;
      FilePipeline.prototype.take = realTake;
      FilePipeline.prototype.prepare = realPrepare;
    }
  } finally {
    cleanup();
  }
});

test('leftover .tmp files are removed on open, and a sparse tail is zero-filled by readAll', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const d = join(dir, 'wal');
    const w = await Wal.create(d, META, { segmentSizeBytes: SEG });
    await w.save({ term: 1, vote: 1n, commit: 5 }, makeEntries(1, 5, 1, 100), true);
    await w.close();
    const [tail] = await walFiles(d);

    // A crash mid-preparation leaves .tmp files; an older Concord left a sparse tail.
    await writeFile(join(d, '0.tmp'), Buffer.alloc(4096, 0xee));
    await writeFile(join(d, '1.tmp'), Buffer.alloc(0));
    const st = await stat(join(d, tail));
    await truncate(join(d, tail), 4096);
    await truncate(join(d, tail), st.size);
    assert.ok((await stat(join(d, tail))).blocks * 512 < SEG, 'made sparse');

    const r = await Wal.open(d, { index: 0, term: 0 }, { segmentSizeBytes: SEG });
    assert.deepEqual(await tmpFiles(d), [], 'leftovers removed by open');
    const got = await r.readAll();
    assert.deepEqual(plain(got.entries), plain(makeEntries(1, 5, 1, 100)));
    await assertNotSparse(join(d, tail));
    await r.save(undefined, makeEntries(6, 6, 1, 100), true);
    await r.close();
    assert.deepEqual(await tmpFiles(d), []);

    const again = await Wal.open(d, { index: 0, term: 0 }, { segmentSizeBytes: SEG });
    assert.deepEqual(plain((await again.readAll()).entries), plain(makeEntries(1, 6, 1, 100)));
    await again.close();
  } finally {
    cleanup();
  }
});

test('a segment fill syncs its zeros as it goes, not as one writeback at the end', async () => {
  const { dir, cleanup } = tempDir();
  const h = await open(join(dir, 'fill'), 'w+');
  const proto = Object.getPrototypeOf(h) as { datasync: () => Promise<void> };
  const realSync = proto.datasync;
  const syncedAt: number[] = [];
  let written = 0;
  const realWrite = (proto as unknown as { write: (...a: unknown[]) => Promise<{ bytesWritten: number }> }).write;
  (proto as unknown as { write: (...a: unknown[]) => Promise<{ bytesWritten: number }> }).write = async function (this: unknown, ...a: unknown[]) {
    const r = await realWrite.apply(this, a);
    written += r.bytesWritten;
    return r;
  };
  proto.datasync = async function (this: unknown) {
    syncedAt.push(written);
    return realSync.call(this);
  };
  try {
    assert.equal(await writeZeros(h, 0, 3 * ZERO_CHUNK_BYTES, undefined, ZERO_CHUNK_BYTES), true);
    // Synced after each chunk but the last (the caller syncs the end itself).
    assert.deepEqual(syncedAt, [ZERO_CHUNK_BYTES, 2 * ZERO_CHUNK_BYTES]);
    assert.ok(FILL_SYNC_EVERY_BYTES > 0 && FILL_SYNC_EVERY_BYTES < 64 * 1000 * 1000, 'a pipeline fill syncs in bounded bursts');
  } finally {
    proto.datasync = realSync;
    (proto as unknown as { write: unknown }).write = realWrite;
    await h.close();
    cleanup();
  }
});
