/**
 * Crash consistency: what a reopen recovers from a segment cut short at any byte, from
 * sectors that never reached the disk, and what it refuses when bytes are damaged.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Wal, WalCorruptError, type WalLogger } from './index.js';
import { decodeSegment } from './decoder.js';
import { RecordType } from './frame.js';
import { decodeEntry, decodeHardState, type Entry, type HardState } from '../proto/index.js';
import { makeEntries, plain, tempDir } from './testutil.js';

const META = Buffer.from('meta');
const SEG = 64 * 1024;

interface Rec {
  offset: number;
  end: number;
  type: number;
  data: Buffer;
}

async function records(buf: Buffer): Promise<Rec[]> {
  const out: Rec[] = [];
  let prev: Rec | undefined;
  const res = await decodeSegment(buf, 'seg', true, 0, (r, offset) => {
    if (prev) prev.end = offset;
    prev = { offset, end: -1, type: r.type, data: Buffer.from(r.data ?? []) };
    out.push(prev);
  });
  if (prev) prev.end = res.end;
  return out;
}

/** What a reader should recover from the records wholly before `cut`. */
function expected(recs: Rec[], cut: number): { entries: Entry[]; hardState: HardState } {
  let entries: Entry[] = [];
  let hardState: HardState = { term: 0, vote: 0n, commit: 0 };
  for (const r of recs) {
    if (r.end > cut) break;
    if (r.type === RecordType.entry) {
      const e = decodeEntry(r.data);
      entries = entries.filter((x) => x.index < e.index).concat(e);
    } else if (r.type === RecordType.state) hardState = decodeHardState(r.data);
  }
  return { entries, hardState };
}

async function buildWal(d: string): Promise<{ tail: string; recs: Rec[]; orig: Buffer }> {
  const w = await Wal.create(d, META, { segmentSizeBytes: SEG });
  await w.save({ term: 1, vote: 1n, commit: 0 }, makeEntries(1, 20, 1, 40), true);
  await w.save({ term: 1, vote: 1n, commit: 20 }, makeEntries(21, 21, 1, 1500), true); // spans sectors
  await w.save(undefined, makeEntries(22, 23, 1, 7), true);
  await w.save({ term: 2, vote: 1n, commit: 23 }, makeEntries(24, 24, 2, 300), true);
  await w.close();
  const tail = join(d, (await readdir(d)).filter((n) => n.endsWith('.wal')).sort().pop()!);
  const orig = await readFile(tail);
  return { tail, recs: await records(orig), orig };
}

test('a segment cut short at every byte of its last records reopens with every whole record and nothing after', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const d = join(dir, 'wal');
    const { tail, recs, orig } = await buildWal(d);
    const last = recs[recs.length - 1];
    const from = recs[recs.length - 6].offset;
    let tornReports = 0;
    const logger: WalLogger = (level, msg) => {
      if (level === 'warn' && msg.includes('torn')) tornReports++;
    };
    for (let cut = from; cut <= last.end; cut++) {
      await writeFile(tail, orig.subarray(0, cut));
      const want = expected(recs, cut);
      const before = tornReports;
      const w = await Wal.open(d, { index: 0, term: 0 }, { logger, segmentSizeBytes: SEG });
      const got = await w.readAll();
      assert.deepEqual(plain(got.entries), plain(want.entries), `cut at ${cut}`);
      assert.deepEqual(got.hardState, want.hardState, `cut at ${cut}`);
      const atBoundary = recs.some((r) => r.end === cut);
      assert.equal(tornReports - before, atBoundary ? 0 : 1, `torn tail reported at ${cut}`);
      // The recovered WAL appends after its last whole record, in a chain that verifies.
      // (Checked near every record boundary and at every 17th byte, to keep the test quick.)
      const nearBoundary = recs.some((r) => Math.abs(r.end - cut) <= 16);
      if (!nearBoundary && cut % 17 !== 0) {
        await w.close();
        continue;
      }
      const next = want.entries.length + 1;
      await w.save(undefined, makeEntries(next, next, 3, 10), true);
      await w.close();
      const r = await Wal.open(d, { index: 0, term: 0 }, { segmentSizeBytes: SEG });
      assert.deepEqual(plain((await r.readAll()).entries), plain([...want.entries, ...makeEntries(next, next, 3, 10)]));
      await r.close();
    }
  } finally {
    cleanup();
  }
});

test('sectors of the last record that never reached the disk (zeros) count as a torn write', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const d = join(dir, 'wal');
    const { tail, recs, orig } = await buildWal(d);
    const big = recs.find((r) => r.type === RecordType.entry && r.data.length > 1000)!;
    // Tear at each sector boundary inside the 1500-byte record: that sector and every one
    // after it is zero, the file keeps its preallocated size.
    for (let s = Math.ceil((big.offset + 8) / 512) * 512; s < big.end; s += 512) {
      const torn = Buffer.from(orig);
      torn.fill(0, s);
      await writeFile(tail, torn);
      const w = await Wal.open(d, { index: 0, term: 0 }, { segmentSizeBytes: SEG });
      const got = await w.readAll();
      await w.close();
      assert.deepEqual(plain(got.entries), plain(expected(recs, big.offset).entries), `zero from ${s}`);
    }
  } finally {
    cleanup();
  }
});

test('a flipped byte before the tail refuses to open, naming the file and the record offset', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const d = join(dir, 'wal');
    const { tail, recs, orig } = await buildWal(d);
    for (const victim of [recs[5], recs[recs.length - 3]]) {
      // Flip a byte in the record's data (before its padding): the CRC cannot match.
      const bad2 = Buffer.from(orig);
      bad2[victim.offset + 8 + 10] ^= 0x40;
      await writeFile(tail, bad2);
      const w = await Wal.open(d, { index: 0, term: 0 }, { segmentSizeBytes: SEG });
      await assert.rejects(w.readAll(), (e: unknown) => {
        assert.ok(e instanceof WalCorruptError);
        assert.equal(e.file, tail);
        assert.equal(e.offset, victim.offset);
        assert.ok(e.message.includes(tail) && e.message.includes(String(victim.offset)), e.message);
        return true;
      });
      await w.close();
    }
  } finally {
    cleanup();
  }
});

test('damage in an older segment refuses to open even where a tail would be forgiven', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const d = join(dir, 'wal');
    const w = await Wal.create(d, META, { segmentSizeBytes: 4096 });
    for (let i = 1; i <= 12; i++) await w.save({ term: 1, vote: 1n, commit: i }, makeEntries(i, i, 1, 1000), true);
    await w.close();
    const names = (await readdir(d)).filter((n) => n.endsWith('.wal')).sort();
    assert.ok(names.length >= 3);
    const older = join(d, names[1]);
    const orig = await readFile(older);
    const recs = await records(orig);

    const flipped = Buffer.from(orig);
    flipped[recs[3].offset + 12] ^= 0xff;
    await writeFile(older, flipped);
    const a = await Wal.open(d, { index: 0, term: 0 });
    await assert.rejects(a.readAll(), (e: unknown) => e instanceof WalCorruptError && e.file === older && e.offset === recs[3].offset);
    await a.close();

    // Cut short: in the tail this would be a torn write, here it is lost data.
    const cut = recs[recs.length - 1].offset + 20;
    await writeFile(older, orig.subarray(0, cut));
    const b = await Wal.open(d, { index: 0, term: 0 });
    await assert.rejects(b.readAll(), (e: unknown) => e instanceof WalCorruptError && e.file === older);
    await b.close();
  } finally {
    cleanup();
  }
});
