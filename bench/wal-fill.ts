// WAL saves during a segment fill (not a test): `node dist/bench/wal-fill.js [--rounds 6] [--dir D]`.
//
// One-entry saves with fdatasync run while the file pipeline zero-fills a 64 MB segment, and
// for 300 ms after (its writeback may still run), in three alternating modes: no fill (150 ms
// of saves), a fill synced once at the end (the pipeline before issue 14's change) and a fill
// synced every FILL_SYNC_EVERY_BYTES (today's). Prints save latency percentiles per mode.
// Alternating rounds on the same disk keep the comparison fair on a loaded machine.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Wal } from '../src/wal/index.js';
import { FILL_SYNC_EVERY_BYTES, FilePipeline } from '../src/wal/file_pipeline.js';
import type { Entry } from '../src/proto/raftpb.js';

function opt(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
}
const rounds = Number(opt('rounds', '6'));
const baseDir = opt('dir', tmpdir());
const segmentBytes = 64 * 1000 * 1000;
const modes = { 'no fill': -1, 'fill, sync at end': 0, 'fill, paced sync': FILL_SYNC_EVERY_BYTES } as const;

const entry = (i: number): Entry => ({ term: 1, index: i, type: 0, data: Buffer.alloc(300, 7) }) as Entry;
const pct = (a: number[], p: number): number => a[Math.min(a.length - 1, Math.floor(a.length * p))] ?? NaN;

const lat = new Map<string, number[]>(Object.keys(modes).map((m) => [m, []]));
for (let round = 0; round < rounds; round++) {
  for (const [mode, syncEvery] of Object.entries(modes)) {
    const dir = mkdtempSync(join(baseDir, 'wal-fill-'));
    const w = await Wal.create(join(dir, 'wal'), Buffer.from('m'), { segmentSizeBytes: segmentBytes });
    let i = 1;
    const save = async (): Promise<void> => {
      const t = performance.now();
      await w.save({ term: 1, vote: 1n, commit: i }, [entry(i)], true);
      lat.get(mode)!.push(performance.now() - t);
      i++;
    };
    for (; i <= 20;) await w.save({ term: 1, vote: 1n, commit: i }, [entry(i)], true), i++;
    const pipe = new FilePipeline(dir, segmentBytes, () => {}, Math.max(0, syncEvery));
    let done = false;
    if (syncEvery >= 0) { pipe.prepare(); void pipe.prepared().then(() => { done = true; }); }
    else setTimeout(() => { done = true; }, 150);
    while (!done) await save();
    const t1 = performance.now();
    while (performance.now() - t1 < 300) await save();
    await pipe.close();
    await w.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
console.log(`WAL saves (1 entry + fdatasync) during a 64 MB segment fill and 300 ms after; ${rounds} alternating rounds`);
for (const [mode, xs] of lat) {
  xs.sort((a, b) => a - b);
  console.log(`${mode.padEnd(18)} saves ${String(xs.length).padStart(5)}  p50 ${pct(xs, 0.5).toFixed(2)}  p90 ${pct(xs, 0.9).toFixed(2)}  p99 ${pct(xs, 0.99).toFixed(2)}  max ${xs[xs.length - 1]!.toFixed(2)} ms`);
}
