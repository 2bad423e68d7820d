// Watch fan-out benchmark (`npm run bench:watch`, i.e. `node dist/bench/watch.js` after a build):
// W watchers on one key (spread over C connections, one stream each), 16 writers putting to
// that key as fast as they are answered, against real etcd and Concord in the same run.
// Reports events delivered per second (all watchers together) and put-to-event latency
// p50/p99 (each value carries the writer's send time). Writers and watchers share this
// process, the same for both targets.
//
// Options (flags or env):
//   --targets etcd,concord   BENCH_TARGETS
//   --watchers 1000          BENCH_WATCHERS
//   --connections 10         BENCH_WATCH_CONNECTIONS
//   --writers 16             BENCH_WRITERS
//   --duration 5             BENCH_DURATION_S (seconds measured)
//   --prefix                 watchers watch the prefix bench/ and writers spread over 16 keys under it
//   --rate 0                 BENCH_WATCH_RATE: total puts/s (0: as fast as answered), e.g. --watchers 100 --rate 200
// Examples: --watchers 10000; --prefix; --watchers 100 --rate 200.
import * as grpc from '@grpc/grpc-js';
import { performance } from 'node:perf_hooks';
import { WatchCreateRequest, WatchRequest } from '../src/proto/gen/etcdserverpb/rpc.js';
import { Server, type EtcdClient } from '../test/harness.js';

function opt(name: string, env: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && process.argv[i + 1] !== undefined) return process.argv[i + 1]!;
  return process.env[env] ?? def;
}

const targets = opt('targets', 'BENCH_TARGETS', 'etcd,concord').split(',') as Array<'etcd' | 'concord'>;
const watchers = Number(opt('watchers', 'BENCH_WATCHERS', '1000'));
const connections = Number(opt('connections', 'BENCH_WATCH_CONNECTIONS', '10'));
const writers = Number(opt('writers', 'BENCH_WRITERS', '16'));
const durationS = Number(opt('duration', 'BENCH_DURATION_S', '5'));
const prefix = process.argv.includes('--prefix');
const rate = Number(opt('rate', 'BENCH_WATCH_RATE', '0'));
const PREFIX = Buffer.from('bench/');
const PREFIX_END = Buffer.from('bench0'); // '/' + 1

const KEY = Buffer.from('bench/watch-key');
/** Values are MARK + the send time (float64): responses are scanned for it, not decoded (the client must not be the bottleneck). */
const MARK = Buffer.from('@TS@');

interface Result { target: string; puts: number; events: number; eventsPerS: number; p50Ms: number; p99Ms: number }

const encCreate = (): Buffer => Buffer.from(WatchRequest.encode({
  createRequest: { ...WatchCreateRequest.fromJSON({}), ...(prefix ? { key: PREFIX, rangeEnd: PREFIX_END } : { key: KEY }) },
  cancelRequest: undefined, progressRequest: undefined,
}).finish());

async function run(target: 'etcd' | 'concord'): Promise<Result> {
  const server = new Server({ target, name: 'benchwatch' });
  await server.start();
  const clients: EtcdClient[] = [];
  const calls: grpc.ClientDuplexStream<Buffer, Buffer>[] = [];
  let measuring = false;
  let events = 0;
  const latencies: number[] = [];
  try {
    const perConn = Math.ceil(watchers / connections);
    let created = 0;
    for (let c = 0; c < connections; c++) {
      const client = server.client();
      clients.push(client);
      const call = client.raw.makeBidiStreamRequest('/etcdserverpb.Watch/Watch', (b: Buffer) => b, (b: Buffer) => b, new grpc.Metadata());
      calls.push(call);
      call.on('error', () => {});
      call.on('data', (buf: Buffer) => {
        let at = buf.indexOf(MARK);
        if (at < 0) { created++; return; }
        const now = performance.now();
        for (; at >= 0; at = buf.indexOf(MARK, at + MARK.length + 8)) {
          if (!measuring) continue;
          events++;
          if ((events & 15) === 0) latencies.push(now - buf.readDoubleLE(at + MARK.length));
        }
      });
      for (let i = 0; i < perConn && c * perConn + i < watchers; i++) call.write(encCreate());
    }
    while (created < watchers) await new Promise((r) => setTimeout(r, 20));
    const writer = server.client();
    clients.push(writer);
    let stop = false;
    let puts = 0;
    let seq = 0;
    const putOne = async (): Promise<void> => {
      const value = Buffer.alloc(MARK.length + 8);
      MARK.copy(value);
      value.writeDoubleLE(performance.now(), MARK.length);
      await writer.put({ key: prefix ? Buffer.from(`bench/k${seq++ % 16}`) : KEY, value });
      if (measuring) puts++;
    };
    const loops = rate > 0
      ? [(async () => { // open loop: one put every 1/rate s, not waiting for answers
        const pending: Array<Promise<void>> = [];
        for (let i = 0; !stop; i++) {
          pending.push(putOne());
          await new Promise((r) => setTimeout(r, 1000 / rate));
        }
        await Promise.all(pending);
      })()]
      : Array.from({ length: writers }, async () => { while (!stop) await putOne(); });
    await new Promise((r) => setTimeout(r, 1000)); // warm-up
    measuring = true;
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, durationS * 1000));
    measuring = false;
    const elapsedS = (performance.now() - t0) / 1000;
    stop = true;
    await Promise.all(loops);
    latencies.sort((a, b) => a - b);
    const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? NaN;
    return { target, puts, events, eventsPerS: events / elapsedS, p50Ms: q(0.5), p99Ms: q(0.99) };
  } finally {
    for (const c of calls) c.cancel();
    for (const c of clients) c.close();
    await server.destroy();
  }
}

const results: Result[] = [];
for (const t of targets) {
  process.stderr.write(`watch fan-out: ${t}, ${watchers} watchers on ${prefix ? 'a prefix' : 'one key'}${rate ? ` at ${rate} puts/s` : ''} over ${connections} connections, ${writers} writers, ${durationS}s\n`);
  results.push(await run(t));
}
console.log('| target | watchers | on | writers | puts/s | events/s | p50 ms | p99 ms |');
console.log('|---|---|---|---|---|---|---|---|');
for (const r of results) {
  console.log(`| ${r.target} | ${watchers} | ${prefix ? 'prefix' : 'key'} | ${rate ? `${rate}/s` : writers} | ${(r.puts / durationS).toFixed(0)} | ${r.eventsPerS.toFixed(0)} | ${r.p50Ms.toFixed(2)} | ${r.p99Ms.toFixed(2)} |`);
}
const e = results.find((r) => r.target === 'etcd');
const c = results.find((r) => r.target === 'concord');
if (e && c) console.log(`concord/etcd: events/s ${(c.eventsPerS / e.eventsPerS).toFixed(2)}x, p50 ${(c.p50Ms / e.p50Ms).toFixed(2)}x, p99 ${(c.p99Ms / e.p99Ms).toFixed(2)}x`);
