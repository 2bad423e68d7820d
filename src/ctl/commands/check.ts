// check perf and check datascale, as etcdctl 3.4 runs them.
// check perf: etcdctl's write benchmark. Puts of 256-byte random keys and 1 KiB values under a
// prefix, at the load's rate, from the load's number of clients, for 60 s; then deletes the
// prefix and judges throughput (> 90% of the rate), the slowest request (<= 0.5 s) and the
// standard deviation (<= 0.1 s) as etcdctl does, in its words, after its progress line.
import { randomBytes } from 'node:crypto';

import { CtlExit, ExitCode } from '../exit.js';
import { describeError } from '../errors.js';
import type { Ctx } from '../context.js';
import { boolFlag, strFlag, type Command } from '../command.js';

interface PerfLoad { limit: number; clients: number; durationS: number }

const loads: Record<string, PerfLoad> = {
  s: { limit: 150, clients: 50, durationS: 60 },
  m: { limit: 1000, clients: 200, durationS: 60 },
  l: { limit: 8000, clients: 500, durationS: 60 },
  xl: { limit: 15000, clients: 1000, durationS: 60 },
};
const aliases: Record<string, string> = { s: 's', small: 's', m: 'm', medium: 'm', l: 'l', large: 'l', xl: 'xl', xLarge: 'xl' };

interface Stats { count: number; totalS: number; slowestS: number; stddevS: number; errors: Map<string, number> }

function stats(latenciesS: number[], errors: Map<string, number>, totalS: number): Stats {
  const n = latenciesS.length;
  const mean = n === 0 ? 0 : latenciesS.reduce((a, b) => a + b, 0) / n;
  const variance = n === 0 ? 0 : latenciesS.reduce((a, b) => a + (b - mean) ** 2, 0) / n;
  return { count: n, totalS, slowestS: n === 0 ? 0 : Math.max(...latenciesS), stddevS: Math.sqrt(variance), errors };
}

/** A key of `size` bytes: a random varint (Go's binary.PutVarint), zero-padded, under the prefix. */
function randomKey(prefix: string, size: number): Buffer {
  const k = Buffer.alloc(size);
  randomBytes(8).copy(k, 0);
  return Buffer.concat([Buffer.from(prefix), k]);
}

/**
 * The progress line etcdctl's pb.v1 bar draws (format "Bom !", no bar when its width is
 * unknown, as when piped): counter, percent, and the time left (or, once done, the time taken).
 */
function progressLine(done: number, total: number, elapsedMs: number, finished: boolean): string {
  const pct = `${((done / total) * 100).toFixed(2).padStart(7)}%`;
  let time = '';
  if (finished) time = ` ${Math.floor(Math.round(elapsedMs / 1000) / 60) > 0 ? `${Math.floor(Math.round(elapsedMs / 1000) / 60)}m` : ''}${Math.round(elapsedMs / 1000) % 60}s`;
  else if (done > 0) {
    // pb's estimate: the mean time per step so far times the steps left, in whole seconds, shown when positive.
    const left = Math.floor(((total - done) * (elapsedMs / done)) / 1000);
    if (left > 0) time = ` ${String(Math.floor(left / 60)).padStart(2, '0')}m${String(left % 60).padStart(2, '0')}s`;
  }
  return `\r ${done} / ${total} ${pct}${time}`;
}

/** The --load model's settings (s, small, m, medium, ...); an unknown name ends the command as etcdctl does. */
function loadOf<T>(ctx: Ctx, table: Record<string, T>): T {
  const model = aliases[ctx.str('load')];
  if (model === undefined) throw new CtlExit(ExitCode.BadFeature, `unknown load option ${ctx.str('load')}`);
  return table[model]!;
}

/** A check writes under a prefix that must hold no keys. */
async function ensureEmpty(ctx: Ctx, prefix: string, timeoutMs: number): Promise<void> {
  const existing = await ctx.call(ctx.client.kv.get(prefix, { prefix: true, limit: 1, timeoutMs }));
  if (existing.kvs.length > 0) throw new CtlExit(ExitCode.InvalidInput, `prefix "${prefix}" has keys. Delete with etcdctl del --prefix ${prefix} first`);
}

async function perf(ctx: Ctx): Promise<void> {
  const cfg = loadOf(ctx, loads);
  const prefix = ctx.str('prefix');
  const first = ctx.client;
  await ensureEmpty(ctx, prefix, cfg.durationS * 1000);

  const clients = Array.from({ length: cfg.clients }, () => ctx.clientFor(ctx.globals.endpoints[0]!));
  const value = Buffer.alloc(1024);
  const latencies: number[] = [];
  const errors = new Map<string, number>();
  const started = Date.now();
  const endAt = started + cfg.durationS * 1000;
  const intervalMs = 1000 / cfg.limit;
  let inFlight = 0;
  const pending = new Set<Promise<void>>();
  // pb.v1 redraws every 200 ms; the counter advances once a second.
  const ticker = setInterval(() => {
    const elapsed = Date.now() - started;
    ctx.io.stdout(progressLine(Math.min(cfg.durationS, Math.floor(elapsed / 1000)), cfg.durationS, elapsed, false));
  }, 200);
  try {
    // The rate limiter: one request per interval, handed to the next free client (at most cfg.clients in flight).
    for (let i = 0, next = started; Date.now() < endAt; i++) {
      const wait = next - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      next += intervalMs;
      if (inFlight >= cfg.clients) { await Promise.race(pending); }
      const c = clients[i % clients.length]!;
      inFlight++;
      const st = process.hrtime.bigint();
      const p: Promise<void> = c.kv.put(randomKey(prefix, 256), value).then(
        () => { latencies.push(Number(process.hrtime.bigint() - st) / 1e9); },
        (e) => { const k = describeError(e); errors.set(k, (errors.get(k) ?? 0) + 1); },
      ).finally(() => { inFlight--; pending.delete(p); });
      pending.add(p);
    }
    await Promise.all(pending);
  } finally {
    clearInterval(ticker);
    for (const c of clients) c.close();
  }
  ctx.io.stdout(`${progressLine(cfg.durationS, cfg.durationS, Date.now() - started, true)}\n`);
  const s = stats(latencies, errors, (Date.now() - started) / 1000);

  const del = await ctx.call(first.kv.delete(prefix, { prefix: true, timeoutMs: 30_000 }));
  if (ctx.bool('auto-compact')) await ctx.call(first.kv.compact(del.header!.revision, { physical: true }));
  if (ctx.bool('auto-defrag')) for (const ep of ctx.globals.endpoints) await ctx.call(first.maintenance.defragment({ endpoint: ep }));

  const out: string[] = [];
  let ok = true;
  if (s.errors.size > 0) {
    out.push('FAIL: too many errors');
    for (const [k, v] of s.errors) out.push(`FAIL: ERROR(${k}) -> ${v}`);
    ok = false;
  }
  const rps = s.count / s.totalS;
  if (rps / cfg.limit <= 0.9) { out.push(`FAIL: Throughput too low: ${Math.floor(rps) + 1} writes/s`); ok = false; } else out.push(`PASS: Throughput is ${Math.floor(rps) + 1} writes/s`);
  if (s.slowestS > 0.5) { out.push(`Slowest request took too long: ${s.slowestS.toFixed(6)}s`); ok = false; } else out.push(`PASS: Slowest request took ${s.slowestS.toFixed(6)}s`);
  if (s.stddevS > 0.1) { out.push(`Stddev too high: ${s.stddevS.toFixed(6)}s`); ok = false; } else out.push(`PASS: Stddev is ${s.stddevS.toFixed(6)}s`);
  out.push(ok ? 'PASS' : 'FAIL');
  ctx.io.stdout(`${out.join('\n')}\n`);
  if (!ok) throw new CtlExit(ExitCode.Error, undefined);
}

// check datascale: puts the load's number of 1 KiB key-values (512-byte keys) from its number
// of clients, then reads how much the first endpoint's process_resident_memory_bytes grew
// (its /metrics), deletes the prefix and reports the growth in MB.

interface DatascaleLoad { limit: number; clients: number }
const datascaleLoads: Record<string, DatascaleLoad> = {
  s: { limit: 10_000, clients: 50 }, m: { limit: 100_000, clients: 200 }, l: { limit: 1_000_000, clients: 500 }, xl: { limit: 3_000_000, clients: 1000 },
};

/** etcdctl's endpointMemoryMetrics: the resident memory the endpoint's /metrics reports, or 0 after printing why. */
async function residentMemoryBytes(ctx: Ctx, endpoint: string): Promise<number> {
  const base = /^https?:\/\//.test(endpoint) ? endpoint : `http://${endpoint}`;
  const url = `${base}/metrics`;
  let text: string;
  try {
    const res = await fetch(url);
    text = await res.text();
  } catch (e) {
    ctx.io.stdout(`fetch error: Get "${url}": ${describeError((e as { cause?: unknown }).cause ?? e)}\n`);
    return 0;
  }
  const key = 'process_resident_memory_bytes';
  const line = text.split('\n').find((l) => l.startsWith(key));
  if (line === undefined) { ctx.io.stdout(`could not find: ${key}\n`); return 0; }
  const value = Number(line.slice(key.length).trim());
  return Number.isFinite(value) ? value : 0;
}

async function datascale(ctx: Ctx): Promise<void> {
  const cfg = loadOf(ctx, datascaleLoads);
  const prefix = ctx.str('prefix');
  const first = ctx.client;
  await ensureEmpty(ctx, prefix, ctx.globals.commandTimeoutMs);
  const endpoint = ctx.globals.endpoints[0]!;
  const before = await residentMemoryBytes(ctx, endpoint);
  if (before === 0) {
    ctx.io.stdout('FAIL: Could not read process_resident_memory_bytes before the put operations.\n');
    throw new CtlExit(ExitCode.Error, undefined);
  }
  ctx.io.stdout(`Start data scale check for work load [${cfg.limit} key-value pairs, 1024 bytes per key-value, ${cfg.clients} concurrent clients].\n`);
  const clients = Array.from({ length: cfg.clients }, () => ctx.clientWith(ctx.globals.endpoints, {}));
  const value = Buffer.alloc(512);
  const errors = new Map<string, number>();
  let done = 0;
  let issued = 0;
  const started = Date.now();
  const ticker = setInterval(() => ctx.io.stdout(progressLine(done, cfg.limit, Date.now() - started, false)), 200);
  try {
    // Each client takes the next put as soon as its last one answered (etcdctl's request channel).
    await Promise.all(clients.map(async (c) => {
      while (issued < cfg.limit) {
        issued++;
        try { await c.kv.put(randomKey(prefix, 512), value); } catch (e) {
          const k = describeError(e);
          errors.set(k, (errors.get(k) ?? 0) + 1);
        }
        done++;
      }
    }));
  } finally {
    clearInterval(ticker);
    for (const c of clients) c.close();
  }
  ctx.io.stdout(`${progressLine(cfg.limit, cfg.limit, Date.now() - started, true)}\n`);
  const after = await residentMemoryBytes(ctx, endpoint);
  const del = await ctx.call(first.kv.delete(prefix, { prefix: true }));
  if (ctx.bool('auto-compact')) await ctx.call(first.kv.compact(del.header!.revision, { physical: true }));
  if (ctx.bool('auto-defrag')) for (const ep of ctx.globals.endpoints) await ctx.call(first.maintenance.defragment({ endpoint: ep }));
  if (after === 0) {
    ctx.io.stdout('FAIL: Could not read process_resident_memory_bytes after the put operations.\n');
    throw new CtlExit(ExitCode.Error, undefined);
  }
  if (errors.size > 0) {
    ctx.io.stdout('FAIL: too many errors\n');
    for (const [k, v] of errors) ctx.io.stdout(`FAIL: ERROR(${k}) -> ${v}\n`);
    throw new CtlExit(ExitCode.Error, undefined);
  }
  ctx.io.stdout(`PASS: Approximate system memory used : ${((after - before) / (1024 * 1024)).toFixed(2)} MB.\n`);
}

const benchmarkFlags = (prefix: string) => [strFlag('load', 's'), strFlag('prefix', prefix), boolFlag('auto-compact'), boolFlag('auto-defrag')];

export const checkCommand: Command = {
  name: 'check',
  sub: [
    { name: 'perf', flags: benchmarkFlags('/etcdctl-check-perf/'), run: perf },
    { name: 'datascale', flags: benchmarkFlags('/etcdctl-check-datascale/'), run: datascale },
  ],
};

