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

/** A 256-byte key: a random varint (Go's binary.PutVarint), zero-padded, under the prefix. */
function perfKey(prefix: string): Buffer {
  const k = Buffer.alloc(256);
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
    // The counter moves on whole seconds, so the time left is simply what remains of the run.
    const left = Math.max(0, Math.round((total * 1000 - elapsedMs) / 1000));
    time = ` ${String(Math.floor(left / 60)).padStart(2, '0')}m${String(left % 60).padStart(2, '0')}s`;
  }
  return `\r ${done} / ${total} ${pct}${time}`;
}

async function perf(ctx: Ctx): Promise<void> {
  const model = aliases[ctx.str('load')];
  if (model === undefined) throw new CtlExit(ExitCode.BadFeature, `unknown load option ${ctx.str('load')}`);
  const cfg = loads[model]!;
  const prefix = ctx.str('prefix');
  const first = ctx.client;
  const existing = await ctx.call(first.kv.get(prefix, { prefix: true, limit: 1, timeoutMs: cfg.durationS * 1000 }));
  if (existing.kvs.length > 0) throw new CtlExit(ExitCode.InvalidInput, `prefix "${prefix}" has keys. Delete with etcdctl del --prefix ${prefix} first`);

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
      const p: Promise<void> = c.kv.put(perfKey(prefix), value).then(
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

export const checkCommand: Command = {
  name: 'check',
  sub: [{ name: 'perf', flags: [strFlag('load', 's'), strFlag('prefix', '/etcdctl-check-perf/'), boolFlag('auto-compact'), boolFlag('auto-defrag')], run: perf }],
};

