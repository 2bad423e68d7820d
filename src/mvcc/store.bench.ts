// Micro-benchmark (not a test): puts/s and ranges/s applied through MvccStore, 256-byte values,
// random keys, with the backend committing in its normal batches.
// Run: npx tsc -p . && node dist/src/mvcc/store.bench.js [count]
import fs from 'node:fs';
import { openStore, putReq, rangeReq, tempDir } from './testutil.js';

const n = Number(process.argv[2] ?? 200_000);
const dir = tempDir('concord-mvcc-bench-');
const s = openStore(dir);
const value = Buffer.alloc(256, 0x61);
const keys = Array.from({ length: n }, () => Buffer.from(`key-${Math.floor(Math.random() * 1e9).toString(16).padStart(8, '0')}`));
const reqs = keys.map((key) => ({ ...putReq('', ''), key, value }));

// Apply in slices of 1000 (like committed-entry batches), yielding so batch commits run.
let t0 = performance.now();
let maxSliceMs = 0;
for (let i = 0; i < n; i += 1000) {
  const ts = performance.now();
  for (let j = i; j < Math.min(n, i + 1000); j++) {
    s.setConsistentIndex(j + 1, 1);
    s.put(reqs[j]);
  }
  maxSliceMs = Math.max(maxSliceMs, performance.now() - ts);
  await new Promise((r) => setImmediate(r));
}
const putMs = performance.now() - t0;
await s.forceCommit();
const allMs = performance.now() - t0;

t0 = performance.now();
for (let i = 0; i < n; i++) s.range(rangeReq('', { key: keys[(i * 7919) % n] }));
const rangeMs = performance.now() - t0;

console.log(JSON.stringify({
  puts: n,
  putsPerSec: Math.round(n / (putMs / 1000)),
  putsPerSecIncludingFinalCommit: Math.round(n / (allMs / 1000)),
  maxMsPer1000Puts: Number(maxSliceMs.toFixed(2)),
  rangesPerSec: Math.round(n / (rangeMs / 1000)),
  dbBytes: s.backend.size(),
  dbBytesInUse: s.backend.sizeInUse(),
}));
await s.close();
fs.rmSync(dir, { recursive: true, force: true });
