// The benchmark program (`npm run bench`, i.e. `node dist/bench/main.js` after a build).
// Starts real etcd and Concord the same way (one member, temp data dir, free loopback ports)
// and drives each with the same load generator (bench/loadgen.ts, a separate process speaking
// gRPC over raw node:http2), scenario by scenario:
//   put-1     Put, 1 client, 1 connection, 256-byte values, random keys
//   put-100   Put, 100 clients over 10 connections, 256-byte values, random keys
//   range-l   Range (linearizable) of one key, 100 clients over 10 connections
//   range-s   Range (serializable) of one key, 100 clients over 10 connections
// Prints req/s, p50/p99 latency, the generator's and the server's CPU per target, and the
// Concord/etcd ratios in a table.
//
// Options (flags or env):
//   --targets etcd,concord       BENCH_TARGETS
//   --scenarios put-1,put-100,range-l,range-s   BENCH_SCENARIOS
//   --duration 5   (seconds measured per scenario)   BENCH_DURATION_S
//   --warmup 1     (seconds before measuring)        BENCH_WARMUP_S
//   --requests N   (measure N requests instead of a duration)  BENCH_REQUESTS
//   --clients 100 --connections 10 --value-bytes 256 --key-space 100000
//   --json FILE    also write the raw results as JSON

import { fork } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { Server } from '../test/harness.js';
import type { LoadConfig, LoadResult } from './loadgen.js';

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
const scenarioNames = opt('scenarios', 'BENCH_SCENARIOS', 'put-1,put-100,range-l,range-s').split(',').map((s) => s.trim());
const durationS = Number(opt('duration', 'BENCH_DURATION_S', '5'));
const warmupS = Number(opt('warmup', 'BENCH_WARMUP_S', '1'));
const requests = Number(opt('requests', 'BENCH_REQUESTS', '0'));
const clients = Number(opt('clients', 'BENCH_CLIENTS', '100'));
const connections = Number(opt('connections', 'BENCH_CONNECTIONS', '10'));
const valueBytes = Number(opt('value-bytes', 'BENCH_VALUE_BYTES', '256'));
const keySpace = Number(opt('key-space', 'BENCH_KEY_SPACE', '100000'));
const jsonOut = opt('json', 'BENCH_JSON', '');

interface Scenario { name: string; title: string; op: 'put' | 'range'; clients: number; connections: number; serializable: boolean }
const ALL: Scenario[] = [
  { name: 'put-1', title: 'put, 1 client', op: 'put', clients: 1, connections: 1, serializable: false },
  { name: 'put-100', title: `put, ${clients} clients/${connections} conns`, op: 'put', clients, connections, serializable: false },
  { name: 'range-l', title: `range linearizable, ${clients} clients`, op: 'range', clients, connections, serializable: false },
  { name: 'range-s', title: `range serializable, ${clients} clients`, op: 'range', clients, connections, serializable: true },
];
const scenarios = scenarioNames.map((n) => {
  const s = ALL.find((x) => x.name === n);
  if (!s) { console.error(`unknown scenario ${n}; known: ${ALL.map((x) => x.name).join(', ')}`); process.exit(2); }
  return s;
});

interface Row { target: string; scenario: string; result?: LoadResult; serverCpuPct?: number; genCpuPct?: number; error?: string }
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

function runLoad(server: Server, sc: Scenario, label: string): Promise<{ result: LoadResult; serverCpuMs: number; wallMs: number }> {
  return new Promise((resolve, reject) => {
    const cfg: LoadConfig = {
      endpoint: server.endpoint, op: sc.op, clients: sc.clients, connections: sc.connections,
      valueBytes, keySpace, rangeKey: 'bench/range-key', serializable: sc.serializable,
      warmupMs: warmupS * 1000, durationMs: requests > 0 ? 0 : durationS * 1000, totalRequests: requests,
    };
    const child = fork(join(here, 'loadgen.js'), [JSON.stringify(cfg)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let cpu0 = 0;
    let t0 = 0;
    let result: LoadResult | null = null;
    let serverCpuMs = 0;
    let wallMs = 0;
    child.on('message', (m: any) => {
      if (m.type === 'window-start') { cpu0 = treeCpuMs(server.pid!); t0 = performance.now(); }
      else if (m.type === 'progress') {
        const rate = m.phase === 'measure' && m.elapsedMs > 0 ? Math.round(m.requests / (m.elapsedMs / 1000)) : 0;
        process.stderr.write(`\r  ${label.padEnd(44)} ${m.phase.padEnd(7)} ${(m.elapsedMs / 1000).toFixed(1).padStart(5)}s ${String(m.requests).padStart(8)} req ${String(rate).padStart(7)} req/s${m.errors ? ` ${m.errors} errors` : ''}   `);
      } else if (m.type === 'result') {
        serverCpuMs = treeCpuMs(server.pid!) - cpu0;
        wallMs = performance.now() - t0;
        result = m.result;
      }
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      process.stderr.write('\n');
      if (result) resolve({ result, serverCpuMs, wallMs });
      else reject(new Error(`load generator exited with ${code}`));
    });
  });
}

async function benchTarget(target: 'etcd' | 'concord'): Promise<void> {
  const server = new Server({ target, name: 'bench' });
  process.stderr.write(`starting ${target}...\n`);
  try {
    await server.start();
  } catch (e) {
    const msg = String((e as Error).message).split('\n')[0]!;
    process.stderr.write(`  ${target} did not start: ${msg}\n`);
    for (const sc of scenarios) rows.push({ target, scenario: sc.name, error: 'did not start' });
    await server.destroy();
    return;
  }
  try {
    process.stderr.write(`  ${target} pid ${server.pid} on ${server.endpoint}, data ${server.dataDir}\n`);
    const c = server.client();
    try {
      await c.put({ key: Buffer.from('bench/range-key'), value: Buffer.alloc(valueBytes, 0x62) });
    } catch (e) {
      process.stderr.write(`  ${target}: seeding put failed: ${(e as Error).message}\n`);
      for (const sc of scenarios) rows.push({ target, scenario: sc.name, error: `put failed: ${(e as Error).message.slice(0, 60)}` });
      return;
    } finally { c.close(); }
    for (const sc of scenarios) {
      try {
        const { result, serverCpuMs, wallMs } = await runLoad(server, sc, `${target}: ${sc.title}`);
        const genMs = result.cpuUserMs + result.cpuSystemMs;
        rows.push({
          target, scenario: sc.name, result,
          serverCpuPct: (serverCpuMs / wallMs) * 100,
          genCpuPct: (genMs / result.elapsedMs) * 100,
          error: result.errors ? `${result.errors} errors, first: ${result.firstError}` : undefined,
        });
      } catch (e) {
        rows.push({ target, scenario: sc.name, error: String((e as Error).message) });
      }
      if (!server.running) {
        process.stderr.write(`  ${target} exited during ${sc.name}:\n${server.log.slice(-2000)}\n`);
        break;
      }
    }
  } finally {
    await server.destroy();
  }
}

function fmt(n: number | undefined, digits = 0): string {
  if (n === undefined || Number.isNaN(n)) return '-';
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function table(): string {
  const head = ['scenario', 'target', 'req/s', 'p50 ms', 'p99 ms', 'server CPU', 'loadgen CPU', 'notes'];
  const lines: string[][] = [head];
  for (const sc of scenarios) {
    for (const t of targets) {
      const r = rows.find((x) => x.target === t && x.scenario === sc.name);
      lines.push([sc.name, t, fmt(r?.result?.throughput), fmt(r?.result?.p50Ms, 2), fmt(r?.result?.p99Ms, 2),
        r?.serverCpuPct !== undefined ? `${fmt(r.serverCpuPct)}%` : '-', r?.genCpuPct !== undefined ? `${fmt(r.genCpuPct)}%` : '-', r?.error ?? '']);
    }
    const e = rows.find((x) => x.target === 'etcd' && x.scenario === sc.name)?.result;
    const c = rows.find((x) => x.target === 'concord' && x.scenario === sc.name)?.result;
    if (e && c && targets.includes('etcd') && targets.includes('concord')) {
      lines.push([sc.name, 'concord/etcd', `${(c.throughput / e.throughput).toFixed(2)}x`, `${(c.p50Ms / e.p50Ms).toFixed(2)}x`, `${(c.p99Ms / e.p99Ms).toFixed(2)}x`, '', '', '']);
    }
  }
  const widths = head.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  const sep = '+' + widths.map((w) => '-'.repeat(w + 2)).join('+') + '+';
  const out = [sep];
  lines.forEach((l, li) => {
    out.push('| ' + l.map((c, i) => (i >= 2 && i <= 6 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ') + ' |');
    if (li === 0) out.push(sep);
  });
  out.push(sep);
  return out.join('\n');
}

process.stderr.write(`bench: targets ${targets.join(',')}; scenarios ${scenarios.map((s) => s.name).join(',')}; ` +
  (requests > 0 ? `${requests} requests` : `${durationS}s`) + ` each after ${warmupS}s warm-up; ${valueBytes}-byte values, key space ${keySpace}\n`);
for (const t of targets) await benchTarget(t);
console.log(table());
console.log('CPU figures are % of one core over the measured window (server: its whole process tree; loadgen: the generator process). The machine has 2 cores.');
if (jsonOut) writeFileSync(jsonOut, JSON.stringify(rows, null, 2));
