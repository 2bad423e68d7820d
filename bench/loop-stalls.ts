// What stalls Concord's main thread under load, and what makes a put's tail (issue 14; not a
// test): `node dist/bench/loop-stalls.js [options]`.
//
// Starts Concord with CONCORD_LOOP_TRACE (src/metrics/loop-trace.ts: every event-loop stall
// over --stall-ms with the overlap of each span kind the server marks and of each GC pause,
// and how much of the stall the main thread ran, waited for a CPU or slept), drives it with
// bench/loadgen.ts, and prints for the measured window:
//   - stalls by cause: each stall is charged to one cause (below), with count, total and max;
//   - span kinds: count, total and max ms, items per span, and duration percentiles;
// and, for every target (etcd too), the WAL fsync histogram over the window from /metrics
// (etcd_disk_wal_fsync_duration_seconds, both servers have it) and the client's latency: does
// the disk or the server make the tail?
//
// A stall's cause: "descheduled" when the thread waited for a CPU for at least half of it
// (another process had the core); else the span kind with the largest overlap among the
// leaf kinds (GC, WAL write/fdatasync, apply, backend flush), then the raft loop's own
// kinds; "front end / other" when no marked work covers a third of it (node:http2, the gRPC
// handlers: api/ is not marked).
//
// Options: --clients 100 --connections 10 --requests 30000 --repeat 1 --targets concord --op put|txn-put|range-l|range-s
//          --sequential (every put to a new key, in order: bench mem's load)   --warmup-ms 1000   --stall-ms 5   --env K=V[,K=V]   --node-args "..."   --keep FILE (copy the trace; %r: run)
//          --together (run the targets at the same time: their WAL fsyncs then share the disk's conditions)
//          --same-session (servers in this session, not each in its own: bench/server-session.ts)
//          --loadgen-nice N (the generator's threads from the window's start)   --loadgen-node-args "..." (bench/generator-process.ts; "" for Node's defaults)
//          --concord-main-nice N   --concord-others-nice N
//          --server-log FILE (append Concord's stdout, e.g. with --node-args --trace-gc-nvp)   --list (every stall)
//          --server-args "..." (server flags for every target, e.g. "--snapshot-count 10000")
//          --sched-waits (perf's context switches over the window: who held the CPU while Concord's main thread
//            waited for one, and where it slept 10 ms or more; bench/sched-waits.ts)
import { forkGenerator, generatorNodeArgs, GENERATOR_NODE_ARGS } from './generator-process.js';
import { appendFileSync, copyFileSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Server, httpGet, type TargetName } from '../test/harness.js';
import { serversInOwnSession } from './server-session.js';
import type { LoadConfig, LoadResult } from './loadgen.js';
import { benchOp, loadFieldsFor, seedRangeKey } from './range-key.js';
import { niceOption, reniceTasks, taskCpuLine, taskStats } from './renice.js';
import { recordSchedSwitches, summarizeSchedWaits, type SchedRecording } from './sched-waits.js';
import { parseEnvList } from './env-list.js';

const here = dirname(fileURLToPath(import.meta.url));
function opt(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : dflt;
}
const clients = Number(opt('clients', '100'));
const connections = Number(opt('connections', String(Math.min(10, clients))));
const requests = Number(opt('requests', '30000'));
/** Each put to a key of its own, in order (bench mem's load), instead of random keys over 100k. */
const sequential = process.argv.includes('--sequential');
/** Load before the measured window (0: the window starts with the first request to a fresh server). */
const warmupMs = Number(opt('warmup-ms', '1000'));
const repeat = Number(opt('repeat', '1'));
const targets = opt('targets', 'concord').split(',') as TargetName[];
const stallMs = Number(opt('stall-ms', '5'));
/** The call driven: puts, or one-key ranges of a 256-byte value (as bench/main.ts's range-l / range-s). */
const op = benchOp(opt('op', 'put'));
const keep = opt('keep', '');
const serverLog = opt('server-log', '');
const nodeArgs = opt('node-args', '').split(' ').filter(Boolean);
const serverArgs = opt('server-args', '').split(' ').filter(Boolean);
const loadgenNice = niceOption(process.argv, 'loadgen-nice');
const loadgenNodeArgs = generatorNodeArgs(opt('loadgen-node-args', process.env.BENCH_LOADGEN_NODE_ARGS ?? GENERATOR_NODE_ARGS.join(' ')));
const concordMainNice = niceOption(process.argv, 'concord-main-nice');
const concordOthersNice = niceOption(process.argv, 'concord-others-nice');
const schedWaits = process.argv.includes('--sched-waits');
const extraEnv = parseEnvList(opt('env', ''));

interface KindStats { count: number; totalMs: number; maxMs: number; n: number; hist: number[] }
interface StallLine { type: 'stall'; at: number; ms: number; runMs: number; waitMs: number; spans: Record<string, [number, number, number]> }
interface SecondLine { type: 'second'; at: number; histBaseMs: number; kinds: Record<string, KindStats> }

/** Leaf kinds first: a stall inside a Ready is charged to what inside the Ready took the time. */
const leafKinds = ['gc.', 'wal.', 'raft.apply', 'backend.'];

function causeOf(s: StallLine, ignoreWait = false): string {
  if (!ignoreWait && s.waitMs >= s.ms / 2) return 'descheduled (waited for a CPU)';
  const ms = ignoreWait ? s.runMs : s.ms;
  const spans = Object.entries(s.spans);
  const best = (filter: (k: string) => boolean): [string, number] | undefined =>
    spans.filter(([k]) => filter(k)).sort((a, b) => b[1][0] - a[1][0]).map(([k, v]) => [k, v[0]] as [string, number])[0];
  const leaf = best((k) => leafKinds.some((p) => k.startsWith(p)));
  if (leaf && leaf[1] >= ms / 3) return leaf[0];
  const any = best(() => true);
  if (any && any[1] >= ms / 3) return any[0];
  if (!ignoreWait && s.runMs + s.waitMs < s.ms / 2) return 'slept (blocking syscall/futex, unmarked)';
  return 'front end / other (unmarked)';
}

/** Upper bounds (ms) and cumulative counts of a histogram family on a /metrics page. */
async function histogram(server: Server, name: string): Promise<Map<number, number>> {
  const r = await httpGet(`${server.endpoint.replace('https', 'http')}/metrics`, 5000);
  const out = new Map<number, number>();
  const re = new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\d+)`, 'gm');
  for (let m = re.exec(r.body); m; m = re.exec(r.body)) out.set(m[1] === '+Inf' ? Infinity : Number(m[1]) * 1000, Number(m[2]));
  return out;
}

function histDiff(a: Map<number, number>, b: Map<number, number>): string {
  const parts: string[] = [];
  let prev = 0;
  for (const [le, cum] of b) {
    const n = cum - (a.get(le) ?? 0);
    if (n - prev > 0) parts.push(`<=${le === Infinity ? 'inf' : le}ms:${n - prev}`);
    prev = n;
  }
  return parts.join(' ');
}

function percentile(hist: number[], base: number, p: number): string {
  const total = hist.reduce((a, b) => a + b, 0);
  let acc = 0;
  for (let b = 0; b < hist.length; b++) {
    acc += hist[b]!;
    if (acc >= total * p) return b === hist.length - 1 ? `>${base * 2 ** (b - 1)}` : `<${base * 2 ** b}`;
  }
  return '-';
}

async function once(target: TargetName, r: number): Promise<void> {
  // On tmpfs where there is one: an append to the disk the WAL fsyncs on can wait for the
  // journal, and the tracer's write is on the main thread it measures.
  const trace = join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), `loop-trace-${process.pid}-${r}.jsonl`);
  rmSync(trace, { force: true });
  const env = target === 'concord' ? { ...extraEnv, CONCORD_LOOP_TRACE: trace, CONCORD_LOOP_TRACE_MS: String(stallMs) } : {};
  const server = new Server({ target, name: 'stalls', nodeArgs: target === 'concord' ? nodeArgs : [], extraArgs: serverArgs, env, ownSession: serversInOwnSession });
  await server.start();
  if (serverLog && target === 'concord') server.child!.stdout!.on('data', (d: Buffer) => appendFileSync(serverLog, d));
  if (op !== 'put') await seedRangeKey(server);
  const cfg: LoadConfig = { endpoint: server.endpoint, ...loadFieldsFor(op), clients, connections, valueBytes: 256, keySpace: sequential ? requests + 100_000 : 100_000,
    sequentialKeys: sequential, warmupMs, durationMs: 0, totalRequests: requests };
  let from = 0, to = 0;
  let fsync0 = new Map<number, number>(), fsync1 = new Map<number, number>();
  let pending: Promise<void> = Promise.resolve();
  let threads0 = new Map<number, { cpuMs: number }>();
  let threadLine = '';
  let recording: SchedRecording | string | undefined;
  let generatorPid = 0;
  const fsyncName = 'etcd_disk_wal_fsync_duration_seconds';
  const result = await new Promise<LoadResult>((resolve, reject) => {
    const child = forkGenerator(join(here, 'loadgen.js'), cfg, ['ignore', 'ignore', 'inherit', 'ipc'], loadgenNodeArgs);
    let res: LoadResult | undefined;
    child.on('message', (m: any) => {
      if (m.type === 'window-start') {
        if (loadgenNice !== undefined) reniceTasks(child.pid!, loadgenNice, 'all');
        if (target === 'concord' && concordMainNice !== undefined) reniceTasks(server.pid!, concordMainNice, 'main');
        if (target === 'concord' && concordOthersNice !== undefined) reniceTasks(server.pid!, concordOthersNice, 'others');
        if (target === 'concord') threads0 = taskStats(server.pid!);
        if (target === 'concord' && schedWaits) recording = recordSchedSwitches(join(tmpdir(), `sched-waits-${process.pid}-${r}.data`));
        from = Date.now(); pending = histogram(server, fsyncName).then((h) => { fsync0 = h; }); }
      else if (m.type === 'result') {
        to = Date.now(); res = m.result;
        generatorPid = child.pid!;
        if (typeof recording === 'object') pending = pending.then(() => (recording as SchedRecording).stop());
        if (target === 'concord') threadLine = taskCpuLine(server.pid!, threads0, taskStats(server.pid!), to - from);
      }
    });
    child.on('exit', (code) => (res ? resolve(res) : reject(new Error(`loadgen exited ${code}`))));
  });
  await pending;
  fsync1 = await histogram(server, fsyncName);
  await new Promise((res) => setTimeout(res, 1500)); // the tracer's next flush settles the window's stalls
  await server.destroy();
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  console.log(`\n== ${target} run ${r + 1}: ${result.requests} ${op === 'put' ? 'puts' : `${op} calls`}, ${clients} clients / ${connections} conns; ${Math.round(result.throughput)} req/s, `
    + `p50 ${result.p50Ms.toFixed(2)} p99 ${result.p99Ms.toFixed(2)} max ${result.maxMs.toFixed(1)} ms (load ${load})`);
  console.log(`WAL fsyncs in the window (${fsyncName}): ${histDiff(fsync0, fsync1)}`);
  if (target !== 'concord') return;
  console.log(`threads (nice) CPU: ${threadLine}`);
  if (keep) copyFileSync(trace, keep.replace('%r', String(r + 1)));
  const lines = readFileSync(trace, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as StallLine | SecondLine);
  rmSync(trace, { force: true });
  const stalls = lines.filter((l): l is StallLine => l.type === 'stall' && l.at >= from && l.at <= to);
  const seconds = lines.filter((l): l is SecondLine => l.type === 'second' && l.at > from + 1000 && l.at <= to + 1000);
  const windowS = (to - from) / 1000;
  const over10 = stalls.filter((s) => s.ms > 10).length;
  console.log(`stalls over ${stallMs} ms: ${stalls.length} in ${windowS.toFixed(1)} s (${over10} over 10 ms), max ${Math.max(0, ...stalls.map((s) => s.ms)).toFixed(1)} ms`);
  printCauses('wall time', stalls, (s) => causeOf(s), (s) => s.ms);
  // What a quiet machine would show: the thread's own CPU in each stall (load-independent but for cache and clock).
  const cpuStalls = stalls.filter((s) => s.runMs >= stallMs);
  console.log(`stalls with at least ${stallMs} ms of the thread's own CPU: ${cpuStalls.length} (${cpuStalls.filter((s) => s.runMs > 10).length} over 10 ms), `
    + `max ${Math.max(0, ...cpuStalls.map((s) => s.runMs)).toFixed(1)} ms CPU`);
  printCauses('CPU', cpuStalls, (s) => causeOf(s, true), (s) => s.runMs);
  const kinds = new Map<string, KindStats>();
  let base = 0.125;
  for (const s of seconds) {
    base = s.histBaseMs;
    for (const [k, v] of Object.entries(s.kinds)) {
      const e = kinds.get(k);
      if (!e) kinds.set(k, { ...v, hist: [...v.hist] });
      else { e.count += v.count; e.totalMs += v.totalMs; e.maxMs = Math.max(e.maxMs, v.maxMs); e.n += v.n; v.hist.forEach((x, i) => { e.hist[i]! += x; }); }
    }
  }
  console.log(`  span kind (whole seconds in the window)   count  total ms   max ms  items/span  p50 ms   p99 ms`);
  for (const [k, v] of [...kinds].sort((a, b) => b[1].totalMs - a[1].totalMs)) {
    console.log(`  ${k.padEnd(40)} ${String(v.count).padStart(6)} ${v.totalMs.toFixed(1).padStart(9)} ${v.maxMs.toFixed(1).padStart(8)} `
      + `${(v.n / v.count).toFixed(1).padStart(10)} ${percentile(v.hist, base, 0.5).padStart(7)} ${percentile(v.hist, base, 0.99).padStart(8)}`);
  }
  if (process.argv.includes('--list')) for (const s of stalls) console.log(`  ${JSON.stringify(s)}`);
  if (typeof recording === 'string') console.log(`sched waits: not recorded: ${recording}`);
  else if (recording) {
    const names = new Map([[server.pid!, 'concord'], [generatorPid, 'generator'], [process.pid, 'loop-stalls']]);
    for (const line of await summarizeSchedWaits(recording.file, server.pid!, names, 1, stallMs)) console.log(line);
    rmSync(recording.file, { force: true });
  }
}

function printCauses(what: string, stalls: StallLine[], cause: (s: StallLine) => string, ms: (s: StallLine) => number): void {
  const byCause = new Map<string, { count: number; total: number; max: number }>();
  for (const s of stalls) {
    const c = cause(s);
    const e = byCause.get(c) ?? { count: 0, total: 0, max: 0 };
    e.count++; e.total += ms(s); e.max = Math.max(e.max, ms(s));
    byCause.set(c, e);
  }
  console.log(`  cause (${what})`.padEnd(43) + 'count  total ms   max ms');
  for (const [c, e] of [...byCause].sort((a, b) => b[1].total - a[1].total)) {
    console.log(`  ${c.padEnd(40)} ${String(e.count).padStart(5)} ${e.total.toFixed(1).padStart(9)} ${e.max.toFixed(1).padStart(8)}`);
  }
}

// --together: every target at once (each its own generator), so their disks see the same neighbours.
const together = process.argv.includes('--together');
for (let r = 0; r < repeat; r++) {
  if (together) await Promise.all(targets.map((t) => once(t, r)));
  else for (const t of targets) await once(t, r);
}
