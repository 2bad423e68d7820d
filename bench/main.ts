// The benchmark program (`npm run bench`, i.e. `node dist/bench/main.js` after a build).
// Starts real etcd and Concord the same way (one member, temp data dir, free loopback ports)
// and drives each with the same load generator (bench/loadgen.ts, a separate process speaking
// gRPC over raw node:http2), scenario by scenario:
//   put-1     Put, 1 client, 1 connection, 256-byte values, random keys
//   put-100   Put, 100 clients over 10 connections, 256-byte values, random keys
//   range-l   Range (linearizable) of one key, 100 clients over 10 connections
//   range-s   Range (serializable) of one key, 100 clients over 10 connections
//   watch-key   1,000 watchers on one key (10 streams), 16 writers: events/s, put-to-event latency
//   watch-10k   10,000 watchers on one key (10 streams), 16 writers (delivery, not puts, is the limit)
//   watch-pfx   1,000 watchers on a prefix (10 streams), 16 writers over 1,000 keys under it
//   watch-pfx-10k  10,000 watchers on a prefix (10 streams), 16 writers over 1,000 keys under it
//   watch-200ps 100 watchers on a prefix (10 streams), 16 writers together at a steady 200 puts/s
//               over 100 keys under it: the p99 put-to-event latency of an unloaded server
//   watch-keys  1,000 keys, one watcher each (10 streams), 16 writers
//   watch-100w  100 watchers on a prefix (10 streams), 100 writers over 100 keys under it
//   watch-slow  watch-key plus 4 streams of 100 watchers that read nothing (RSS in the notes)
//   (the first five are issue 8's fan-out rows: 1,000 and 10,000 watchers on a key and on a
//   prefix with 16 writers, and 100 watchers at 200 puts/s)
//   lease-ka    LeaseKeepAlive, 100 clients (own lease and stream each) over 10 connections
//   mem         RSS of a fresh server after loading --mem-keys keys (each put once) and after a
//               restart, beside etcd's (bench/mem.ts; its own table)
//   snapshot    (not in the default list: it fills each store to --snapshot-mb MiB) etcdctl
//               snapshot save under one writer (save time, peak RSS, max put latency), restore
//               and import-at-boot times (bench/snapshot.ts), printed as its own table
//   (watch and lease rows run bench/watchgen.ts; their req/s column is events or keep-alives/s,
//   and their notes give the server's CPU time per event or keep-alive: steadier than rates
//   on a busy machine)
// Prints req/s, p50/p99 latency, the generator's and the server's CPU per target, and the
// Concord/etcd ratios in a table. Concord's rows note its event-loop delay (p99 and max of the
// main thread over the window, concord_event_loop_delay_seconds), and every row the machine's
// floor over the same window: the delay of an idle Node process's 5 ms timer (bench/loop-floor.ts),
// and with --floor per-cpu the worst of one such process pinned to each CPU.
//
// Options (flags or env):
//   --targets etcd,concord       BENCH_TARGETS
//   --scenarios put-1,put-100,range-l,range-s,txn-100,watch-key,watch-10k,watch-pfx,watch-pfx-10k,watch-200ps,watch-keys,watch-100w,watch-slow,lease-ka,mem   BENCH_SCENARIOS
//   --duration 5   (seconds measured per scenario)   BENCH_DURATION_S
//   --warmup 1     (seconds before measuring)        BENCH_WARMUP_S
//   --requests N   (measure N requests instead of a duration)  BENCH_REQUESTS
//   --clients 100 --connections 10 --value-bytes 256 --key-space 100000
//   --repeat N     run every scenario N times (medians reported)   BENCH_REPEAT
//   --snapshot-mb 256   store size for the snapshot scenario   BENCH_SNAPSHOT_MB
//   --json FILE    also write the raw results as JSON
//   --mem-keys 100000   keys the mem scenario loads   BENCH_MEM_KEYS
//   --mem-node-args "--max-semi-space-size=4"  also run mem for Concord under these Node flags   BENCH_MEM_NODE_ARGS
//   --concord-node-args "--no-compact"  Node flags for every Concord server (A/B of V8 settings)   BENCH_CONCORD_NODE_ARGS
//   --concord-env "K=V,K=V"  environment for every Concord server   BENCH_CONCORD_ENV
//   --ab-env "K=V,K=V"       also run a second Concord ("concord-b") with this environment added, each
//                            scenario on both in alternating order: an A/B under the same machine load   BENCH_AB_ENV
//   --loadgen-client lean    the put/range generator's HTTP/2 client: lean (raw frames on a TCP socket,
//                            bench/h2-lean.ts) or http2 (node:http2, about 5x its CPU per request)   BENCH_LOADGEN_CLIENT
//   --loadgen-nice 10        every load generator's threads at this nice value from its window's start (diagnostics)
//   --loadgen-node-args "..." the generators' Node flags (default: bench/generator-process.ts's; "" for Node's defaults)   BENCH_LOADGEN_NODE_ARGS
//   --concord-main-nice -10  Concord's main thread alone at this nice value once started (diagnostics; below 0 needs root)
//   --concord-others-nice 5  Concord's other threads at this nice value at each window's start (diagnostics)
//   --same-session           run the servers in the bench's session instead of each in its own (bench/server-session.ts)
//   --floor free             the machine's floor beside each window (bench/loop-floor.ts): free (one unpinned probe),
//                            per-cpu (also one pinned to each CPU: they raise Concord's loop maxima), off   BENCH_FLOOR

import { forkGenerator, generatorNodeArgs, GENERATOR_NODE_ARGS } from './generator-process.js';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { Server } from '../test/harness.js';
import { rangeKey, seedRangeKey } from './range-key.js';
import { serversInOwnSession } from './server-session.js';
import type { LoadConfig, LoadOp, LoadResult } from './loadgen.js';
import type { StreamLoadConfig, StreamLoadResult } from './watchgen.js';
import { floorNote, loopNote, memTable, runMem, scrapeLoopDelay, type LoopDelay, type MemVariant } from './mem.js';
import { snapshotBench } from './snapshot.js';
import { niceOption, reniceTasks } from './renice.js';
import { startLoopFloor } from './loop-floor.js';
import { parseEnvList } from './env-list.js';

const here = dirname(fileURLToPath(import.meta.url));

function opt(name: string, env: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && process.argv[i + 1] !== undefined) return process.argv[i + 1]!;
  const eq = process.argv.find((a) => a.startsWith(`--${name}=`));
  if (eq) return eq.slice(name.length + 3);
  return process.env[env] ?? def;
}

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  const src = readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n');
  console.log(src.filter((l) => l.startsWith('//')).map((l) => l.slice(3)).join('\n'));
  process.exit(0);
}

const targets = opt('targets', 'BENCH_TARGETS', 'etcd,concord').split(',').map((s) => s.trim()).filter(Boolean) as Array<'etcd' | 'concord'>;
const concordEnv = parseEnvList(opt('concord-env', 'BENCH_CONCORD_ENV', ''));
const abEnv = parseEnvList(opt('ab-env', 'BENCH_AB_ENV', ''));
/** Row labels: the targets, and "concord-b" (Concord with --ab-env) after "concord" when asked for. */
type Label = 'etcd' | 'concord' | 'concord-b';
const labels: Label[] = targets.flatMap((t): Label[] => (t === 'concord' && Object.keys(abEnv).length ? ['concord', 'concord-b'] : [t]));
const scenarioNames = opt('scenarios', 'BENCH_SCENARIOS', 'put-1,put-100,range-l,range-s,txn-100,watch-key,watch-10k,watch-pfx,watch-pfx-10k,watch-200ps,watch-keys,watch-100w,watch-slow,lease-ka,mem').split(',').map((s) => s.trim());
const durationS = Number(opt('duration', 'BENCH_DURATION_S', '5'));
const warmupS = Number(opt('warmup', 'BENCH_WARMUP_S', '1'));
const requests = Number(opt('requests', 'BENCH_REQUESTS', '0'));
const clients = Number(opt('clients', 'BENCH_CLIENTS', '100'));
const connections = Number(opt('connections', 'BENCH_CONNECTIONS', '10'));
const valueBytes = Number(opt('value-bytes', 'BENCH_VALUE_BYTES', '256'));
const keySpace = Number(opt('key-space', 'BENCH_KEY_SPACE', '100000'));
const jsonOut = opt('json', 'BENCH_JSON', '');
const repeat = Math.max(1, Number(opt('repeat', 'BENCH_REPEAT', '1')));

interface Scenario { name: string; title: string; op: LoadOp | 'stream'; clients: number; connections: number; serializable: boolean; stream?: Partial<StreamLoadConfig> }
const watchOn = (watchers: number, keys: number, writers: number): Partial<StreamLoadConfig> => ({ kind: 'watch', watchers, connections: 10, keys, prefix: false, writers, writerConnections: 4, slowStreams: 0, slowWatchersPerStream: 0 });
const streamScenarios: Scenario[] = [
  { name: 'watch-key', title: 'watch, 1000 watchers on 1 key, 16 writers', stream: watchOn(1000, 1, 16) },
  { name: 'watch-10k', title: 'watch, 10000 watchers on 1 key, 16 writers', stream: watchOn(10000, 1, 16) },
  { name: 'watch-pfx', title: 'watch, 1000 watchers on a prefix, 16 writers', stream: { ...watchOn(1000, 1000, 16), prefix: true } },
  { name: 'watch-pfx-10k', title: 'watch, 10000 watchers on a prefix, 16 writers', stream: { ...watchOn(10000, 1000, 16), prefix: true } },
  { name: 'watch-200ps', title: 'watch, 100 on a prefix, 200 puts/s', stream: { ...watchOn(100, 100, 16), prefix: true, putsPerSecond: 200 } },
  { name: 'watch-keys', title: 'watch, 1000 keys x 1 watcher, 16 writers', stream: watchOn(1000, 1000, 16) },
  { name: 'watch-100w', title: 'watch, 100 on a prefix, 100 writers', stream: { ...watchOn(100, 100, 100), prefix: true, writerConnections: 10 } },
  { name: 'watch-slow', title: 'watch-key + 4x100 watchers not reading', stream: { ...watchOn(1000, 1, 16), slowStreams: 4, slowWatchersPerStream: 100 } },
  { name: 'lease-ka', title: 'lease keep-alive, 100 clients', stream: { kind: 'lease' as const, clients: 100, connections: 10 } },
].map((x) => ({ ...x, op: 'stream' as const, clients: 0, connections: 0, serializable: false }));
const ALL: Scenario[] = [
  { name: 'put-1', title: 'put, 1 client', op: 'put', clients: 1, connections: 1, serializable: false },
  { name: 'put-100', title: `put, ${clients} clients/${connections} conns`, op: 'put', clients, connections, serializable: false },
  { name: 'range-l', title: `range linearizable, ${clients} clients`, op: 'range', clients, connections, serializable: false },
  { name: 'range-s', title: `range serializable, ${clients} clients`, op: 'range', clients, connections, serializable: true },
  // etcd's `benchmark txn-put`: a Txn with no compare and one put (the issue 14 "txns keep their lead" row).
  { name: 'txn-100', title: `txn-put, ${clients} clients/${connections} conns`, op: 'txn-put', clients, connections, serializable: false },
  ...streamScenarios,
];
const memKeys = Number(opt('mem-keys', 'BENCH_MEM_KEYS', '100000'));
const memNodeArgs = opt('mem-node-args', 'BENCH_MEM_NODE_ARGS', '').split(/\s+/).filter(Boolean);
const concordNodeArgs = opt('concord-node-args', 'BENCH_CONCORD_NODE_ARGS', '').split(/\s+/).filter(Boolean);
const loadgenNice = niceOption(process.argv, 'loadgen-nice');
const loadgenNodeArgs = generatorNodeArgs(opt('loadgen-node-args', 'BENCH_LOADGEN_NODE_ARGS', GENERATOR_NODE_ARGS.join(' ')));
const loadgenClient = opt('loadgen-client', 'BENCH_LOADGEN_CLIENT', 'lean') as 'lean' | 'http2';
if (loadgenClient !== 'lean' && loadgenClient !== 'http2') { console.error(`--loadgen-client is lean or http2, not ${loadgenClient}`); process.exit(2); }
const concordMainNice = niceOption(process.argv, 'concord-main-nice');
const concordOthersNice = niceOption(process.argv, 'concord-others-nice');
const runMemScenario = scenarioNames.includes('mem');
const runSnapshotScenario = scenarioNames.includes('snapshot');
const snapshotMiB = Number(opt('snapshot-mb', 'BENCH_SNAPSHOT_MB', '256'));
const scenarios = scenarioNames.filter((n) => n !== 'mem' && n !== 'snapshot').map((n) => {
  const s = ALL.find((x) => x.name === n);
  if (!s) { console.error(`unknown scenario ${n}; known: ${ALL.map((x) => x.name).join(', ')}, mem, snapshot`); process.exit(2); }
  return s;
});

interface Row { target: string; scenario: string; result?: LoadResult; loop?: LoopDelay; floor?: LoopDelay; serverCpuPct?: number; genCpuPct?: number; otherCpuPct?: number; error?: string }
const rows: Row[] = [];

// ---- CPU of a process tree, from /proc (clock ticks -> ms) ----
const TICK_MS = 10; // USER_HZ is 100 on Linux
function treeCpuMs(rootPid: number): number {
  const parent = new Map<number, number>();
  const cpu = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // rest[0] = state (field 3); ppid field 4 -> rest[1]; utime 14 -> rest[11]; stime 15 -> rest[12]
      parent.set(Number(d), Number(rest[1]));
      cpu.set(Number(d), (Number(rest[11]) + Number(rest[12])) * TICK_MS);
    } catch { /* process went away */ }
  }
  let total = 0;
  const stack = [rootPid];
  const seen = new Set<number>();
  while (stack.length) {
    const p = stack.pop()!;
    if (seen.has(p)) continue;
    seen.add(p);
    total += cpu.get(p) ?? 0;
    for (const [c, pp] of parent) if (pp === p) stack.push(c);
  }
  return total;
}

/** Machine-wide busy and total jiffies from /proc/stat (all CPUs). */
function machineCpu(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, x) => a + x, 0);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  return { busy: total - idle, total };
}
const NCPU = cpus().length;

/** Each --floor mode and what the table's footnote says of it. */
const FLOOR_NOTES = { free: '', 'per-cpu': ', per CPU: the worst max of one such process pinned to each CPU', off: ' (not measured: --floor off)' } as const;
const floorMode = opt('floor', 'BENCH_FLOOR', 'free');
if (!Object.hasOwn(FLOOR_NOTES, floorMode)) { console.error(`--floor is free, per-cpu or off, not ${floorMode}`); process.exit(2); }
const floorFootnote = FLOOR_NOTES[floorMode as keyof typeof FLOOR_NOTES];
/** The machine's own loop-delay floor over each window (bench/loop-floor.ts). */
const loopFloor = scenarios.length > 0 && floorMode !== 'off' ? startLoopFloor(floorMode === 'per-cpu') : undefined;

function runLoad(server: Server, sc: Scenario, label: string): Promise<{ result: LoadResult; serverCpuMs: number; wallMs: number; machinePct: number; loop: LoopDelay | undefined; floor: LoopDelay | undefined }> {
  return new Promise((resolve, reject) => {
    const cfg: LoadConfig | StreamLoadConfig = sc.op === 'stream'
      ? { ...sc.stream, endpoint: server.endpoint, warmupMs: warmupS * 1000, durationMs: durationS * 1000, serverPid: server.pid! } as StreamLoadConfig
      : {
        endpoint: server.endpoint, op: sc.op, clients: sc.clients, connections: sc.connections,
        valueBytes, keySpace, rangeKey, serializable: sc.serializable,
        warmupMs: warmupS * 1000, durationMs: requests > 0 ? 0 : durationS * 1000, totalRequests: requests,
        client: loadgenClient,
      };
    const child = forkGenerator(join(here, sc.op === 'stream' ? 'watchgen.js' : 'loadgen.js'), cfg, ['ignore', 'inherit', 'inherit', 'ipc'], loadgenNodeArgs);
    let cpu0 = 0;
    let t0 = 0;
    let m0 = { busy: 0, total: 1 };
    let machinePct = NaN;
    let result: LoadResult | null = null;
    let serverCpuMs = 0;
    let wallMs = 0;
    let loop: Promise<LoopDelay | undefined> = Promise.resolve(undefined);
    let floor: Promise<LoopDelay | undefined> = Promise.resolve(undefined);
    child.on('message', (m: any) => {
      if (m.type === 'window-start') {
        if (loadgenNice !== undefined) reniceTasks(child.pid!, loadgenNice, 'all');
        if (server.target === 'concord' && concordOthersNice !== undefined) reniceTasks(server.pid!, concordOthersNice, 'others');
        void scrapeLoopDelay(server); loopFloor?.reset(); cpu0 = treeCpuMs(server.pid!); t0 = performance.now(); m0 = machineCpu();
      } else if (m.type === 'progress') {
        const rate = m.phase === 'measure' && m.elapsedMs > 0 ? Math.round(m.requests / (m.elapsedMs / 1000)) : 0;
        process.stderr.write(`\r  ${label.padEnd(44)} ${m.phase.padEnd(7)} ${(m.elapsedMs / 1000).toFixed(1).padStart(5)}s ${String(m.requests).padStart(8)} req ${String(rate).padStart(7)} req/s${m.errors ? ` ${m.errors} errors` : ''}   `);
      } else if (m.type === 'result') {
        serverCpuMs = treeCpuMs(server.pid!) - cpu0;
        wallMs = performance.now() - t0;
        const m1 = machineCpu();
        machinePct = ((m1.busy - m0.busy) / Math.max(1, m1.total - m0.total)) * NCPU * 100;
        result = m.result;
        loop = scrapeLoopDelay(server);
        floor = loopFloor?.read() ?? Promise.resolve(undefined);
      }
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      process.stderr.write('\n');
      if (result) void Promise.all([loop, floor]).then(([d, f]) => resolve({ result: result!, serverCpuMs, wallMs, machinePct, loop: d, floor: f }));
      else reject(new Error(`load generator exited with ${code}`));
    });
  });
}

/** Start a target and seed the key the range scenarios read; null (and error rows) if it fails. */
async function startTarget(label: Label): Promise<Server | null> {
  const target = label === 'etcd' ? 'etcd' : 'concord';
  const env = label === 'concord-b' ? { ...concordEnv, ...abEnv } : target === 'concord' ? concordEnv : {};
  const server = new Server({ target, name: 'bench', nodeArgs: target === 'concord' ? concordNodeArgs : [], env, ownSession: serversInOwnSession });
  labelOf.set(server, label);
  process.stderr.write(`starting ${target}...\n`);
  const fail = async (why: string) => {
    process.stderr.write(`  ${label}: ${why}\n`);
    for (const sc of scenarios) rows.push({ target: label, scenario: sc.name, error: why.slice(0, 70) });
    await server.destroy();
    return null;
  };
  try {
    await server.start();
  } catch (e) {
    return fail(`did not start: ${String((e as Error).message).split('\n')[0]}`);
  }
  process.stderr.write(`  ${label} pid ${server.pid} on ${server.endpoint}, data ${server.dataDir}\n`);
  if (target === 'concord' && concordMainNice !== undefined) reniceTasks(server.pid!, concordMainNice, 'main');
  try {
    await seedRangeKey(server, valueBytes);
  } catch (e) {
    return fail(`seeding put failed: ${(e as Error).message}`);
  }
  return server;
}

const labelOf = new Map<Server, Label>();

async function runScenario(server: Server, sc: Scenario, rep: number): Promise<void> {
  const target = labelOf.get(server)!;
  if (!server.running) { rows.push({ target, scenario: sc.name, error: 'server not running' }); return; }
  try {
    const { result, serverCpuMs, wallMs, machinePct, loop, floor } = await runLoad(server, sc, `${target}: ${sc.title}${repeat > 1 ? ` #${rep + 1}` : ''}`);
    const genMs = result.cpuUserMs + result.cpuSystemMs;
    rows.push({
      target, scenario: sc.name, result, loop, floor,
      serverCpuPct: (serverCpuMs / wallMs) * 100,
      genCpuPct: (genMs / result.elapsedMs) * 100,
      otherCpuPct: machinePct - (serverCpuMs / wallMs) * 100 - (genMs / result.elapsedMs) * 100,
      error: result.errors ? `${result.errors} errors, first: ${result.firstError}` : undefined,
    });
  } catch (e) {
    rows.push({ target, scenario: sc.name, error: String((e as Error).message) });
  }
  if (!server.running) process.stderr.write(`  ${target} exited during ${sc.name}:\n${server.log.slice(-2000)}\n`);
}

const median = (xs: number[]): number => {
  const v = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  return v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
};

interface Summary { throughput: number; p50Ms: number; p99Ms: number; serverCpuPct: number; genCpuPct: number; otherCpuPct: number; runs: number; error?: string; note?: string; loop?: LoopDelay; floor?: LoopDelay }
/** Medians of the reps' p99 and max; undefined unless every rep has the figure. */
function medianDelay(ds: Array<LoopDelay | undefined>): LoopDelay | undefined {
  if (!ds.every((d) => d !== undefined)) return undefined;
  const perCpu = ds.map((d) => d!.cpuMaxMs);
  const cpuMaxMs = perCpu.every((x) => x !== undefined) ? median(perCpu as number[]) : undefined;
  return { p99Ms: median(ds.map((d) => d!.p99Ms)), maxMs: median(ds.map((d) => d!.maxMs)), ...(cpuMaxMs === undefined ? {} : { cpuMaxMs }) };
}

function summarize(target: string, scenario: string): Summary | undefined {
  const rs = rows.filter((x) => x.target === target && x.scenario === scenario);
  const ok = rs.filter((x) => x.result && x.result.requests > 0);
  const error = rs.find((x) => x.error)?.error;
  if (ok.length === 0) return error ? { throughput: NaN, p50Ms: NaN, p99Ms: NaN, serverCpuPct: NaN, genCpuPct: NaN, otherCpuPct: NaN, runs: 0, error } : undefined;
  return {
    throughput: median(ok.map((x) => x.result!.throughput)),
    p50Ms: median(ok.map((x) => x.result!.p50Ms)),
    p99Ms: median(ok.map((x) => x.result!.p99Ms)),
    serverCpuPct: median(ok.map((x) => x.serverCpuPct!)),
    genCpuPct: median(ok.map((x) => x.genCpuPct!)),
    otherCpuPct: median(ok.map((x) => x.otherCpuPct!)),
    runs: ok.length,
    loop: medianDelay(ok.map((x) => x.loop)),
    floor: medianDelay(ok.map((x) => x.floor)),
    error,
    note: (ok[ok.length - 1]!.result as Partial<StreamLoadResult>).note, // the watch/lease rows' units and memory (last run)
  };
}

function fmt(n: number | undefined, digits = 0): string {
  if (n === undefined || Number.isNaN(n)) return '-';
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** Server and generator CPU time per event or keep-alive (the watch and lease rows). */
function cpuPerOp(r: Summary | undefined): string | undefined {
  if (r === undefined || !(r.throughput > 0) || Number.isNaN(r.serverCpuPct)) return undefined;
  const us = (pct: number): string => fmt((pct / 100) * 1e6 / r.throughput, 2);
  return `server CPU ${us(r.serverCpuPct)} us/op, loadgen ${us(r.genCpuPct)} us/op`;
}

function table(): string {
  const head = ['scenario', 'target', 'req/s', 'p50 ms', 'p99 ms', 'server CPU', 'loadgen CPU', 'other CPU', 'notes'];
  const lines: string[][] = [head];
  for (const sc of scenarios) {
    for (const t of labels) {
      const r = summarize(t, sc.name);
      lines.push([sc.name, t, fmt(r?.throughput), fmt(r?.p50Ms, 2), fmt(r?.p99Ms, 2),
        r && !Number.isNaN(r.serverCpuPct) ? `${fmt(r.serverCpuPct)}%` : '-', r && !Number.isNaN(r.genCpuPct) ? `${fmt(r.genCpuPct)}%` : '-',
        r && !Number.isNaN(r.otherCpuPct) ? `${fmt(r.otherCpuPct)}%` : '-', [r?.note, sc.op === 'stream' ? cpuPerOp(r) : undefined, loopNote(r?.loop), floorNote(r?.floor), r?.error].filter(Boolean).join('; ')]);
    }
    const e = summarize('etcd', sc.name);
    const c = summarize('concord', sc.name);
    if (e && c && e.runs > 0 && c.runs > 0) {
      lines.push([sc.name, 'concord/etcd', `${(c.throughput / e.throughput).toFixed(2)}x`, `${(c.p50Ms / e.p50Ms).toFixed(2)}x`, `${(c.p99Ms / e.p99Ms).toFixed(2)}x`, '', '', '', '']);
    }
    const b = summarize('concord-b', sc.name);
    if (b && c && b.runs > 0 && c.runs > 0) {
      lines.push([sc.name, 'concord-b/concord', `${(b.throughput / c.throughput).toFixed(2)}x`, `${(b.p50Ms / c.p50Ms).toFixed(2)}x`, `${(b.p99Ms / c.p99Ms).toFixed(2)}x`, '', '', '', '']);
    }
  }
  const widths = head.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  const sep = '+' + widths.map((w) => '-'.repeat(w + 2)).join('+') + '+';
  const out = [sep];
  lines.forEach((l, li) => {
    out.push('| ' + l.map((c, i) => (i >= 2 && i <= 7 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ') + ' |');
    if (li === 0) out.push(sep);
  });
  out.push(sep);
  return out.join('\n');
}

process.stderr.write(`bench: targets ${labels.join(',')}; scenarios ${scenarios.map((s) => s.name).join(',')}; ` +
  (requests > 0 ? `${requests} requests` : `${durationS}s`) + ` each (x${repeat}) after ${warmupS}s warm-up; ${valueBytes}-byte values, key space ${keySpace}; generators under node ${loadgenNodeArgs.join(' ') || '(its defaults)'}\n`);
const servers: Server[] = [];
try {
  // Every target up at once; each scenario runs on one target after the other, the order
  // alternating between repetitions, so background noise on this shared machine hits both alike.
  if (scenarios.length) for (const t of labels) { const srv = await startTarget(t); if (srv) servers.push(srv); }
  for (let rep = 0; rep < repeat; rep++) {
    for (const sc of scenarios) {
      const order = rep % 2 === 0 ? servers : [...servers].reverse();
      for (const srv of order) await runScenario(srv, sc, rep);
    }
  }
} finally {
  for (const srv of servers) await srv.destroy();
  loopFloor?.stop();
}
const memVariants: MemVariant[] = labels.map((l) => ({
  label: l, target: l === 'etcd' ? 'etcd' : 'concord', nodeArgs: l === 'etcd' ? [] : concordNodeArgs,
  env: l === 'concord-b' ? { ...concordEnv, ...abEnv } : l === 'concord' ? concordEnv : {},
}));
if (memNodeArgs.length && targets.includes('concord')) memVariants.push({ label: `concord ${memNodeArgs.join(' ')}`, target: 'concord', nodeArgs: memNodeArgs });
const memRows = runMemScenario ? await runMem(memVariants, memKeys, valueBytes, join(here, 'loadgen.js'), loadgenNodeArgs) : [];
if (scenarios.length) console.log(table());
if (scenarios.length) console.log(`CPU figures are % of one core over the measured window (server: its whole process tree; loadgen: the generator process; other: everything else on this ${NCPU}-core machine, i.e. noise). Medians of ${repeat} run(s). floor: an idle Node process's 5 ms timer over the same window (how late this machine alone makes a timer fire; bench/loop-floor.ts)${floorFootnote}. Servers ${serversInOwnSession ? 'each in a session of its own (as a service manager runs them; --same-session: not)' : 'in the bench\'s session (--same-session)'}.`);
if (runMemScenario) console.log(memTable(memRows, memKeys) + '\nRSS from /proc/PID/status, each read after 2 s idle (settled: after the load, once it stopped falling, at most 20 s more: a loaded machine delays the GC that gives memory back); B/key = (RSS after load - RSS at start) / keys. One run per target, whatever --repeat.');
if (runSnapshotScenario) console.log((await snapshotBench(targets, snapshotMiB)).table);
if (jsonOut) writeFileSync(jsonOut, JSON.stringify(runMemScenario ? { rows, mem: memRows } : rows, null, 2));
