// What an idle member costs (`node dist/bench/idle.js`): a single member and each member of a
// 3-member cluster, etcd and Concord started in the same run, left alone, then measured over
// one window from outside the process:
//   CPU ms/s       utime+stime of all threads (/proc/PID/stat)
//   ctxsw/s        voluntary + involuntary context switches of all threads (/proc/PID/task/*/status)
//   alloc KB/s     Concord only: bytes V8 allocated, from --trace-gc (the young generation's
//                  size before each scavenge minus its size after the previous one)
// With --rate N, a single client also puts N times a second during the window, and the table
// gains CPU ms per put. CPU and switch counts hold up on a loaded machine better than rates do;
// still, run it twice and say what the load average was.
//
// Options: --targets etcd,concord  --shapes single,cluster  --settle 5  --window 20  --rate 0
import { readFileSync, readdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { EtcdClient, startServer, type Server } from '../test/harness.js';
import { startCluster, type Cluster } from '../test/cluster-harness.js';
import { cpuMs } from './proc-cpu.js';

function opt(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
}
type Target = 'etcd' | 'concord';
const targets = opt('targets', 'etcd,concord').split(',') as Target[];
const shapes = opt('shapes', 'single,cluster').split(',');
const settleMs = Number(opt('settle', '5')) * 1000;
const windowMs = Number(opt('window', '20')) * 1000;
const ratePerS = Number(opt('rate', '0'));

/** Context switches of every thread of `pid` so far. */
function contextSwitches(pid: number): number {
  let n = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const s = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      for (const m of s.matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)/gm)) n += Number(m[1]);
    } catch { /* the thread ended meanwhile */ }
  }
  return n;
}

/** One --trace-gc scavenge line: ms since start, young+old MB before and after. */
interface GcLine { ms: number; beforeMb: number; afterMb: number }
function gcLines(log: string): GcLine[] {
  const out: GcLine[] = [];
  for (const m of log.matchAll(/\s(\d+) ms: (?:Scavenge|Mark-Compact|Mark-sweep|Minor Mark-Compact)[^\d]*([\d.]+) \([\d.]+\) -> ([\d.]+) \(/g)) {
    out.push({ ms: Number(m[1]), beforeMb: Number(m[2]), afterMb: Number(m[3]) });
  }
  return out;
}

/** Allocated KB/s between the GCs that fell in the window (undefined with fewer than two). */
function allocKBps(lines: GcLine[], fromIdx: number): number | undefined {
  const w = lines.slice(Math.max(0, fromIdx - 1));
  if (w.length < 2) return undefined;
  let mb = 0;
  for (let i = 1; i < w.length; i++) mb += w[i]!.beforeMb - w[i - 1]!.afterMb;
  return (mb * 1024) / ((w[w.length - 1]!.ms - w[0]!.ms) / 1000);
}

interface Row { target: Target; shape: string; member: string; cpuMsPerS: number; ctxPerS: number; allocKBps?: number; cpuMsPerPut?: number }
const rows: Row[] = [];

async function measure(target: Target, shape: string, servers: Server[], endpoint: string): Promise<void> {
  await new Promise((r) => setTimeout(r, settleMs));
  const pids = servers.map((s) => s.pid!);
  const cpu0 = pids.map(cpuMs);
  const ctx0 = pids.map(contextSwitches);
  const gc0 = servers.map((s) => gcLines(s.log).length);
  const t0 = performance.now();
  let puts = 0;
  if (ratePerS > 0) {
    const c = new EtcdClient(endpoint);
    const interval = 1000 / ratePerS;
    while (performance.now() - t0 < windowMs) {
      await c.put({ key: Buffer.from(`idle/${puts % 100}`), value: Buffer.alloc(256, 'x') });
      puts++;
      const next = t0 + puts * interval;
      await new Promise((r) => setTimeout(r, Math.max(0, next - performance.now())));
    }
    c.close();
  } else {
    await new Promise((r) => setTimeout(r, windowMs));
  }
  const s = (performance.now() - t0) / 1000;
  servers.forEach((srv, i) => {
    const cpu = cpuMs(pids[i]!) - cpu0[i]!;
    const row: Row = {
      target, shape, member: srv.name, cpuMsPerS: cpu / s, ctxPerS: (contextSwitches(pids[i]!) - ctx0[i]!) / s,
    };
    if (target === 'concord') row.allocKBps = allocKBps(gcLines(srv.log), gc0[i]!);
    if (puts > 0) row.cpuMsPerPut = cpu / puts;
    rows.push(row);
  });
}

const nodeArgs = ['--trace-gc'];
console.error(`load average at start: ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
for (const shape of shapes) {
  for (const target of targets) {
    process.stderr.write(`${target} ${shape}...\n`);
    if (shape === 'single') {
      const s = await startServer({ target, nodeArgs });
      try { await measure(target, shape, [s], s.endpoint); } finally { await s.destroy(); }
    } else {
      const c: Cluster = await startCluster({ target, size: 3, nodeArgs });
      try {
        const l = await c.waitForLeader();
        const order = [l, ...c.members.map((_, i) => i).filter((i) => i !== l)];
        await measure(target, shape, order.map((i) => c.member(i)), c.endpoint(l));
      } finally { await c.destroy(); }
    }
  }
}
console.error(`load average at end: ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
const f = (x: number | undefined, d = 1) => (x === undefined ? '-' : x.toFixed(d));
console.log(`window ${windowMs / 1000} s after ${settleMs / 1000} s settle${ratePerS ? `, 1 client putting ${ratePerS}/s` : ', idle'}; cluster rows: leader first`);
console.log('| target | shape | member | CPU ms/s | ctxsw/s | alloc KB/s |' + (ratePerS ? ' CPU ms/put |' : ''));
console.log('|---|---|---|---|---|---|' + (ratePerS ? '---|' : ''));
for (const r of rows) {
  console.log(`| ${r.target} | ${r.shape} | ${r.member} | ${f(r.cpuMsPerS)} | ${f(r.ctxPerS, 0)} | ${f(r.allocKBps, 0)} |` + (ratePerS ? ` ${f(r.cpuMsPerPut, 2)} |` : ''));
}
