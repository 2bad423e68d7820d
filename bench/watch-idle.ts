// Does a put's cost grow with idle watchers on other keys? (`node dist/bench/watch-idle.js`)
// In-process: the MVCC store with its watchable layer, 20,000 puts to one key, with 0 and then
// N idle watchers (half single keys, half prefixes of varied length, a few ranges) on other keys.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Backend } from '../src/storage/index.js';
import { WatchableStore, prefixRangeEnd } from '../src/mvcc/index.js';
import { PutRequest } from '../src/proto/gen/etcdserverpb/rpc.js';

const idle = Number(process.argv[2] ?? 100_000);
const puts = 20_000;

function measure(watchers: number): number {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'concord-watch-idle-'));
  const ws = WatchableStore.open({ backend: Backend.open({ path: path.join(dir, 'db.lmdb') }) });
  const s = ws.newWatchStream<never>();
  for (let i = 0; i < watchers; i++) {
    const key = Buffer.from(`other/${i}`);
    const end = i % 2 === 0 ? undefined : i % 100 === 1 ? Buffer.from(`other/${i}z`) : prefixRangeEnd(key);
    s.watch({ id: 0, key, end, startRevision: 0, filterPut: false, filterDelete: false });
  }
  const req = PutRequest.fromPartial({ key: Buffer.from('hot/key'), value: Buffer.alloc(256) });
  for (let i = 0; i < 2000; i++) ws.kv.put(req); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < puts; i++) ws.kv.put(req);
  const us = ((performance.now() - t0) * 1000) / puts;
  void ws.kv.close().then(() => fs.rmSync(dir, { recursive: true, force: true }));
  return us;
}

const base = measure(0);
const loaded = measure(idle);
console.log(`put: ${base.toFixed(2)} us with no watchers, ${loaded.toFixed(2)} us with ${idle} idle watchers on other keys (${(loaded / base).toFixed(2)}x)`);
