// The `mem` scenario of `npm run bench` and the event-loop figures of every scenario.
//
// mem: for each target a fresh server (its own data dir) is loaded with N keys, each put once
// (bench/loadgen.ts with sequentialKeys, 100 clients over 10 connections), and its resident
// memory is read from /proc/PID/status: at start, after the load (then 2 s idle), and after a
// restart on the same data (then 2 s idle). "settled" is the RSS after the load once it stops
// falling (read every second until it falls by under 1 MiB, at most 20 s): what a server gives
// back once idle takes a GC, which a loaded machine delays past the 2 s (Concord's idle GC
// frees the raft log's chunks dropped by the snapshot at the end of the load; Go's scavenger
// returns etcd's freed heap). RSS does not depend on the machine's load otherwise, unlike
// rates. "per key" is (RSS after load - RSS at start) / N. A variant runs Concord with other
// Node flags beside the default in the same run (--mem-node-args), for A/B of heap settings.
//
// Event-loop delay: Concord's concord_event_loop_delay_seconds gauge reports the delay since
// the previous scrape; scraping at the start and at the end of a measured window gives the
// window's p99 and max (etcd has no event loop: '-').

import { forkGenerator, generatorNodeArgs } from './generator-process.js';
import { readFileSync } from 'node:fs';
import { Server } from '../test/harness.js';
import type { LoadConfig, LoadResult } from './loadgen.js';

export interface LoopDelay {
  p99Ms: number;
  maxMs: number;
  /** The machine's floor only (bench/loop-floor.ts): the worst max of the probes pinned one per CPU. */
  cpuMaxMs?: number;
}

/** Reads (and so restarts) the server's event-loop delay interval; undefined where not served. */
export async function scrapeLoopDelay(server: Server): Promise<LoopDelay | undefined> {
  if (server.target !== 'concord') return undefined;
  try {
    const res = await fetch(`${server.endpoint}/metrics`, { signal: AbortSignal.timeout(10_000) });
    const text = await res.text();
    const stat = (s: string): number => {
      const m = new RegExp(`^concord_event_loop_delay_seconds\\{stat="${s}"\\} (\\S+)$`, 'm').exec(text);
      return m ? Number(m[1]) * 1000 : NaN;
    };
    return { p99Ms: stat('p99'), maxMs: stat('max') };
  } catch {
    return undefined;
  }
}

export function loopNote(d: LoopDelay | undefined): string | undefined {
  if (!d || Number.isNaN(d.p99Ms)) return undefined;
  return `loop p99 ${d.p99Ms.toFixed(1)} max ${d.maxMs.toFixed(1)} ms`;
}

/** The machine's floor over a window (bench/loop-floor.ts), beside a row's own figure. */
export function floorNote(d: LoopDelay | undefined): string | undefined {
  if (!d || Number.isNaN(d.maxMs)) return undefined;
  const perCpu = d.cpuMaxMs === undefined ? '' : ` (per CPU ${d.cpuMaxMs.toFixed(1)})`;
  return `floor p99 ${d.p99Ms.toFixed(1)} max ${d.maxMs.toFixed(1)}${perCpu} ms`;
}

interface ProcMem { rssMiB: number; anonMiB: number; fileMiB: number }

function procMem(pid: number): ProcMem {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMiB: kib('VmRSS') / 1024, anonMiB: kib('RssAnon') / 1024, fileMiB: kib('RssFile') / 1024 };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** RSS once it stops falling: read every second until it falls by under 1 MiB (at most 20 s). */
async function settledMem(pid: number): Promise<ProcMem> {
  let last = procMem(pid);
  for (let i = 0; i < 20; i++) {
    await sleep(1000);
    const now = procMem(pid);
    const fell = last.rssMiB - now.rssMiB;
    last = now;
    if (fell < 1) break;
  }
  return last;
}

/**
 * Puts keys 0..n-1 once each through the load generator; resolves with its result and the
 * server's loop delay over the load, scraped as soon as the generator reports (not once it has
 * exited: by then the server may have been idle for 0.75 s, long enough for its idle GC,
 * cli/idle-gc.ts, a pause of an idle server that is not the load's).
 */
function load(loadgenPath: string, nodeArgs: readonly string[], server: Server, keys: number, valueBytes: number, progress: (s: string) => void): Promise<{ result: LoadResult; loop: LoopDelay | undefined }> {
  const cfg: LoadConfig = {
    endpoint: server.endpoint, op: 'put', clients: 100, connections: 10, valueBytes, keySpace: keys,
    sequentialKeys: true, rangeKey: '', serializable: false, warmupMs: 0, durationMs: 0, totalRequests: keys,
  };
  return new Promise((resolve, reject) => {
    const child = forkGenerator(loadgenPath, cfg, ['ignore', 'inherit', 'inherit', 'ipc'], nodeArgs);
    let result: LoadResult | undefined;
    let loop: Promise<LoopDelay | undefined> = Promise.resolve(undefined);
    child.on('message', (m: any) => {
      if (m.type === 'progress') progress(`${m.requests} keys`);
      else if (m.type === 'result') {
        result = m.result;
        loop = scrapeLoopDelay(server);
      }
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (!result) return reject(new Error(`load generator exited with ${code}`));
      const done = result;
      void loop.then((d) => resolve({ result: done, loop: d }));
    });
  });
}

export interface MemVariant { label: string; target: 'etcd' | 'concord'; nodeArgs: string[]; env?: Record<string, string> }
export interface MemRow { label: string; start?: ProcMem; loaded?: ProcMem; settled?: ProcMem; restarted?: ProcMem; loadRate?: number; loop?: LoopDelay; error?: string }

export async function runMem(variants: MemVariant[], keys: number, valueBytes: number, loadgenPath: string, loadgenNodeArgs: readonly string[] = generatorNodeArgs()): Promise<MemRow[]> {
  const rows: MemRow[] = [];
  for (const v of variants) {
    const server = new Server({ target: v.target, name: 'benchmem', nodeArgs: v.nodeArgs, env: v.env ?? {} });
    const row: MemRow = { label: v.label };
    rows.push(row);
    const say = (s: string) => process.stderr.write(`\r  mem ${v.label.padEnd(40)} ${s.padEnd(30)}`);
    try {
      await server.start();
      await sleep(2000);
      row.start = procMem(server.pid!);
      await scrapeLoopDelay(server);
      const { result: r, loop } = await load(loadgenPath, loadgenNodeArgs, server, keys, valueBytes, say);
      row.loop = loop;
      if (r.errors) throw new Error(`${r.errors} errors loading, first: ${r.firstError}`);
      row.loadRate = r.throughput;
      await sleep(2000);
      row.loaded = procMem(server.pid!);
      say('settling');
      row.settled = await settledMem(server.pid!);
      say('restarting');
      await server.stop(60_000);
      await server.restart();
      await sleep(2000);
      row.restarted = procMem(server.pid!);
    } catch (e) {
      row.error = String((e as Error).message).split('\n')[0]!.slice(0, 100);
    } finally {
      process.stderr.write('\n');
      await server.destroy();
    }
  }
  return rows;
}

export function memTable(rows: MemRow[], keys: number): string {
  const f = (n: number | undefined, d = 0) => (n === undefined || Number.isNaN(n) ? '-' : n.toFixed(d));
  const etcd = rows.find((r) => r.label === 'etcd');
  const ratio = (r: MemRow, pick: (r: MemRow) => ProcMem | undefined) => {
    const a = pick(r)?.rssMiB;
    const b = etcd ? pick(etcd)?.rssMiB : undefined;
    return a !== undefined && b !== undefined && r !== etcd ? ` (${(a / b).toFixed(2)}x)` : '';
  };
  const head = ['mem', 'RSS start MiB', `RSS after ${keys} keys MiB`, 'anon/file MiB', 'settled MiB', 'B/key', 'RSS after restart MiB', 'load puts/s', 'loop p99/max ms', 'error'];
  const lines = [head, ...rows.map((r) => [
    r.label, f(r.start?.rssMiB), f(r.loaded?.rssMiB) + ratio(r, (x) => x.loaded),
    r.loaded ? `${f(r.loaded.anonMiB)}/${f(r.loaded.fileMiB)}` : '-', f(r.settled?.rssMiB) + ratio(r, (x) => x.settled),
    r.loaded && r.start ? f(((r.loaded.rssMiB - r.start.rssMiB) * 1048576) / keys) : '-',
    f(r.restarted?.rssMiB) + ratio(r, (x) => x.restarted), f(r.loadRate),
    r.loop ? `${f(r.loop.p99Ms, 1)}/${f(r.loop.maxMs, 1)}` : '-', r.error ?? '',
  ])];
  const widths = head.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  return lines.map((l) => '| ' + l.map((c, i) => c.padEnd(widths[i]!)).join(' | ') + ' |').join('\n');
}
