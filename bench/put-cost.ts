// Load-independent cost of a put (not a test): `node dist/bench/put-cost.js [options]`.
//
// On a machine shared with other work, req/s and latency say more about the neighbours than
// about the server. This probe measures what does not depend on them, over a fixed number of
// puts driven by bench/loadgen.ts:
//   - server CPU per put (all threads) and, for Concord, its main thread's CPU per put
//     (the thread every request shares: its budget sets the throughput ceiling);
//   - read/write syscalls per put (/proc/PID/io) and context switches per put, all threads
//     (each is a thread that slept and had to be woken: on a loaded machine every one waits
//     for a CPU, so they, more than CPU time, set a single client's latency);
//   - for Concord, from V8's --trace-gc-nvp: bytes allocated per put (heap growth between
//     collections), bytes promoted per put (moved to the old generation by scavenges: what
//     outlives them, the work of the next mark-compact), the bytes a scavenge copies (its
//     survivors, median: what its pause is made of), scavenges and mark-compacts per 1k puts,
//     and the longest GC pause.
// Each target runs `--repeat` times, alternating; medians are printed with etcd's figures.
//
// Options: --requests 20000 --clients 100 --connections 10 --repeat 3 --targets etcd,concord
//          --same-session    servers in this session, not each in its own (bench/server-session.ts)
//          --op put|txn-put|range-l|range-s   the call measured (ranges read one 256-byte key, as bench/main.ts's)
//          --gc-log FILE     append Concord's --trace-gc lines of each measured window to FILE
//          --node-args "--flag ..."  Node flags for Concord (e.g. --cpu-prof --cpu-prof-dir=DIR)
//          --server-args "--flag v ..."  server flags for Concord (e.g. --backend-batch-interval 10ms)
//          --env K=V[,K=V]   extra environment for Concord (e.g. CONCORD_API_THREAD=1)
//          --profile DIR     load bench/profile-window.js into Concord: a CPU profile and an
//                            allocation-sampling heap profile of the measured window, written
//                            to DIR (read them with bench/profile-summary.js; the profilers
//                            cost CPU: read the profiles of such a run, not its CPU figures)
//          --count-async     load bench/async-counts.js into Concord and print, per put, loop
//                            turns, async resources created and callbacks run by type (the
//                            hooks cost CPU: read only the counts of such a run)
// Concord's CPU per put is also printed per thread (threadUsPerPut in the JSON line, keyed
// "comm:tid:u" / ":s" for user and system time; Node 20 names every thread "node": the pool
// threads are the ones whose time is mostly system, fdatasync's).
import { forkGenerator } from './generator-process.js';
import { appendFileSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Server, type TargetName } from '../test/harness.js';
import { serversInOwnSession } from './server-session.js';
import { cpuMs } from './proc-cpu.js';
import type { LoadConfig, LoadResult } from './loadgen.js';
import { benchOp, loadFieldsFor, seedRangeKey } from './range-key.js';
import { parseGcLine, type GcEvent } from './gc-trace.js';
import { parseEnvList } from './env-list.js';

const here = dirname(fileURLToPath(import.meta.url));
function opt(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : dflt;
}
const requests = Number(opt('requests', '20000'));
const clients = Number(opt('clients', '100'));
const connections = Number(opt('connections', '10'));
const repeat = Number(opt('repeat', '3'));
const targets = opt('targets', 'etcd,concord').split(',') as TargetName[];
const gcLog = opt('gc-log', '');
const nodeArgs = opt('node-args', '').split(' ').filter(Boolean);
const serverArgs = opt('server-args', '').split(' ').filter(Boolean);
const countAsync = process.argv.includes('--count-async');
const profileDir = opt('profile', '');
// The profiles are written by the server, which does not make the directory: made here.
if (profileDir) mkdirSync(profileDir, { recursive: true });
const op = benchOp(opt('op', 'put'));
const extraEnv = parseEnvList(opt('env', ''));

function ioCounts(pid: number): { syscr: number; syscw: number } {
  const t = readFileSync(`/proc/${pid}/io`, 'utf8');
  const get = (k: string): number => Number(new RegExp(`^${k}: (\\d+)`, 'm').exec(t)?.[1] ?? NaN);
  return { syscr: get('syscr'), syscw: get('syscw') };
}

/** Context switches of every thread of `pid` (voluntary: a thread slept, e.g. waiting to be woken by another). */
function contextSwitches(pid: number): number {
  let n = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const t = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      n += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(t)?.[1] ?? 0) + Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(t)?.[1] ?? 0);
    } catch { /* thread ended */ }
  }
  return n;
}

/** User and system CPU ms of one thread (utime, stime: 10 ms clock ticks). */
function threadCpuMs(pid: number, tid: number | string): { user: number; sys: number } {
  const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(f[11]) * 10, sys: Number(f[12]) * 10 };
}

/** CPU ms of the main thread only (its task id is the pid). */
function mainThreadCpuMs(pid: number): number {
  const t = threadCpuMs(pid, pid);
  return t.user + t.sys;
}

/** User and system CPU ms of every thread ("main:u", "main:s", "comm:tid:u", ...). */
function cpuMsByThread(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const name = Number(tid) === pid ? 'main' : `${readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim()}:${tid}`;
      const t = threadCpuMs(pid, tid);
      out.set(`${name}:u`, t.user);
      out.set(`${name}:s`, t.sys);
    } catch { /* thread ended */ }
  }
  return out;
}

interface AsyncCounts { loopTurns: number; loopEvents: number; created: Record<string, number>; ran: Record<string, number>; sites?: Record<string, number> }

/** (b - a) / n for every counter, rounded, zeros left out. */
function perRequest(a: AsyncCounts, b: AsyncCounts, n: number): Record<string, number> {
  const out: Record<string, number> = { loopTurns: (b.loopTurns - a.loopTurns) / n, loopEvents: (b.loopEvents - a.loopEvents) / n };
  for (const [kind, k] of [['created', 'created'], ['ran', 'ran'], ['at', 'sites']] as const) {
    for (const [t, v] of Object.entries(b[k] ?? {})) {
      const d = (v - (a[k]?.[t] ?? 0)) / n;
      if (d >= 0.005) out[`${kind}.${t}`] = d;
    }
  }
  for (const k of Object.keys(out)) out[k] = Math.round(out[k]! * 100) / 100;
  return out;
}

const median = (xs: number[]): number => { const v = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b); return v.length ? v[Math.floor((v.length - 1) / 2)]! : NaN; };

interface Run { target: string; puts: number; cpuUsPerPut: number; mainUsPerPut?: number; syscallsPerPut: number; switchesPerPut: number; reqPerS: number; p99Ms: number;
  allocKBPerPut?: number; promotedKBPerPut?: number; copiedKBPerScavenge?: number; scavengesPer1k?: number; marksPer1k?: number; maxGcMs?: number; gcMsPer1k?: number;
  threadUsPerPut?: Record<string, number>; asyncPerPut?: Record<string, number> }

async function once(target: TargetName): Promise<Run> {
  const importArgs = countAsync ? ['--import', new URL('./async-counts.js', import.meta.url).href]
    : profileDir ? ['--import', new URL('./profile-window.js', import.meta.url).href] : [];
  const env = profileDir ? { ...extraEnv, PROFILE_WINDOW_DIR: profileDir } : extraEnv;
  const server = new Server({ target, name: 'putcost', nodeArgs: target === 'concord' ? ['--trace-gc-nvp', ...importArgs, ...nodeArgs] : [],
    extraArgs: target === 'concord' ? serverArgs : [], env: target === 'concord' ? env : {}, ownSession: serversInOwnSession });
  await server.start();
  if (op !== 'put') await seedRangeKey(server);
  const gc: GcEvent[] = [];
  const counts: AsyncCounts[] = [];
  let threads0 = new Map<string, number>(), threads1 = new Map<string, number>();
  let measuring = false;
  let profiled = false;
  let partial = '';
  server.child!.stdout!.on('data', (d: Buffer) => {
    const lines = (partial + d.toString('latin1')).split('\n');
    partial = lines.pop()!;
    for (const l of lines) if (l.startsWith('ASYNC-COUNTS ')) counts.push(JSON.parse(l.slice(13)) as AsyncCounts);
    if (lines.some((l) => l.startsWith('PROFILE-WINDOW '))) profiled = true;
    if (!measuring) return;
    for (const l of lines) { const e = parseGcLine(l); if (e) { gc.push(e); if (gcLog) appendFileSync(gcLog, l + '\n'); } }
  });
  const pid = server.pid!;
  const cfg: LoadConfig = { endpoint: server.endpoint, ...loadFieldsFor(op), clients, connections, valueBytes: 256, keySpace: 100_000,
    warmupMs: 1000, durationMs: 0, totalRequests: requests };
  let cpu0 = 0, main0 = 0, io0 = { syscr: 0, syscw: 0 }, cs0 = 0, cs1 = 0;
  let cpu1 = 0, main1 = 0, io1 = { syscr: 0, syscw: 0 };
  const result = await new Promise<LoadResult>((resolve, reject) => {
    const child = forkGenerator(join(here, 'loadgen.js'), cfg, ['ignore', 'ignore', 'inherit', 'ipc']);
    let res: LoadResult | undefined;
    child.on('message', (m: any) => {
      const probe = target === 'concord';
      if (probe && (countAsync || profileDir) && (m.type === 'window-start' || m.type === 'result')) process.kill(pid, 'SIGUSR2');
      if (probe && m.type === 'window-start') threads0 = cpuMsByThread(pid);
      if (probe && m.type === 'result') threads1 = cpuMsByThread(pid);
      if (m.type === 'window-start') { measuring = true; cpu0 = cpuMs(pid); main0 = target === 'concord' ? mainThreadCpuMs(pid) : 0; io0 = ioCounts(pid); cs0 = contextSwitches(pid); }
      else if (m.type === 'result') { measuring = false; cpu1 = cpuMs(pid); main1 = target === 'concord' ? mainThreadCpuMs(pid) : 0; io1 = ioCounts(pid); cs1 = contextSwitches(pid); res = m.result; }
    });
    child.on('exit', (code) => (res ? resolve(res) : reject(new Error(`loadgen exited ${code}`))));
  });
  const n = result.requests;
  let asyncPerPut: Record<string, number> | undefined;
  if (target === 'concord' && countAsync) {
    for (let i = 0; i < 100 && counts.length < 2; i++) await new Promise((r) => setTimeout(r, 50));
    if (counts.length >= 2) asyncPerPut = perRequest(counts[0]!, counts[1]!, n);
  }
  for (let i = 0; profileDir && !profiled && i < 600; i++) await new Promise((r) => setTimeout(r, 100));
  await server.destroy();
  const run: Run = { target, puts: n, cpuUsPerPut: ((cpu1 - cpu0) * 1000) / n, syscallsPerPut: (io1.syscr - io0.syscr + io1.syscw - io0.syscw) / n, switchesPerPut: (cs1 - cs0) / n,
    reqPerS: result.throughput, p99Ms: result.p99Ms };
  if (target === 'concord') {
    run.mainUsPerPut = ((main1 - main0) * 1000) / n;
    run.threadUsPerPut = Object.fromEntries([...threads1].map(([k, v]) => [k, Math.round(((v - (threads0.get(k) ?? 0)) * 1000) / n)]).filter(([, v]) => v !== 0));
    if (asyncPerPut) run.asyncPerPut = asyncPerPut;
    let allocMB = 0;
    for (let i = 1; i < gc.length; i++) allocMB += Math.max(0, gc[i]!.beforeMB - gc[i - 1]!.afterMB);
    run.allocKBPerPut = gc.length > 1 ? (allocMB * 1024) / n : NaN;
    const scavenges = gc.filter((g) => g.kind === 'scavenge');
    run.promotedKBPerPut = scavenges.reduce((a, g) => a + (g.promotedBytes ?? NaN), 0) / 1024 / n;
    run.copiedKBPerScavenge = median(scavenges.map((g) => ((g.promotedBytes ?? NaN) + (g.survivedBytes ?? NaN)) / 1024));
    run.scavengesPer1k = (gc.filter((g) => g.kind === 'scavenge').length * 1000) / n;
    run.marksPer1k = (gc.filter((g) => g.kind === 'mark').length * 1000) / n;
    run.maxGcMs = Math.max(0, ...gc.map((g) => g.pauseMs));
    run.gcMsPer1k = (gc.reduce((a, g) => a + g.pauseMs, 0) * 1000) / n;
  }
  return run;
}

const runs: Run[] = [];
for (let r = 0; r < repeat; r++) {
  for (const t of targets) {
    const run = await once(t);
    runs.push(run);
    process.stderr.write(`${JSON.stringify(run)}\n`);
  }
}
const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const cols: Array<[string, keyof Run, number]> = [['CPU us/put', 'cpuUsPerPut', 1], ['main us/put', 'mainUsPerPut', 1], ['syscalls/put', 'syscallsPerPut', 2], ['ctx sw/put', 'switchesPerPut', 2],
  ['alloc KB/put', 'allocKBPerPut', 2], ['promo KB/put', 'promotedKBPerPut', 2], ['scav copy KB', 'copiedKBPerScavenge', 0], ['scav/1k', 'scavengesPer1k', 2], ['mark/1k', 'marksPer1k', 2], ['GC ms/1k', 'gcMsPer1k', 1], ['max GC ms', 'maxGcMs', 1],
  ['req/s', 'reqPerS', 0], ['p99 ms', 'p99Ms', 1]];
console.log(`put-cost: ${requests} ${op === 'put' ? 'puts' : `${op} calls (per-put columns are per call)`}, ${clients} clients / ${connections} conns, ${repeat} reps, medians; load ${load}${Object.keys(extraEnv).length ? `; concord env ${opt('env', '')}` : ''}`);
console.log(['target', ...cols.map((c) => c[0])].join('\t'));
for (const t of targets) {
  const rs = runs.filter((x) => x.target === t);
  console.log([t, ...cols.map(([, k, d]) => { const v = median(rs.map((x) => (x[k] as number | undefined) ?? NaN)); return Number.isNaN(v) ? '-' : v.toFixed(d); })].join('\t'));
}
