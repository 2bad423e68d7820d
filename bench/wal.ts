// WAL append benchmark: `npm run build && node dist/bench/wal.js [--seconds 3] [--entry-bytes 256] [--dir D]`
//
// Measures Wal.save() with mustSync on this machine's disk at batch sizes 1, 16 and 256
// entries per save (one write + one fdatasync each), next to a bare write+fdatasync loop
// as the floor (into a sparse file and into a zero-filled one, which is what WAL segments
// are), and prints entries/s, MB/s of entry data, syncs/s, save latency and the segment
// cuts made during the run (each one renames a segment the WAL's pipeline prepared).
// Batching is what lifts entries/s past the serial-fsync rate: every entry that arrives
// while one fdatasync runs rides the next one (group commit).

import { mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Wal } from '../src/wal/index.js';
import type { Entry } from '../src/proto/raftpb.js';

function opt(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
}

const seconds = Number(opt('seconds', '3'));
const entryBytes = Number(opt('entry-bytes', '256'));
const baseDir = opt('dir', tmpdir());
const batches = opt('batches', '1,16,256').split(',').map(Number);

interface Row {
  name: string;
  entriesPerSec: number;
  mbPerSec: number;
  syncsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  cuts?: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0;
}

async function measure(name: string, perOp: number, op: () => Promise<void>): Promise<Row> {
  // Warm-up, then a fixed wall-clock window (this is a benchmark program, not a test).
  for (let i = 0; i < 20; i++) await op();
  const lat: number[] = [];
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(Math.round(seconds * 1e9));
  let ops = 0;
  for (;;) {
    const t0 = process.hrtime.bigint();
    await op();
    const t1 = process.hrtime.bigint();
    lat.push(Number(t1 - t0) / 1e6);
    ops++;
    if (t1 >= deadline) break;
  }
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  lat.sort((a, b) => a - b);
  const entries = ops * perOp;
  return {
    name,
    entriesPerSec: entries / elapsed,
    mbPerSec: (entries * entryBytes) / elapsed / 1e6,
    syncsPerSec: ops / elapsed,
    p50Ms: percentile(lat, 50),
    p99Ms: percentile(lat, 99),
  };
}

async function rawFsyncFloor(dir: string, zeroFilled: boolean): Promise<Row> {
  const size = 64 * 1000 * 1000;
  const h = await open(join(dir, zeroFilled ? 'raw-zeroed' : 'raw-sparse'), 'w+');
  if (zeroFilled) {
    const z = Buffer.alloc(1024 * 1024);
    for (let o = 0; o < size; o += z.length) await h.write(z, 0, Math.min(z.length, size - o), o);
    await h.datasync();
  } else {
    await h.truncate(size);
  }
  const buf = Buffer.alloc(entryBytes + 24, 7);
  let pos = 0;
  const row = await measure(`raw fdatasync ${zeroFilled ? 'zeroed' : 'sparse'}`, 1, async () => {
    await h.write(buf, 0, buf.length, pos);
    pos += buf.length;
    await h.datasync();
  });
  await h.close();
  return row;
}

async function walBatch(dir: string, batch: number): Promise<Row> {
  const w = await Wal.create(join(dir, `wal-${batch}`), Buffer.from('bench'));
  const data = Buffer.alloc(entryBytes, 0x61);
  let index = 0;
  // Entry objects reused across saves: the WAL copies them into its batch buffer.
  const ents: Entry[] = Array.from({ length: batch }, () => ({ term: 1, index: 0, type: 0, data }));
  const hs = { term: 1, vote: 1n, commit: 0 };
  const row = await measure(`Wal.save batch=${batch}`, batch, async () => {
    for (let i = 0; i < batch; i++) ents[i].index = ++index;
    hs.commit = index;
    await w.save(hs, ents, true);
  });
  row.cuts = w.segments().length - 1;
  await w.close();
  return row;
}

const dir = mkdtempSync(join(baseDir, 'concord-walbench-'));
try {
  const rows: Row[] = [await rawFsyncFloor(dir, false), await rawFsyncFloor(dir, true)];
  for (const b of batches) rows.push(await walBatch(dir, b));
  console.log(`WAL append with fdatasync, ${entryBytes}-byte entries, ${seconds}s each, dir ${dir}`);
  console.log(
    ['case'.padEnd(22), 'entries/s'.padStart(11), 'MB/s'.padStart(8), 'syncs/s'.padStart(9), 'p50 ms'.padStart(8), 'p99 ms'.padStart(8), 'cuts'.padStart(5)].join(' '),
  );
  for (const r of rows) {
    console.log(
      [
        r.name.padEnd(22),
        Math.round(r.entriesPerSec).toString().padStart(11),
        r.mbPerSec.toFixed(2).padStart(8),
        Math.round(r.syncsPerSec).toString().padStart(9),
        r.p50Ms.toFixed(3).padStart(8),
        r.p99Ms.toFixed(3).padStart(8),
        (r.cuts === undefined ? '' : String(r.cuts)).padStart(5),
      ].join(' '),
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
