// Where a single client's put spends its time, from the server's syscalls (not a test):
// `node dist/bench/put-timeline.js [--requests 2000] [--targets etcd,concord] [--keep DIR]`.
//
// Each target serves one client (bench/loadgen.ts, one connection) while `strace -f -ttt -T`
// records its reads, writes and syncs. Per put, from the request's socket read to the next one:
//   read -> WAL write        parse, propose, raft's Ready, encoding (etcd: goroutine hand-offs too)
//   WAL write -> fdatasync   what runs between the two (etcd: the WAL's own flush and lock)
//   fdatasync                the disk
//   fdatasync end -> answer  commit, apply, answer (etcd 3.4 may apply during the sync)
// with percentiles, the syscalls and threads each put touched, and the WAL syncs split by
// whether a backend sync (LMDB's, bbolt's) overlapped them: is the tail the disk's or ours?
// strace stops the process at every traced syscall, so it slows both servers (etcd, with
// about three times the syscalls per put, more): compare shapes, not rates.
// Needs strace and ptrace permission. Run under the bench lock on a shared machine.
import { spawn } from 'node:child_process';
import { forkGenerator } from './generator-process.js';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Server, sleep, type TargetName } from '../test/harness.js';
import type { LoadConfig } from './loadgen.js';

const here = dirname(fileURLToPath(import.meta.url));
function opt(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : dflt;
}
const requests = Number(opt('requests', '2000'));
const targets = opt('targets', 'etcd,concord').split(',') as TargetName[];
const keep = opt('keep', '');

/** One traced syscall: start and end (s), thread, name, first argument (an fd), return value, text. */
interface Call { start: number; end: number; tid: number; name: string; fd: number; ret: number }

const traced = 'read,write,writev,pwrite64,fdatasync,fsync,epoll_wait,epoll_pwait,futex,readv,recvmsg,sendmsg';

/** strace -f -ttt -T lines into calls, joining "<unfinished ...>" with "<... resumed>". */
export function parseStrace(text: string): Call[] {
  const pending = new Map<number, { start: number; head: string }>();
  const calls: Call[] = [];
  const toCall = (tid: number, start: number, end: number, s: string): Call | undefined => {
    const m = /^(\w+)\((\d+)?/.exec(s);
    if (!m) return undefined;
    const ret = /\) += (-?\d+)/.exec(s);
    return { start, end, tid, name: m[1]!, fd: m[2] === undefined ? -1 : Number(m[2]), ret: ret ? Number(ret[1]) : -1 };
  };
  for (const line of text.split('\n')) {
    const m = /^(\d+) +(\d+\.\d+) (.*)$/.exec(line);
    if (!m) continue;
    const tid = Number(m[1]), ts = Number(m[2]), rest = m[3]!;
    if (rest.startsWith('<...')) {
      const p = pending.get(tid);
      const r = /^<\.\.\. \w+ resumed>(.*)$/.exec(rest);
      if (p === undefined || !r) continue;
      pending.delete(tid);
      const c = toCall(tid, p.start, ts, p.head + r[1]);
      if (c) calls.push(c);
    } else if (rest.endsWith('<unfinished ...>')) {
      pending.set(tid, { start: ts, head: rest.slice(0, -'<unfinished ...>'.length) });
    } else {
      const d = /<(\d+\.\d+)>$/.exec(rest);
      const c = toCall(tid, ts, ts + (d ? Number(d[1]) : 0), rest);
      if (c) calls.push(c);
    }
  }
  return calls.sort((a, b) => a.start - b.start);
}

const isWrite = (c: Call): boolean => c.name === 'write' || c.name === 'pwrite64' || c.name === 'writev' || c.name === 'sendmsg';
const isSync = (c: Call): boolean => c.name === 'fdatasync' || c.name === 'fsync';

interface Put { readToWal: number; walToSync: number; sync: number; syncToAnswer: number; readToAnswer: number; calls: number; threads: number; overlapped: boolean }

/**
 * Splits the trace at each request read (the put loadgen sends is one read of `requestBytes`)
 * and finds in each: the WAL write, its sync and the answer's first socket write.
 */
export function timeline(calls: Call[], requestBytes: number): { puts: Put[]; backendSyncs: number[] } {
  const reads = calls.filter((c) => (c.name === 'read' || c.name === 'recvmsg' || c.name === 'readv') && c.ret === requestBytes);
  const syncs = calls.filter(isSync);
  if (reads.length < 2 || syncs.length === 0) return { puts: [], backendSyncs: [] };
  const socket = reads[0]!.fd;
  // The WAL is the file synced most often: once per put.
  const counts = new Map<number, number>();
  for (const s of syncs) counts.set(s.fd, (counts.get(s.fd) ?? 0) + 1);
  const wal = [...counts].sort((a, b) => b[1] - a[1])[0]![0];
  const others = syncs.filter((s) => s.fd !== wal);
  const puts: Put[] = [];
  let j = 0;
  for (let i = 0; i + 1 < reads.length; i++) {
    const r = reads[i]!, next = reads[i + 1]!.start;
    while (j < calls.length && calls[j]!.start < r.start) j++;
    let walWrite: Call | undefined, sync: Call | undefined, answer: Call | undefined;
    let n = 0;
    const tids = new Set<number>();
    for (let k = j; k < calls.length && calls[k]!.start < next; k++) {
      const c = calls[k]!;
      n++;
      tids.add(c.tid);
      if (!walWrite && isWrite(c) && c.fd === wal) walWrite = c;
      else if (!sync && isSync(c) && c.fd === wal) sync = c;
      else if (!answer && isWrite(c) && c.fd === socket && c.ret >= 40 && c.start > r.end) answer = c;
    }
    if (!walWrite || !sync || !answer) continue;
    puts.push({
      readToWal: walWrite.start - r.end, walToSync: sync.start - walWrite.start, sync: sync.end - sync.start,
      syncToAnswer: answer.start - sync.end, readToAnswer: answer.start - r.end, calls: n, threads: tids.size,
      overlapped: others.some((o) => o.start < sync.end && o.end > sync.start),
    });
  }
  return { puts, backendSyncs: others.map((o) => o.end - o.start) };
}

function pct(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
}
const ms = (s: number): string => (s * 1000).toFixed(3).padStart(7);

function report(target: string, t: { puts: Put[]; backendSyncs: number[] }): void {
  const { puts } = t;
  console.log(`${target}: ${puts.length} puts`);
  console.log('  phase                      p50      p90      p99   (ms)');
  for (const [label, k] of [['read -> WAL write', 'readToWal'], ['WAL write -> fdatasync', 'walToSync'], ['fdatasync', 'sync'],
    ['fdatasync end -> answer', 'syncToAnswer'], ['read -> answer', 'readToAnswer']] as const) {
    const xs = puts.map((p) => p[k]);
    console.log(`  ${label.padEnd(24)} ${ms(pct(xs, 0.5))}  ${ms(pct(xs, 0.9))}  ${ms(pct(xs, 0.99))}`);
  }
  const alone = puts.filter((p) => !p.overlapped).map((p) => p.sync), over = puts.filter((p) => p.overlapped).map((p) => p.sync);
  console.log(`  WAL fdatasync alone: n ${alone.length} p50 ${ms(pct(alone, 0.5))} p99 ${ms(pct(alone, 0.99))}; `
    + `overlapping a backend sync: n ${over.length} p50 ${ms(pct(over, 0.5))} p99 ${ms(pct(over, 0.99))}; backend syncs ${t.backendSyncs.length}, p50 ${ms(pct(t.backendSyncs, 0.5))}`);
  console.log(`  traced syscalls per put p50 ${pct(puts.map((p) => p.calls), 0.5)}, threads per put p50 ${pct(puts.map((p) => p.threads), 0.5)}, `
    + `answers sent before their fdatasync ended ${puts.filter((p) => p.syncToAnswer < 0).length}`);
}

function load(endpoint: string, totalRequests: number): Promise<void> {
  const cfg: LoadConfig = {
    endpoint, op: 'put', clients: 1, connections: 1, valueBytes: 256, keySpace: 100_000, rangeKey: 'x',
    serializable: false, warmupMs: 0, durationMs: 0, totalRequests,
  };
  return new Promise((resolve, reject) => {
    const child = forkGenerator(join(here, 'loadgen.js'), cfg, ['ignore', 'ignore', 'inherit', 'ipc']);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`loadgen exited ${code}`))));
  });
}

/**
 * The request bytes loadgen's put arrives in (HEADERS + DATA of one call, read at once): the
 * most frequent socket read of over 200 bytes, as the generator's framing sets it (317 bytes
 * under node:http2, 368 under bench/h2-lean.ts).
 */
function requestBytes(calls: Call[]): number {
  const sizes = new Map<number, number>();
  for (const c of calls) if ((c.name === 'read' || c.name === 'recvmsg' || c.name === 'readv') && c.ret > 200) sizes.set(c.ret, (sizes.get(c.ret) ?? 0) + 1);
  return [...sizes].sort((a, b) => b[1] - a[1])[0]?.[0] ?? -1;
}

async function traceOne(target: TargetName, dir: string): Promise<void> {
  const server = new Server({ target, name: 'timeline' });
  await server.start();
  try {
    await load(server.endpoint, 1000); // warm-up, untraced
    const out = join(dir, `${target}.strace`);
    const strace = spawn('strace', ['-f', '-ttt', '-T', '-e', `trace=${traced}`, '-o', out, '-p', String(server.pid)], { stdio: 'ignore' });
    await sleep(1000); // attached to every thread
    await load(server.endpoint, requests);
    strace.kill('SIGINT');
    await new Promise((r) => strace.on('exit', r));
    const calls = parseStrace(readFileSync(out, 'utf8'));
    report(target, timeline(calls, requestBytes(calls)));
  } finally {
    await server.destroy();
  }
}

async function main(): Promise<void> {
  // strace cannot create its output in a directory that is not there, and exits at once.
  if (keep) mkdirSync(keep, { recursive: true });
  const dir = keep || mkdtempSync(join(tmpdir(), 'put-timeline-'));
  console.log(`put-timeline: ${requests} puts, 1 client, strace; load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
  try {
    for (const t of targets) await traceOne(t, dir);
  } finally {
    if (!keep) rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
