// Lease keep-alive benchmark (`npm run bench:lease`, i.e. `node dist/bench/lease.js` after a
// build): C clients, each with its own lease and LeaseKeepAlive stream, spread over N
// connections, each sending its next keep-alive as soon as the previous one is answered
// (closed loop), against real etcd and Concord in the same run. Reports keep-alives per
// second (all clients together), keep-alive latency p50/p99, and the server's CPU time per
// 1,000 keep-alives (from /proc: a cost that holds up better than rates on a busy machine).
//
// Options (flags or env):
//   --targets etcd,concord   BENCH_TARGETS
//   --clients 100            BENCH_LEASE_CLIENTS
//   --connections 10         BENCH_LEASE_CONNECTIONS
//   --duration 5             BENCH_DURATION_S (seconds measured, after 1 s of warm-up)
import * as grpc from '@grpc/grpc-js';
import { performance } from 'node:perf_hooks';
import { cpuMs } from './proc-cpu.js';
import { LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest, LeaseKeepAliveResponse } from '../src/proto/gen/etcdserverpb/rpc.js';
import { Server, type EtcdClient, type TargetName } from '../test/harness.js';

function opt(name: string, env: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && process.argv[i + 1] !== undefined) return process.argv[i + 1]!;
  return process.env[env] ?? def;
}

const targets = opt('targets', 'BENCH_TARGETS', 'etcd,concord').split(',') as TargetName[];
const clientCount = Number(opt('clients', 'BENCH_LEASE_CLIENTS', '100'));
const connections = Number(opt('connections', 'BENCH_LEASE_CONNECTIONS', '10'));
const durationS = Number(opt('duration', 'BENCH_DURATION_S', '5'));

interface Result { target: TargetName; perS: number; p50Ms: number; p99Ms: number; zeroTtl: number; cpuMsPer1k: number }


/** One client: its own lease and stream, one keep-alive outstanding at a time. */
function keepAliveLoop(c: EtcdClient, id: bigint, onAnswer: (ms: number, ttl: number) => void, stopped: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const call = c.raw.makeBidiStreamRequest('/etcdserverpb.Lease/LeaseKeepAlive',
      (m: LeaseKeepAliveRequest) => Buffer.from(LeaseKeepAliveRequest.encode(m).finish()),
      (b: Buffer) => LeaseKeepAliveResponse.decode(b), new grpc.Metadata());
    let sentAt = 0;
    const send = (): void => {
      sentAt = performance.now();
      call.write({ ID: id });
    };
    call.on('data', (r: LeaseKeepAliveResponse) => {
      onAnswer(performance.now() - sentAt, r.TTL);
      if (stopped()) { call.end(); call.cancel(); resolve(); return; }
      send();
    });
    call.on('error', () => resolve());
    send();
  });
}

const sleepMs = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One second of warm-up, then `durationS` measured (`setMeasuring` brackets it); the measured seconds. */
async function measuredWindow(setMeasuring: (on: boolean) => void): Promise<number> {
  await sleepMs(1000);
  const started = performance.now();
  setMeasuring(true);
  await sleepMs(durationS * 1000);
  setMeasuring(false);
  return (performance.now() - started) / 1000;
}

function quantiles(samples: number[], ps: number[]): number[] {
  const sorted = [...samples].sort((a, b) => a - b);
  return ps.map((p) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN);
}

async function run(target: TargetName): Promise<Result> {
  const server = new Server({ target });
  await server.start();
  const clients = Array.from({ length: connections }, () => server.client());
  try {
    const ids: bigint[] = [];
    for (let i = 0; i < clientCount; i++) {
      const g = await clients[0]!.unary('/etcdserverpb.Lease/LeaseGrant', LeaseGrantRequest, LeaseGrantResponse, { TTL: 60, ID: 0n });
      ids.push(g.ID);
    }
    let measuring = false;
    let stop = false;
    let answers = 0;
    let zeroTtl = 0;
    const latencies: number[] = [];
    const loops = ids.map((id, i) => keepAliveLoop(clients[i % connections]!, id, (ms, ttl) => {
      if (!measuring) return;
      answers++;
      if (ttl === 0) zeroTtl++;
      if ((answers & 7) === 0) latencies.push(ms);
    }, () => stop));
    let cpuAtStart = 0;
    let cpuUsed = 0;
    const elapsedS = await measuredWindow((on) => {
      measuring = on;
      if (on) cpuAtStart = cpuMs(server.pid!);
      else cpuUsed = cpuMs(server.pid!) - cpuAtStart;
    });
    stop = true;
    await Promise.all(loops);
    const [p50Ms, p99Ms] = quantiles(latencies, [0.5, 0.99]);
    return { target, perS: answers / elapsedS, p50Ms, p99Ms, zeroTtl, cpuMsPer1k: (cpuUsed * 1000) / answers };
  } finally {
    for (const c of clients) c.close();
    await server.destroy();
  }
}

const results: Result[] = [];
for (const t of targets) {
  process.stderr.write(`lease keep-alive: ${t}, ${clientCount} clients over ${connections} connections, ${durationS}s\n`);
  results.push(await run(t));
}
console.log('| target | clients | keep-alives/s | p50 ms | p99 ms | server CPU ms per 1k |');
console.log('|---|---|---|---|---|---|');
for (const r of results) {
  console.log(`| ${r.target} | ${clientCount} | ${r.perS.toFixed(0)} | ${r.p50Ms.toFixed(2)} | ${r.p99Ms.toFixed(2)} | ${r.cpuMsPer1k.toFixed(1)} |${r.zeroTtl ? ` (${r.zeroTtl} answered TTL 0!)` : ''}`);
}
const e = results.find((r) => r.target === 'etcd');
const c = results.find((r) => r.target === 'concord');
if (e && c) console.log(`concord/etcd: keep-alives/s ${(c.perS / e.perS).toFixed(2)}x, p50 ${(c.p50Ms / e.p50Ms).toFixed(2)}x, p99 ${(c.p99Ms / e.p99Ms).toFixed(2)}x, CPU per keep-alive ${(c.cpuMsPer1k / e.cpuMsPer1k).toFixed(2)}x`);
process.exit(0);
