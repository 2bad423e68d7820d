// How much server CPU a delivered watch event costs in the store and the codec, without the
// network (`node dist/bench/watch-fanout.js [watchers] [streams] [puts]`): the MVCC store with
// its watchable layer, `watchers` watchers on one key spread over `streams` streams, each put
// followed by every stream's queue encoded into gRPC frames as the watch service does
// (ResponseBatch, its output held for 32 batches). Prints CPU ns per delivered event and minor page faults (a count the machine's load does not change): steadier
// figure than the loaded machine's events/s in `npm run bench`.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Backend } from '../src/storage/index.js';
import { WatchableStore } from '../src/mvcc/index.js';
import { PutRequest } from '../src/proto/gen/etcdserverpb/rpc.js';
import { ResponseBatch } from '../src/api/watch-codec.js';

const watchers = Number(process.argv[2] ?? 1000);
const streamCount = Number(process.argv[3] ?? 10);
const puts = Number(process.argv[4] ?? 5000);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'concord-watch-fanout-'));
const ws = WatchableStore.open({ backend: Backend.open({ path: path.join(dir, 'db.lmdb') }) });
const streams = Array.from({ length: streamCount }, () => ws.newWatchStream<never>());
const key = Buffer.from('bench/watch-key');
for (let i = 0; i < watchers; i++) streams[i % streamCount].watch({ id: 0, key, end: undefined, startRevision: 0, filterPut: false, filterDelete: false });
const header = { clusterId: 0x1234567890abcdefn, memberId: 0x42n, revision: 0, raftTerm: 2 };
const batch = new ResponseBatch();
const req = PutRequest.fromPartial({ key, value: Buffer.from('@WB@12345678') });

let bytes = 0;
let events = 0;
/** Batches "in flight": dropped 32 batches later, as HTTP/2 holds a write until the socket took it. */
const inFlight: Buffer[] = [];
function write(): void {
  const frames = batch.take();
  bytes += frames.length;
  inFlight.push(frames);
  if (inFlight.length > 32) inFlight.shift();
}
function round(): void {
  ws.kv.put(req);
  for (const s of streams) {
    for (let item = s.nextItem(); item !== undefined; item = s.nextItem()) {
      if (item.kind !== 'fanout') continue;
      header.revision = item.revision;
      // As the watch service: batches of at most ~60 KiB, a fan-out split between them.
      for (let from = 0; from < item.watchIds.length;) {
        from = batch.addFanout(header, item.watchIds, item.events, from, 60 * 1024);
        if (batch.bytes >= 60 * 1024) write();
      }
      events += item.watchIds.length;
    }
    write();
  }
}

for (let i = 0; i < Math.min(500, puts); i++) round(); // warm-up
events = 0; bytes = 0;
const cpu0 = process.cpuUsage();
const faults0 = process.resourceUsage().minorPageFault;
const t0 = performance.now();
for (let i = 0; i < puts; i++) round();
const ms = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
const faults = process.resourceUsage().minorPageFault - faults0;
console.log(`${watchers} watchers on 1 key over ${streamCount} streams, ${puts} puts: ${events} events, ` +
  `${((cpu.user + cpu.system) * 1000 / events).toFixed(0)} ns CPU per event (${(ms * 1e6 / events).toFixed(0)} ns wall), ` +
  `${(bytes / events).toFixed(1)} bytes per event, ${(faults * 1000 / events).toFixed(2)} page faults per 1000 events`);
await ws.kv.close();
fs.rmSync(dir, { recursive: true, force: true });
