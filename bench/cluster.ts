// The 3-member benchmark (`npm run bench:cluster`): a 3-member etcd and a 3-member Concord on
// loopback, started together (test/cluster-harness.ts), driven by the same load generator
// (bench/loadgen.ts) with its connections spread over the members, leader first:
//   put-1     Put, 1 client (to the leader)
//   put-100   Put, 100 clients over 10 connections (spread over all members)
//   range-l   Range (linearizable) of one key, 100 clients over 10 connections
//   range-s   Range (serializable) of one key, 100 clients over 10 connections
// then real etcdctl `check perf --load=s` and `--load=m` against each cluster (its own
// PASS/FAIL verdict and throughput). Prints one table with the Concord/etcd ratios, and the
// CPU each member spent per request over the measured window (from /proc: a cost that holds
// up on a loaded machine, where rates do not), leader and followers apart.
//
// Options (flags or env):
//   --targets etcd,concord   BENCH_TARGETS
//   --scenarios put-1,put-100,range-l,range-s,perf-s,perf-m   BENCH_CLUSTER_SCENARIOS
//   --duration 5 --warmup 1  BENCH_DURATION_S, BENCH_WARMUP_S
//   --repeat N               every load scenario N times, alternating the order (medians)
import { forkGenerator } from './generator-process.js';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { startCluster, type Cluster } from '../test/cluster-harness.js';
import { etcdctl } from '../test/harness.js';
import type { LoadConfig, LoadResult } from './loadgen.js';
import { cpuMs } from './proc-cpu.js';
import { rangeKey } from './range-key.js';

const here = dirname(fileURLToPath(import.meta.url));

function opt(name: string, env: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && process.argv[i + 1] !== undefined) return process.argv[i + 1]!;
  return process.env[env] ?? def;
}

type Target = 'etcd' | 'concord';
const targets = opt('targets', 'BENCH_TARGETS', 'etcd,concord').split(',').map((s) => s.trim()).filter(Boolean) as Target[];
const scenarioNames = opt('scenarios', 'BENCH_CLUSTER_SCENARIOS', 'put-1,put-100,range-l,range-s,perf-s,perf-m').split(',').map((s) => s.trim());
const durationS = Number(opt('duration', 'BENCH_DURATION_S', '5'));
const warmupS = Number(opt('warmup', 'BENCH_WARMUP_S', '1'));
const repeat = Math.max(1, Number(opt('repeat', 'BENCH_REPEAT', '1')));

interface LoadScenario { name: string; title: string; op: 'put' | 'range'; clients: number; connections: number; serializable: boolean }
const loadScenarios: LoadScenario[] = [
  { name: 'put-1', title: 'put, 1 client', op: 'put', clients: 1, connections: 1, serializable: false },
  { name: 'put-100', title: 'put, 100 clients/10 conns', op: 'put', clients: 100, connections: 10, serializable: false },
  { name: 'range-l', title: 'range linearizable, 100 clients', op: 'range', clients: 100, connections: 10, serializable: false },
  { name: 'range-s', title: 'range serializable, 100 clients', op: 'range', clients: 100, connections: 10, serializable: true },
];
const perfLoads = ['s', 'm', 'l'].map((l) => ({ name: `perf-${l}`, load: l }));

interface Row { target: Target; scenario: string; throughput?: number; p50Ms?: number; p99Ms?: number; cpu?: CpuPerRequest; note?: string }
/** CPU ms per request over the measured window: the leader's and the followers' mean. */
interface CpuPerRequest { leaderMs: number; followerMs: number }
const rows: Row[] = [];

/** Client URLs and member pids with the leader first (so put-1 and connection 0 go to the leader). */
async function leaderFirst(c: Cluster): Promise<{ endpoints: string[]; pids: number[] }> {
  const l = await c.waitForLeader();
  const order = [l, ...c.members.map((_, i) => i).filter((i) => i !== l)];
  return { endpoints: order.map((i) => c.endpoint(i)), pids: order.map((i) => c.member(i).pid!) };
}

function runLoad(endpoints: string[], pids: number[], sc: LoadScenario, label: string): Promise<LoadResult & { cpu: CpuPerRequest }> {
  return new Promise((resolve, reject) => {
    const cfg: LoadConfig = {
      endpoint: endpoints[0]!, endpoints, op: sc.op, clients: sc.clients, connections: sc.connections,
      valueBytes: 256, keySpace: 100_000, rangeKey, serializable: sc.serializable,
      warmupMs: warmupS * 1000, durationMs: durationS * 1000, totalRequests: 0,
    };
    const child = forkGenerator(join(here, 'loadgen.js'), cfg, ['ignore', 'inherit', 'inherit', 'ipc']);
    let result: (LoadResult & { cpu: CpuPerRequest }) | null = null;
    let cpu0: number[] = [];
    child.on('message', (m: { type: string; result?: LoadResult; phase?: string; requests?: number }) => {
      if (m.type === 'progress') process.stderr.write(`\r  ${label.padEnd(48)} ${m.phase} ${m.requests} req   `);
      if (m.type === 'window-start') cpu0 = pids.map(cpuMs);
      if (m.type === 'result') {
        const perReq = pids.map((p, i) => (cpuMs(p) - (cpu0[i] ?? 0)) / Math.max(1, m.result!.requests));
        const followers = perReq.slice(1);
        result = { ...m.result!, cpu: { leaderMs: perReq[0]!, followerMs: followers.reduce((a, x) => a + x, 0) / Math.max(1, followers.length) } };
      }
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      process.stderr.write('\n');
      if (result) resolve(result);
      else reject(new Error(`load generator exited with ${code}`));
    });
  });
}

/** etcdctl check perf: its verdict lines and the throughput it reports. */
async function checkPerf(endpoints: string[], load: string): Promise<Row['note'] & string> {
  const r = await etcdctl(endpoints.join(','), ['check', 'perf', `--load=${load}`], { timeoutMs: 300_000 });
  const text = (r.stdout + r.stderr).replace(/\r/g, '\n');
  // etcdctl prints a failed latency check without a PASS/FAIL prefix ("Slowest request took
  // too long: ...", "Stddev too high: ..."): keep those lines too.
  const verdicts = text.split('\n').map((l) => l.trim()).filter((l) => /^(PASS|FAIL|Slowest request|Stddev)/.test(l));
  return verdicts.length > 0 ? verdicts.join('; ') : `exit ${r.code}: ${text.trim().split('\n').slice(-2).join(' ')}`;
}

function throughputOf(note: string): number | undefined {
  const m = /Throughput (?:is|too low:) (\d+) writes\/s/.exec(note);
  return m ? Number(m[1]) : undefined;
}

async function seed(endpoints: string[]): Promise<void> {
  const r = await etcdctl(endpoints[0]!, ['put', rangeKey, 'b'.repeat(256)]);
  if (r.code !== 0) throw new Error(`seeding put failed: ${r.stderr}`);
}

const median = (xs: number[]): number => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
};

function table(): string {
  const fmt = (n: number | undefined, d = 0) => (n === undefined || Number.isNaN(n) ? '-' : n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }));
  const lines: string[][] = [['scenario', 'target', 'req/s', 'p50 ms', 'p99 ms', 'CPU ms/req leader', 'follower', 'notes']];
  for (const name of scenarioNames) {
    const sum = (t: Target): Row | undefined => {
      const rs = rows.filter((r) => r.target === t && r.scenario === name);
      if (rs.length === 0) return undefined;
      const num = (f: (r: Row) => number | undefined) => {
        const xs = rs.map(f).filter((x): x is number => x !== undefined);
        return xs.length ? median(xs) : undefined;
      };
      const leaderMs = num((r) => r.cpu?.leaderMs);
      const followerMs = num((r) => r.cpu?.followerMs);
      const cpu = leaderMs !== undefined && followerMs !== undefined ? { leaderMs, followerMs } : undefined;
      return { target: t, scenario: name, throughput: num((r) => r.throughput), p50Ms: num((r) => r.p50Ms), p99Ms: num((r) => r.p99Ms), ...(cpu ? { cpu } : {}), note: rs.map((r) => r.note).filter(Boolean).join(' | ') };
    };
    for (const t of targets) {
      const r = sum(t);
      lines.push([name, t, fmt(r?.throughput), fmt(r?.p50Ms, 2), fmt(r?.p99Ms, 2), fmt(r?.cpu?.leaderMs, 2), fmt(r?.cpu?.followerMs, 2), r?.note ?? '']);
    }
    const e = sum('etcd');
    const c = sum('concord');
    if (e?.throughput && c?.throughput) {
      const ratio = (a?: number, b?: number) => (a !== undefined && b ? `${(a / b).toFixed(2)}x` : '');
      lines.push([name, 'concord/etcd', ratio(c.throughput, e.throughput), ratio(c.p50Ms, e.p50Ms), ratio(c.p99Ms, e.p99Ms), ratio(c.cpu?.leaderMs, e.cpu?.leaderMs), ratio(c.cpu?.followerMs, e.cpu?.followerMs), '']);
    }
  }
  const widths = lines[0]!.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  return lines.map((l) => '| ' + l.map((c, i) => (i >= 2 && i <= 6 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ') + ' |').join('\n');
}

const clusters = new Map<Target, Cluster>();
try {
  // Both clusters up at once; scenarios alternate between them so machine noise hits both alike.
  for (const t of targets) {
    process.stderr.write(`starting a 3-member ${t} cluster...\n`);
    const c = await startCluster({ target: t, size: 3 });
    clusters.set(t, c);
    await seed(c.endpoints());
  }
  for (let rep = 0; rep < repeat; rep++) {
    for (const name of scenarioNames) {
      const order = rep % 2 === 0 ? targets : [...targets].reverse();
      for (const t of order) {
        const c = clusters.get(t)!;
        const { endpoints: eps, pids } = await leaderFirst(c);
        const sc = loadScenarios.find((s) => s.name === name);
        const perf = perfLoads.find((p) => p.name === name);
        try {
          if (sc) {
            const r = await runLoad(eps, pids, sc, `${t}: ${sc.title}`);
            rows.push({ target: t, scenario: name, throughput: r.throughput, p50Ms: r.p50Ms, p99Ms: r.p99Ms, cpu: r.cpu, ...(r.errors ? { note: `${r.errors} errors, first: ${r.firstError}` } : {}) });
          } else if (perf && rep === 0) {
            process.stderr.write(`  ${t}: etcdctl check perf --load=${perf.load} (about a minute)\n`);
            const note = await checkPerf(eps, perf.load);
            rows.push({ target: t, scenario: name, throughput: throughputOf(note), note });
          } else if (!perf) {
            throw new Error(`unknown scenario ${name}`);
          }
        } catch (e) {
          rows.push({ target: t, scenario: name, note: String((e as Error).message).slice(0, 120) });
        }
      }
    }
  }
} finally {
  for (const c of clusters.values()) await c.destroy();
}
console.log(table());
console.log(`3 members each on loopback; load generator connections spread over the members, leader first. Medians of ${repeat} run(s). The machine is shared: compare ratios from the same run. CPU ms/req from /proc (utime+stime of each member over the measured window / requests; follower = mean of the two).`);
