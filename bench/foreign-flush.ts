// A WAL-like sync loop while another process flushes a big file on the same disk (issue 10):
// can a server keep its 4 KiB syncs under 100 ms while a snapshot saver (etcdctl: one fsync
// of the whole 1.5 GB file at the end) flushes? No server here, only the two I/O patterns:
//
// - wal: 4 KiB overwrites at increasing offsets of a pre-zeroed 64 MiB file (our WAL's
//   segments, src/wal/file_pipeline.ts), each made durable before the next, as one of:
//     plain   write + fdatasync (what the WAL does)
//     dsync   write on an O_DSYNC fd (the write returns once durable)
//     direct  write on an O_DIRECT|O_DSYNC fd from an aligned buffer (page cache bypassed)
// - saver: a separate process writes --flush-mb MiB in 4 MiB pieces, then fsyncs once;
//   --saver-mode periodic syncs every 32 MiB (concordctl), direct writes O_DIRECT then syncs;
//   with --saver-ionice "-c3" (idle class) or "-c2 -n7" it runs under ionice.
// The wal loop runs alone for --lead-s seconds, then with the saver, then --tail-s alone.
// Each variant prints the sync latencies in three windows: before the saver, while it
// writes (page cache only) and while it fsyncs. Run it under the bench lock:
//
//   flock /tmp/concord-bench.lock node dist/bench/foreign-flush.js --variants plain,dsync,direct \
//     [--flush-mb 1536] [--saver-ionice "-c3"] [--wal-ionice "-c1 -n0"] [--dir /tmp]
import { spawn } from 'node:child_process';
import { closeSync, constants, existsSync, fdatasyncSync, fsyncSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

type Variant = 'plain' | 'dsync' | 'direct';
const walFileBytes = 64 * 1024 * 1024;
const recordBytes = 4096;

function opt(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
}

/** A zero-filled, synced file of `bytes` (our WAL segment before any record). */
function zeroFile(path: string, bytes: number): void {
  const fd = openSync(path, 'w');
  const z = Buffer.alloc(1024 * 1024);
  for (let off = 0; off < bytes; off += z.length) writeSync(fd, z, 0, z.length, off);
  fsyncSync(fd);
  closeSync(fd);
}

/** A `bytes` view of `buf` that O_DIRECT accepts on `fd` (Node gives no aligned allocation: probe each 8-byte offset). */
function alignedView(fd: number, buf: Buffer, bytes: number): Buffer {
  for (let at = 0; at + bytes <= buf.length; at += 8) {
    const view = buf.subarray(at, at + bytes);
    try {
      writeSync(fd, view, 0, bytes, 0);
      return view;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
    }
  }
  throw new Error(`no aligned ${bytes}-byte view found for O_DIRECT`);
}

/** Role wal: sync loop until `stopFile` exists; prints [[epoch ms at start, ms]...] as JSON. */
function walLoop(variant: Variant, file: string, stopFile: string): void {
  const flags = constants.O_RDWR | (variant === 'plain' ? 0 : constants.O_DSYNC) | (variant === 'direct' ? constants.O_DIRECT : 0);
  const fd = openSync(file, flags);
  const record = variant === 'direct' ? alignedView(fd, Buffer.alloc(recordBytes * 2), recordBytes) : Buffer.alloc(recordBytes);
  record.fill(0x5a);
  const samples: number[] = [];
  let off = 0;
  for (let i = 0; !existsSync(stopFile); i++) {
    const t0 = performance.now();
    writeSync(fd, record, 0, recordBytes, off);
    if (variant === 'plain') fdatasyncSync(fd);
    samples.push(performance.timeOrigin + t0, performance.now() - t0);
    off = (off + recordBytes) % walFileBytes;
  }
  closeSync(fd);
  process.stdout.write(JSON.stringify(samples));
}

/**
 * How the saver writes: `once` (etcdctl: buffered writes, one fsync at the end), `periodic`
 * (concordctl: an fdatasync every 32 MiB), `direct` (O_DIRECT writes, no page cache, then one
 * fsync: tells the device queue's share from the cache flush's).
 */
type SaverMode = 'once' | 'periodic' | 'direct';
const periodicSyncBytes = 32 * 1024 * 1024;

/** Role saver: writes `mb` MiB to `file` as `mode` says; prints its phases' epoch ms as JSON. */
function saver(file: string, mb: number, mode: SaverMode): void {
  const fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | (mode === 'direct' ? constants.O_DIRECT : 0));
  const chunkBytes = 4 * 1024 * 1024;
  const chunk = mode === 'direct' ? alignedView(fd, Buffer.alloc(chunkBytes + 4096), chunkBytes) : Buffer.alloc(chunkBytes);
  chunk.fill(0x33);
  const writeStart = Date.now();
  for (let off = 0; off < mb * 1024 * 1024; off += chunkBytes) {
    writeSync(fd, chunk, 0, chunkBytes, off);
    if (mode === 'periodic' && (off + chunkBytes) % periodicSyncBytes === 0) fdatasyncSync(fd);
  }
  const fsyncStart = Date.now();
  fsyncSync(fd);
  const fsyncEnd = Date.now();
  closeSync(fd);
  process.stdout.write(JSON.stringify({ writeStart, fsyncStart, fsyncEnd }));
}

/** `args` run as a child of this script's role, under `ionice <prefix>` when given; resolves with its stdout. */
function child(ionice: string, args: string[]): { done: Promise<string> } {
  const self = fileURLToPath(import.meta.url);
  const [cmd, ...rest] = ionice !== '' ? ['ionice', ...ionice.split(/\s+/), process.execPath, self, ...args] : [process.execPath, self, ...args];
  const p = spawn(cmd!, rest, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return { done: new Promise((resolve, reject) => p.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${rest.join(' ')} exited ${code}`))))) };
}

interface Window { n: number; p50: number; p99: number; max: number; over100: number; sumOver100: number }

function window(lat: number[]): Window {
  const s = [...lat].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(s.length * p))] ?? 0;
  const slow = s.filter((x) => x > 100);
  return { n: s.length, p50: q(0.5), p99: q(0.99), max: s.at(-1) ?? 0, over100: slow.length, sumOver100: slow.reduce((a, b) => a + b, 0) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function runVariant(variant: Variant, dir: string, flushMb: number, saverIonice: string, walIonice: string, leadS: number, tailS: number, settleS: number, saverMode: string): Promise<void> {
  const walFile = join(dir, 'wal.seg');
  const bigFile = join(dir, 'snapshot.db');
  const stopFile = join(dir, 'stop');
  rmSync(stopFile, { force: true });
  zeroFile(walFile, walFileBytes);
  const wal = child(walIonice, ['--role', 'wal', '--variant', variant, '--file', walFile, '--stop', stopFile]);
  await sleep(leadS * 1000);
  const phases = JSON.parse(await child(saverIonice, ['--role', 'saver', '--file', bigFile, '--mb', String(flushMb), '--mode', saverMode]).done) as { writeStart: number; fsyncStart: number; fsyncEnd: number };
  await sleep(tailS * 1000);
  writeFileSync(stopFile, '');
  const flat = JSON.parse(await wal.done) as number[];
  // Deleting 1.5 GB on ext4 with discard slows syncs for seconds: done here, after the loop.
  rmSync(bigFile, { force: true });
  await sleep(settleS * 1000);
  const windows: Record<string, number[]> = { before: [], writing: [], fsync: [], after: [] };
  for (let i = 0; i < flat.length; i += 2) {
    const at = flat[i]!, ms = flat[i + 1]!;
    const end = at + ms;
    const w = end < phases.writeStart ? 'before' : at < phases.fsyncStart && end < phases.fsyncStart ? 'writing' : at <= phases.fsyncEnd ? 'fsync' : 'after';
    windows[w]!.push(ms);
  }
  const f = (x: number) => x.toFixed(1);
  const label = `${variant} saver=${saverMode}${walIonice ? ` wal[ionice ${walIonice}]` : ''}${saverIonice ? ` saver[ionice ${saverIonice}]` : ''}`;
  console.log(`${label}: saver wrote ${flushMb} MiB in ${((phases.fsyncStart - phases.writeStart) / 1000).toFixed(2)} s, its fsync took ${((phases.fsyncEnd - phases.fsyncStart) / 1000).toFixed(2)} s`);
  for (const [name, lat] of Object.entries(windows)) {
    const w = window(lat);
    console.log(`  ${name.padEnd(8)} syncs ${String(w.n).padStart(6)}  p50 ${f(w.p50).padStart(6)}  p99 ${f(w.p99).padStart(7)}  max ${f(w.max).padStart(7)} ms  >100 ms: ${w.over100} (${f(w.sumOver100)} ms)`);
  }
}

async function main(): Promise<void> {
  const role = opt('role', '');
  if (role === 'wal') return walLoop(opt('variant', 'plain') as Variant, opt('file', ''), opt('stop', ''));
  if (role === 'saver') return saver(opt('file', ''), Number(opt('mb', '1536')), opt('mode', 'once') as SaverMode);
  const dir = mkdtempSync(join(opt('dir', tmpdir()), 'foreign-flush-'));
  try {
    for (const v of opt('variants', 'plain,dsync,direct').split(',') as Variant[]) {
      await runVariant(v, dir, Number(opt('flush-mb', '1536')), opt('saver-ionice', ''), opt('wal-ionice', ''), Number(opt('lead-s', '2')), Number(opt('tail-s', '2')), Number(opt('settle-s', '5')), opt('saver-mode', 'once'));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
