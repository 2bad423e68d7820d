// How much server CPU a delivered watch event costs in the store and the codec, without the
// network (`node dist/bench/watch-fanout.js [watchers] [streams] [puts] [puts per drain]`): the MVCC store with
// its watchable layer, `watchers` watchers on one key spread over `streams` streams, each put
// followed by every stream's queue encoded into gRPC frames as the watch service does
// (ResponseBatch, its output held for 32 batches): whole fan-out items, and beside it (in
// alternating slices, same load) watcher by watcher, the path before fan-out items and of
// streams with prev_kv/fragment/progress_notify watchers; and a stream behind by several puts,
// its queue merged per watcher (nextMergedFanouts). Prints CPU ns per delivered event
// and minor page faults: steadier than the loaded machine's events/s in `npm run bench`.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Backend } from '../src/storage/index.js';
import { WatchableStore, type WatchStream } from '../src/mvcc/index.js';
import { PutRequest } from '../src/proto/gen/etcdserverpb/rpc.js';
import { ResponseBatch } from '../src/api/watch-codec.js';

const watchers = Number(process.argv[2] ?? 1000);
const streamCount = Number(process.argv[3] ?? 10);
const puts = Number(process.argv[4] ?? 5000);
const putsPerDrain = Number(process.argv[5] ?? 8);

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
/** One put, then every stream's queue sent by `send` and written. */
function round(send: (s: WatchStream<never>) => void): void {
  ws.kv.put(req);
  for (const s of streams) {
    send(s);
    write();
  }
}

/** As the watch service sends: whole fan-outs, batches of at most ~60 KiB, a fan-out split between them. */
const roundFanout = (): void => round((s) => {
  for (let item = s.nextItem(); item !== undefined; item = s.nextItem()) {
    if (item.kind !== 'fanout') continue;
    header.revision = item.revision;
    for (let from = 0; from < item.watchIds.length;) {
      from = batch.addFanout(header, item.watchIds, item.events, from, 60 * 1024);
      if (batch.bytes >= 60 * 1024) write();
    }
    events += item.watchIds.length;
  }
});

/** Watcher by watcher (a reply object each, addEvents each): the path of streams with prev_kv/fragment/progress_notify watchers, and before fan-out items. */
const roundEach = (): void => round((s) => {
  for (let r = s.next(); r !== undefined; r = s.next()) {
    if (r.kind !== 'events') continue;
    header.revision = r.revision;
    batch.addEvents(header, r.watchId, r.events);
    if (batch.bytes >= 60 * 1024) write();
    events++;
  }
});

/**
 * A stream that fell behind: `putsPerDrain` puts, then each stream's queue taken as the watch
 * service takes it then (nextMergedFanouts: one response per watcher for those revisions).
 */
let sincePut = 0;
const roundMerged = (): void => {
  ws.kv.put(req);
  if (++sincePut < putsPerDrain) return;
  sincePut = 0;
  for (const s of streams) {
    for (let run = s.nextMergedFanouts(); run.length > 0; run = s.nextMergedFanouts()) {
      for (const f of run) {
        header.revision = f.revision;
        for (let from = 0; from < f.watchIds.length;) {
          from = batch.addFanout(header, f.watchIds, f.events, from, 60 * 1024);
          if (batch.bytes >= 60 * 1024) write();
        }
        events += f.watchIds.length * f.events.length;
      }
    }
    if (batch.count > 0) write();
  }
};

/** CPU ns and page faults per event of `round`, over `n` puts. */
function measure(round: () => void, n: number): { cpuNs: number; faults: number; events: number; bytes: number } {
  events = 0;
  bytes = 0;
  const cpu0 = process.cpuUsage();
  const faults0 = process.resourceUsage().minorPageFault;
  for (let i = 0; i < n; i++) round();
  const cpu = process.cpuUsage(cpu0);
  return { cpuNs: (cpu.user + cpu.system) * 1000, faults: process.resourceUsage().minorPageFault - faults0, events, bytes };
}

for (let i = 0; i < Math.min(500, puts); i++) { roundFanout(); roundEach(); roundMerged(); } // warm-up
// Alternating slices, so every way sees the same machine load.
const zero = () => ({ cpuNs: 0, faults: 0, events: 0, bytes: 0 });
const total = { fanout: zero(), each: zero(), merged: zero() };
const slices = 10;
for (let i = 0; i < slices; i++) {
  for (const [name, round] of [['fanout', roundFanout], ['each', roundEach], ['merged', roundMerged]] as const) {
    const m = measure(round, Math.ceil(puts / slices));
    total[name].cpuNs += m.cpuNs; total[name].faults += m.faults; total[name].events += m.events; total[name].bytes += m.bytes;
  }
}
const per = (t: ReturnType<typeof zero>): string =>
  `${(t.cpuNs / t.events).toFixed(0)} ns CPU, ${(t.bytes / t.events).toFixed(1)} bytes, ${(t.faults * 1000 / t.events).toFixed(2)} page faults per 1000 events`;
console.log(`${watchers} watchers on 1 key over ${streamCount} streams, ${puts} puts each way: ` +
  `fan-out items ${per(total.fanout)}; watcher by watcher ${per(total.each)}; ratio ${(total.each.cpuNs / total.each.events / (total.fanout.cpuNs / total.fanout.events)).toFixed(2)}x; ` +
  `merged per ${putsPerDrain} puts (a stream behind) ${per(total.merged)}`);
await ws.kv.close();
fs.rmSync(dir, { recursive: true, force: true });
