// Where `etcdctl check perf` loses its writes (not a test): `node dist/bench/check-perf.js`.
//
// check perf (etcdctl's ctl check.go) feeds a rate limiter (burst 1) into a channel its clients
// drain, and divides the puts that succeeded by the wall time from start to the last answer. A
// limiter whose goroutine wakes more than one interval late loses the tokens of the lateness, so
// a busy machine (three members and etcdctl on the same cores) costs throughput even when every
// put is fast; and once 400 puts are outstanding (200 clients busy, 200 queued) the limiter
// blocks and loses tokens too. This probe starts a 3-member cluster per target, runs check perf
// on it, and prints one line per second: puts applied (the leader's revision, by Status), CPU
// ms of each member (main thread + the rest) and of etcdctl, and the machine's load; then a
// JSON summary:
//   puts, tokenEfficiency   puts the run added, over the limiter's tokens (limit × 60 s)
//   cpuMsPerPut             each member, its main thread, etcdctl, all together: the cost that
//                           competes with etcdctl's limiter for the cores
//   walFsyncMs, fsyncsPerPut  mean WAL fsync and fsyncs per put (/metrics)
//   syscallsPerPut, switchesPerPut  read/write syscalls and context switches per put
//                           (leader, followers, etcdctl); threadsMsPerPut the busiest threads
//   faultsPerPut            minor page faults per put (leader, followers): a first touch of
//                           fresh memory costs ~20 us of CPU on this VM
// The CPU window ends at the last second that added puts: the final `del --prefix` is no put.
// Targets run one after the other (`--targets concord,etcd`), each `--repeat` times, alternating.
// `--ab-env K=V[,K=V]` instead runs two Concord clusters at the same time, the second with that
// extra environment (a variant behind an environment switch), `--repeat` times: on a machine
// other work loads unevenly, runs minutes apart differ more than the variants do, while two
// runs side by side meet the same load (each is load for the other too, symmetrically).
//
// Options: --targets etcd,concord  --load m  --repeat 1  --quiet (no per-second lines)
//          --node-args "--cpu-prof --cpu-prof-dir=DIR"  Node flags for Concord's members
//          --env K=V[,K=V]  extra environment for the members
//          --ab-env K=V[,K=V]  A/B side by side: plain Concord and Concord with this environment
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { startCluster, type Cluster } from '../test/cluster-harness.js';
import type { TargetName } from '../test/harness.js';
import { StatusRequest, StatusResponse } from '../src/proto/gen/etcdserverpb/rpc.js';
import { parseEnvList } from './env-list.js';

function opt(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : dflt;
}
const targets = opt('targets', 'etcd,concord').split(',') as TargetName[];
const load = opt('load', 'm');
const repeat = Number(opt('repeat', '1'));
const quiet = process.argv.includes('--quiet');
const nodeArgs = opt('node-args', '').split(' ').filter(Boolean);
const extraEnv = parseEnvList(opt('env', ''));
const abEnv = parseEnvList(opt('ab-env', ''));
const limits: Record<string, number> = { s: 150, m: 1000, l: 8000, xl: 15000 };

/** CPU ms of a process's main thread (tid = pid) and of all its other threads, from /proc. */
function threadSplit(pid: number): { main: number; other: number; threads: Map<string, number> } {
  let main = 0;
  let other = 0;
  const threads = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const s = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      const ms = (Number(f[11]) + Number(f[12])) * 10;
      const comm = s.slice(s.indexOf('(') + 1, s.lastIndexOf(')'));
      threads.set(`${comm}:${tid}`, ms);
      if (Number(tid) === pid) main += ms;
      else other += ms;
    } catch { /* the thread ended */ }
  }
  return { main, other, threads };
}

/** Context switches of every thread of a process so far (voluntary and not). */
function switches(pid: number): number {
  let n = 0;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const t = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
        n += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(t)?.[1] ?? 0) + Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(t)?.[1] ?? 0);
      } catch { /* the thread ended */ }
    }
  } catch { return NaN; }
  return n;
}

/** Read and write syscalls of a process so far (/proc/PID/io: syscr, syscw). */
function syscalls(pid: number): { r: number; w: number } {
  try {
    const t = readFileSync(`/proc/${pid}/io`, 'utf8');
    return { r: Number(/^syscr: (\d+)/m.exec(t)?.[1]), w: Number(/^syscw: (\d+)/m.exec(t)?.[1]) };
  } catch { return { r: NaN, w: NaN }; }
}

/** The busiest threads of one member over a window, CPU ms per put each (name:tid). */
function busiestThreads(a: Map<string, number>, b: Map<string, number>, puts: number): Record<string, number> {
  const d = [...b].map(([k, v]) => [k, (v - (a.get(k) ?? 0)) / puts] as const).filter(([, v]) => v >= 0.005);
  return Object.fromEntries(d.sort((x, y) => y[1] - x[1]).slice(0, 8).map(([k, v]) => [k, +v.toFixed(3)]));
}

/** Minor page faults of a process so far (/proc/PID/stat): first touches of fresh memory cost ~20 us each on this VM. */
function pageFaults(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[7]);
  } catch { return NaN; }
}

function processCpuMs(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch { return NaN; }
}

interface Scrape { revision: number; fsyncSum: number; fsyncCount: number }

async function scrape(endpoint: string): Promise<Scrape> {
  const text = await (await fetch(`${endpoint}/metrics`)).text();
  const num = (re: RegExp): number => Number(re.exec(text)?.[1] ?? NaN);
  return {
    revision: num(/^etcd_debugging_mvcc_current_revision ([\d.e+]+)/m),
    fsyncSum: num(/^etcd_disk_wal_fsync_duration_seconds_sum ([\d.e+-]+)/m),
    fsyncCount: num(/^etcd_disk_wal_fsync_duration_seconds_count ([\d.e+]+)/m),
  };
}

interface RunResult { target: TargetName; verdict: string; puts: number; wallS: number; cpuPerPut: number[]; mainPerPut: number[]; ctlPerPut: number; pids: number[]; threads: Record<string, number>[]; syscallsPerPut: Array<{ r: number; w: number }>; switchesPerPut: number[]; faultsPerPut: number[]; fsyncMs: number[]; fsyncsPerPut: number[] }

async function runOnce(target: TargetName, env: Record<string, string> = extraEnv): Promise<RunResult> {
  const c: Cluster = await startCluster({ target, size: 3, ...(nodeArgs.length ? { nodeArgs } : {}), env });
  try {
    const l = await c.waitForLeader();
    const order = [l, ...c.members.map((_, i) => i).filter((i) => i !== l)];
    const eps = order.map((i) => c.endpoint(i));
    const pids = order.map((i) => c.member(i).pid!);
    const before = await Promise.all(eps.map(scrape));
    const cpu0 = pids.map(threadSplit);
    const io0 = pids.map(syscalls);
    const sw0 = pids.map(switches);
    const pf0 = pids.map(pageFaults);
    const t0 = Date.now();
    const ctl = spawn('etcdctl', ['--endpoints', eps.join(','), 'check', 'perf', `--load=${load}`], { env: { ...process.env, ETCDCTL_API: '3' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    ctl.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
    ctl.stderr.setEncoding('utf8').on('data', (d: string) => { out += d; });
    const ctlPid = ctl.pid!;
    const leader = c.member(l);
    const revision = async (): Promise<number> => Number((await leader.rpc.unary('/etcdserverpb.Maintenance/Status', StatusRequest, StatusResponse, {}, 2000)).header?.revision ?? NaN);
    const rev0 = await revision();
    let ctlCpu = 0;
    // The window ends at the last second that added puts: the final `del --prefix` is not a put.
    let last = { rev: rev0, cpu: cpu0, ctl: 0, at: t0, io: [...io0, { r: 0, w: 0 }], sw: [...sw0, 0], pf: pf0 };
    let windowEnd = last;
    const timer = setInterval(() => {
      void (async () => {
        const rev = await revision().catch(() => NaN);
        const cpu = pids.map(threadSplit);
        const io = [...pids, ctlPid].map(syscalls);
        const sw = [...pids, ctlPid].map(switches);
        const pf = pids.map(pageFaults);
        const ctlNow = processCpuMs(ctlPid);
        if (!Number.isNaN(ctlNow)) ctlCpu = ctlNow;
        if (Number.isNaN(rev)) return;
        const now = { rev, cpu, ctl: ctlCpu, at: Date.now(), io, sw, pf };
        if (!quiet) {
          const parts = cpu.map((x, i) => `${i === 0 ? 'L' : 'F'} ${String(x.main - last.cpu[i]!.main).padStart(4)}+${String(x.other - last.cpu[i]!.other).padStart(3)}`);
          process.stderr.write(`${String(Math.round((now.at - t0) / 1000)).padStart(3)}s ${String(rev - last.rev).padStart(5)} puts | ${parts.join(' | ')} | ctl ${String(ctlCpu - last.ctl).padStart(4)} | load ${loadavg()[0]!.toFixed(1)}\n`);
        }
        if (rev - last.rev > 1) windowEnd = now;
        last = now;
      })();
    }, 1000);
    const code = await new Promise<number | null>((res) => ctl.on('close', res));
    clearInterval(timer);
    const wallS = (Date.now() - t0) / 1000;
    const after = await Promise.all(eps.map(scrape));
    const puts = after[0]!.revision - before[0]!.revision - 1; // less the final delete
    const windowPuts = windowEnd.rev - rev0;
    const last0io = [...io0, { r: 0, w: 0 }];
    const cpu1 = windowEnd.cpu;
    const verdict = out.replace(/\r/g, '\n').split('\n').map((x) => x.trim()).filter((x) => /^(PASS|FAIL|Slowest|Stddev)/.test(x)).join('; ') || `exit ${code}: ${out.trim().slice(-200)}`;
    return {
      target, verdict, puts, wallS,
      cpuPerPut: cpu1.map((x, i) => (x.main + x.other - cpu0[i]!.main - cpu0[i]!.other) / windowPuts),
      mainPerPut: cpu1.map((x, i) => (x.main - cpu0[i]!.main) / windowPuts),
      ctlPerPut: windowEnd.ctl / windowPuts, pids,
      syscallsPerPut: windowEnd.io.map((x, i) => ({ r: +((x.r - last0io[i]!.r) / windowPuts).toFixed(2), w: +((x.w - last0io[i]!.w) / windowPuts).toFixed(2) })),
      switchesPerPut: windowEnd.sw.map((x, i) => +((x - ([...sw0, 0][i] ?? 0)) / windowPuts).toFixed(2)),
      faultsPerPut: windowEnd.pf.map((x, i) => +((x - pf0[i]!) / windowPuts).toFixed(2)),
      threads: cpu1.map((x, i) => busiestThreads(cpu0[i]!.threads, x.threads, windowPuts)),
      fsyncMs: after.map((a, i) => ((a.fsyncSum - before[i]!.fsyncSum) / Math.max(1, a.fsyncCount - before[i]!.fsyncCount)) * 1000),
      fsyncsPerPut: after.map((a, i) => (a.fsyncCount - before[i]!.fsyncCount) / puts),
    };
  } finally {
    await c.destroy();
  }
}

function report(res: RunResult, variant?: string): void {
  const tokens = (limits[load] ?? 1) * 60;
  console.log(JSON.stringify({
    target: res.target, ...(variant !== undefined ? { variant } : {}), verdict: res.verdict, puts: res.puts, tokenEfficiency: +(res.puts / tokens).toFixed(3), wallS: +res.wallS.toFixed(1),
    pids: res.pids, cpuMsPerPut: { leader: +res.cpuPerPut[0]!.toFixed(3), followers: res.cpuPerPut.slice(1).map((x) => +x.toFixed(3)), mainThreads: res.mainPerPut.map((x) => +x.toFixed(3)), etcdctl: +res.ctlPerPut.toFixed(3), all: +(res.cpuPerPut.reduce((a, b) => a + b, 0) + res.ctlPerPut).toFixed(3) },
    walFsyncMs: res.fsyncMs.map((x) => +x.toFixed(2)), fsyncsPerPut: res.fsyncsPerPut.map((x) => +x.toFixed(3)),
    loadAfter: +loadavg()[0]!.toFixed(1),
    syscallsPerPut: res.syscallsPerPut, // leader, followers, etcdctl
    switchesPerPut: res.switchesPerPut,
    faultsPerPut: res.faultsPerPut, // leader, followers: minor page faults
    threadsMsPerPut: res.threads,
  }));
}

if (Object.keys(abEnv).length > 0) {
  const variant = Object.entries(abEnv).map(([k, v]) => `${k}=${v}`).join(',');
  for (let r = 0; r < repeat; r++) {
    process.stderr.write(`concord and concord with ${variant} side by side: etcdctl check perf --load=${load} (load ${loadavg()[0]!.toFixed(1)})\n`);
    const [a, b] = await Promise.all([runOnce('concord'), runOnce('concord', { ...extraEnv, ...abEnv })]);
    report(a!, 'plain');
    report(b!, variant);
  }
} else {
  for (let r = 0; r < repeat; r++) {
    for (const t of r % 2 === 0 ? targets : [...targets].reverse()) {
      process.stderr.write(`${t}: etcdctl check perf --load=${load} on 3 members (load ${loadavg()[0]!.toFixed(1)})\n`);
      report(await runOnce(t));
    }
  }
}
