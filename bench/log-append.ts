// The raft log's append cost as it grows (issue 14; not a test): `node dist/bench/log-append.js
// [--entries 200000] [--batch 32] [--bytes 300]`. Appends batches of entries to a MemoryStorage
// (as the raft loop does once a Ready is persisted) twice (the first pass warms the JIT) and
// prints, for the second, the CPU time of an append (process.cpuUsage, so a preempted append does
// not count): p50, p99, the max and the log length where it happened. Before the log's columns
// were NumberColumns, V8 grew them as arrays by copying: 45-73 ms CPU at 177,505 entries.
import { MemoryStorage } from '../src/raft/storage.js';
import type { Entry } from '../src/proto/index.js';

function opt(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}
const total = opt('entries', 200_000);
const batch = opt('batch', 32);
const data = new Uint8Array(opt('bytes', 300));

let costs: Array<[cpuMs: number, at: number]> = [];
for (let pass = 0; pass < 2; pass++) {
  costs = [];
  const s = new MemoryStorage();
  for (let index = 1; index <= total;) {
    const ents: Entry[] = [];
    for (let i = 0; i < batch; i++) ents.push({ term: 1, index: index++, type: 0, data });
    const c0 = process.cpuUsage();
    s.append(ents);
    const c = process.cpuUsage(c0);
    costs.push([(c.user + c.system) / 1000, index - 1]);
  }
}
const sorted = costs.map(([ms]) => ms).sort((a, b) => a - b);
const worst = costs.reduce((w, c) => (c[0] > w[0] ? c : w));
console.log(`appends of ${batch} entries up to ${total}: CPU ms p50 ${sorted[sorted.length >> 1]!.toFixed(3)} p99 ${sorted[Math.floor(sorted.length * 0.99)]!.toFixed(3)} max ${worst[0].toFixed(2)} (log at ${worst[1]} entries)`);
