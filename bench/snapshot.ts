// Snapshot benchmark, real etcd and Concord in the same run. Runs as the `snapshot` scenario
// of `npm run bench` (`npm run bench -- --scenarios snapshot --snapshot-mb 256`) or alone
// (`npm run bench:snapshot -- --mb 256`). Per target:
// - fill the store to about --mb MiB of values (4 KiB each, several puts in flight);
// - the writer alone for 5 s, then `etcdctl snapshot save`, then `concordctl snapshot save`,
//   against it while one client keeps putting (closed loop): save time, the server's peak RSS during the save (polled
//   from /proc), puts/s, the longest put during the save and how many took over 100 ms (the
//   issue's target: none), and what the puts waited for (bench/save-causes.ts: the saving
//   client's fsyncs from strace, the server's WAL fsync and commit histograms and Concord's
//   event-loop delay from /metrics, Concord's GC pauses from --trace-gc);
// - restore: `concordutl snapshot restore` of that file (bbolt -> LMDB) beside `etcdctl
//   snapshot restore` of the same file;
// - import at boot: `etcdctl snapshot restore` output (an etcd data dir) booted by Concord
//   (which imports member/snap/db into LMDB first) and by etcd: time until each serves.
//
// Options (flags or env), standalone:
//   --targets etcd,concord   BENCH_TARGETS
//   --mb 256                 BENCH_SNAPSHOT_MB (1 GB as the issue asks takes long on a shared 2-core machine)
//   --savers none,etcdctl,concordctl   BENCH_SNAPSHOT_SAVERS: the clients that save, in turn ('none':
//                            the writer alone for 5 s, the same figures without a save; the last saver's file is restored)
//   --timeline               per-second lines of each save (puts, longest put, client fsync, WAL fsync, commit, loop delay, GC)
//   --node-args "--flag ..."  more Node flags for Concord (--trace-gc is always on)
//   --gc-log FILE            append Concord's --trace-gc lines of each save to FILE
//   --no-metrics             do not poll /metrics during the save (to see what the polling costs)
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { appendFileSync, existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Server, REPO_ROOT, freePort, track, type TargetName } from '../test/harness.js';
import { gcLineReader, processStartEpochMs, type GcEvent } from './gc-trace.js';
import { fsyncSpans, gcSpans, pollMetrics, saveCauses, timeline, tracingFsyncs, type PutSample, type SaveCauses } from './save-causes.js';

const valueBytes = 4096;
const putsInFlight = 16;
const slowPutMs = 100;

/**
 * The clients that save a snapshot: real etcdctl, and Concord's own; 'none' saves nothing for
 * quietSeconds, the writer's puts alone in the same run, for the save rows to be read against.
 */
export type Saver = 'none' | 'etcdctl' | 'concordctl';
const quietSeconds = 5;

/** One save by one client. */
export interface SaveResult {
  saver: Saver; saveS: number; peakRssMiB: number; baseRssMiB: number;
  /** RssAnon before and at its peak during the save (the part that is not mapped file pages). */
  baseAnonMiB: number; peakAnonMiB: number;
  putsPerS: number; maxPutMs: number;
  /** Puts during the save that took over slowPutMs (the issue's target: no pause over 100 ms). */
  slowPuts: number;
  /** CPU seconds (user + system) of the server during the save (the writer's puts included). */
  saveCpuS: number;
  /** When the saver started (epoch ms), what the puts waited for, and the save second by second. */
  startedMs: number;
  causes: SaveCauses;
  timeline: string[];
}

export interface SnapshotBenchResult {
  target: TargetName; saves: SaveResult[]; fillS: number; fileMiB: number;
  importS: number; etcdRestoreS: number;
  /** CPU seconds (user + system) of each restore. Unlike the wall times these barely depend on the machine's load. */
  importCpuS: number; etcdRestoreCpuS: number;
  /** Peak RSS of each restore process (GNU time's %M): the import must not hold the file in memory. */
  importPeakRssMiB: number; etcdRestorePeakRssMiB: number;
  /** Time until Concord / etcd serve an etcd data dir made by `etcdctl snapshot restore` of the file. */
  concordBootS: number; etcdBootS: number;
}

/**
 * Resident set size of `pid` in MiB (/proc/<pid>/status VmRSS), and its anonymous part
 * (RssAnon: heap and buffers; the rest is mostly file pages mapped in, e.g. LMDB's map
 * pages a scan touched, which the kernel may drop at any time).
 */
export function rssMiB(pid: number): { total: number; anon: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
  return { total: kb('VmRSS') / 1024, anon: kb('RssAnon') / 1024 };
}

/** CPU seconds `pid` has used (/proc/<pid>/stat utime + stime, in Linux's USER_HZ of 100). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // the command name may hold spaces
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** `run` under GNU time when it is installed: adds the command's CPU seconds (NaN without it). */
export async function runTimed(cmd: string, args: string[], scratch: string): Promise<{ code: number | null; ms: number; stderr: string; cpuS: number; peakRssMiB: number }> {
  if (!existsSync('/usr/bin/time')) return { ...(await run(cmd, args)), cpuS: NaN, peakRssMiB: NaN };
  const out = `${scratch}.time`;
  const r = await run('/usr/bin/time', ['-f', '%U %S %M', '-o', out, cmd, ...args]);
  const [user, sys, maxRssKiB] = readFileSync(out, 'utf8').trim().split(/\s+/).slice(-3).map(Number);
  rmSync(out, { force: true });
  return { ...r, cpuS: user! + sys!, peakRssMiB: maxRssKiB! / 1024 };
}

export function run(cmd: string, args: string[], cwd?: string): Promise<{ code: number | null; ms: number; stderr: string }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], cwd, env: { ...process.env, ETCDCTL_API: '3' } });
    track(child);
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d) => { stderr = (stderr + d).slice(-4000); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, ms: performance.now() - started, stderr }));
  });
}

export async function fill(s: Server, sizeMiB: number): Promise<number> {
  const started = performance.now();
  const clients = Array.from({ length: 4 }, () => s.client());
  const total = Math.ceil((sizeMiB * 1024 * 1024) / valueBytes);
  let next = 0;
  const worker = async (i: number): Promise<void> => {
    const c = clients[i % clients.length]!;
    while (next < total) {
      const n = next++;
      await c.put({ key: Buffer.from(`bench/${String(n).padStart(9, '0')}`), value: Buffer.alloc(valueBytes, n % 251) });
    }
  };
  await Promise.all(Array.from({ length: putsInFlight }, (_, i) => worker(i)));
  for (const c of clients) c.close();
  return (performance.now() - started) / 1000;
}

/** The command line of `saver`'s `snapshot save` of `s` into `file`. */
function saveCommand(saver: Saver, s: Server, file: string): [string, string[]] {
  if (saver === 'none') return ['sleep', [String(quietSeconds)]];
  const args = ['--endpoints', s.endpoint, 'snapshot', 'save', file];
  return saver === 'etcdctl' ? ['etcdctl', args] : [process.execPath, [join(REPO_ROOT, 'bin', 'concordctl.js'), ...args]];
}

/**
 * `saver`'s `snapshot save` of `s` while one closed-loop writer puts; the save's figures.
 * `gc` holds Concord's GC events while `gc.collecting` (undefined for etcd).
 */
async function saveUnderWrites(s: Server, saver: Saver, file: string, gc: GcLog | undefined, polled: boolean): Promise<SaveResult> {
  const pid = s.pid!;
  const base = rssMiB(pid);
  let saving = true;
  const puts: PutSample[] = [];
  const now = () => performance.timeOrigin + performance.now();
  // The writer's client connects and puts once before the save starts: the first put of a
  // new client waits for its connection, which is not the save's doing.
  const c = s.client();
  await c.put({ key: Buffer.from('during/warm-up'), value: Buffer.alloc(100, 1) });
  const writer = (async () => {
    for (let i = 0; saving; i++) {
      const t0 = now();
      await c.put({ key: Buffer.from(`during/${i % 1000}`), value: Buffer.alloc(100, 1) });
      const t1 = now();
      puts.push({ startMs: t0, endMs: t1, ms: t1 - t0 });
    }
    c.close();
  })();
  let peakRssMiB = base.total;
  let peakAnonMiB = base.anon;
  const poll = setInterval(() => {
    const r = rssMiB(pid);
    peakRssMiB = Math.max(peakRssMiB, r.total);
    peakAnonMiB = Math.max(peakAnonMiB, r.anon);
  }, 20);
  const metrics = polled ? pollMetrics(s.endpoint) : { stop: () => Promise.resolve([]) };
  if (gc) { gc.events.length = 0; gc.collecting = true; }
  const cpuBefore = cpuSeconds(pid);
  const trace = `${file}.strace`;
  const startedMs = now();
  const save = await run(...tracingFsyncs(...saveCommand(saver, s, file), trace));
  const endedMs = now();
  const saveCpuS = cpuSeconds(pid) - cpuBefore; // the writer's puts included, as they run meanwhile
  if (gc) gc.collecting = false;
  clearInterval(poll);
  saving = false;
  await writer;
  const windows = await metrics.stop();
  if (save.code !== 0) throw new Error(`${s.target}: ${saver} snapshot save failed: ${save.stderr}`);
  const fsyncs = fsyncSpans(trace);
  rmSync(trace, { force: true });
  const gcs = gc ? gcSpans(gc.events, gc.startedAtMs) : undefined;
  const during = puts.filter((p) => p.startMs < endedMs);
  return {
    saver, startedMs, saveS: save.ms / 1000, saveCpuS, peakRssMiB, baseRssMiB: base.total, baseAnonMiB: base.anon, peakAnonMiB,
    putsPerS: during.length / (save.ms / 1000), maxPutMs: Math.max(0, ...during.map((p) => p.ms)), slowPuts: during.filter((p) => p.ms > slowPutMs).length,
    causes: saveCauses(during, fsyncs, gcs, windows, slowPutMs),
    timeline: timeline(startedMs, endedMs, during, fsyncs, gcs, windows),
  };
}

/** Concord's --trace-gc events, kept while a save runs. */
interface GcLog { collecting: boolean; readonly events: GcEvent[]; readonly startedAtMs: number }

/** Seconds until `target` serves the etcd data dir `etcdctl snapshot restore` makes of `file`. */
async function bootRestored(target: TargetName, file: string): Promise<number> {
  const s = new Server({ target, name: 'boot', readyTimeoutMs: 600_000 });
  try {
    s.clientPort = await freePort();
    s.peerPort = await freePort();
    const restored = await run('etcdctl', ['snapshot', 'restore', file, '--data-dir', s.dataDir, '--name', s.name,
      '--initial-cluster', `${s.name}=${s.peerUrl}`, '--initial-advertise-peer-urls', s.peerUrl]);
    if (restored.code !== 0) throw new Error(`etcdctl snapshot restore failed: ${restored.stderr}`);
    const started = performance.now();
    await s.start();
    const took = (performance.now() - started) / 1000;
    if (target === 'concord' && !/"msg":"imported the etcd data dir"/.test(s.log)) throw new Error('Concord did not import the etcd data dir');
    return took;
  } finally {
    await s.destroy();
  }
}

async function benchTarget(target: TargetName, sizeMiB: number, o: Required<SnapshotBenchOptions>): Promise<SnapshotBenchResult> {
  const s = new Server({
    target, extraArgs: ['--quota-backend-bytes', String(8 * 1024 * 1024 * 1024)], readyTimeoutMs: 120_000,
    ...(target === 'concord' ? { nodeArgs: ['--trace-gc', ...o.nodeArgs] } : {}),
  });
  try {
    await s.start();
    let gc: GcLog | undefined;
    if (target === 'concord') {
      const log: GcLog = { collecting: false, events: [], startedAtMs: processStartEpochMs(s.pid!) };
      s.child!.stdout!.on('data', gcLineReader((e, line) => {
        if (!log.collecting) return;
        log.events.push(e);
        if (o.gcLog) appendFileSync(o.gcLog, `${line}\n`);
      }));
      gc = log;
    }
    process.stderr.write(`[bench:snapshot] ${target}: filling ${sizeMiB} MiB...\n`);
    const fillS = await fill(s, sizeMiB);
    // Each saver writes its own file, all deleted at the end: deleting the last save's 1.5 GB
    // file before the next save started stalled every fdatasync on the disk 100-190 ms a second
    // or two later (ext4 mounted with discard trims the freed blocks), i.e. in the next save's
    // measurement, for etcd and Concord alike.
    const fileOf = (saver: Saver) => s.scratch(`bench-${saver}.db`);
    const saves: SaveResult[] = [];
    for (const saver of o.savers) {
      process.stderr.write(`[bench:snapshot] ${target}: ${saver} saving under writes...\n`);
      rmSync(fileOf(saver), { force: true });
      saves.push(await saveUnderWrites(s, saver, fileOf(saver), gc, o.metrics));
    }
    await s.stop();
    const file = fileOf(o.savers[o.savers.length - 1]!);
    if (!existsSync(file)) throw new Error(`${target}: no snapshot file: the last of --savers must save one`);
    const fileMiB = statSync(file).size / 1024 / 1024;
    process.stderr.write(`[bench:snapshot] ${target}: restoring and booting the ${fileMiB.toFixed(0)} MiB file...\n`);
    const restoreArgs = (dir: string) => ['snapshot', 'restore', file, '--data-dir', dir, '--skip-hash-check=false'];
    const imported = await runTimed(process.execPath, [join(REPO_ROOT, 'bin', 'concordutl.js'), ...restoreArgs(s.scratch('imported'))], s.scratch('imported'));
    if (imported.code !== 0) throw new Error(`${target}: concordutl snapshot restore failed: ${imported.stderr}`);
    const etcdRestore = await runTimed('etcdctl', restoreArgs(s.scratch('etcd-restored')), s.scratch('etcd-restored'));
    rmSync(s.scratch('imported'), { recursive: true, force: true });
    rmSync(s.scratch('etcd-restored'), { recursive: true, force: true });
    const concordBootS = await bootRestored('concord', file);
    const etcdBootS = await bootRestored('etcd', file);
    for (const saver of o.savers) rmSync(fileOf(saver), { force: true });
    return { target, saves, fillS, fileMiB, importS: imported.ms / 1000, etcdRestoreS: etcdRestore.ms / 1000, importCpuS: imported.cpuS, etcdRestoreCpuS: etcdRestore.cpuS, importPeakRssMiB: imported.peakRssMiB, etcdRestorePeakRssMiB: etcdRestore.peakRssMiB, concordBootS, etcdBootS };
  } finally {
    await s.destroy();
  }
}

export interface SnapshotBenchOptions {
  savers?: readonly Saver[];
  /** Per-second lines of each save under the tables. */
  timeline?: boolean;
  /** More Node flags for Concord. */
  nodeArgs?: readonly string[];
  /** A file to append Concord's --trace-gc lines of each save to ('' : none). */
  gcLog?: string;
  /** Poll the server's /metrics during each save (default true). */
  metrics?: boolean;
}

/** Runs the snapshot benchmark on each target in turn; returns the results and a printable table. */
export async function snapshotBench(targets: readonly TargetName[], sizeMiB: number, o: SnapshotBenchOptions = {}): Promise<{ results: SnapshotBenchResult[]; table: string }> {
  const results: SnapshotBenchResult[] = [];
  const full: Required<SnapshotBenchOptions> = { savers: ['none', 'etcdctl', 'concordctl'], timeline: false, nodeArgs: [], gcLog: '', metrics: true, ...o };
  for (const t of targets) results.push(await benchTarget(t, sizeMiB, full));
  const f = (n: number, d = 1) => (Number.isNaN(n) ? '-' : n.toFixed(d));
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const rows = results.flatMap((r) => r.saves.map((v) => ({ r, v, name: `${r.target}/${v.saver === 'none' ? 'puts alone' : v.saver}`.padEnd(18) })));
  const lines = [
    `snapshot save of a ~${sizeMiB} MiB store (values ${valueBytes} B), one writer during the save (load average at the end: ${load}); restore = snapshot restore of the saved file; boot = time until Concord / etcd serve etcdctl's restored data dir of it`,
    'target/saver       save s (server CPU s)  RSS before/peak MiB  anon before/peak  puts/s during  max put ms  puts >100 ms',
    ...rows.map(({ v, name }) => `${name} ${`${f(v.saveS, 2)} (${f(v.saveCpuS, 2)})`.padStart(21)}  ${`${f(v.baseRssMiB, 0)}/${f(v.peakRssMiB, 0)}`.padStart(19)}  ${`${f(v.baseAnonMiB, 0)}/${f(v.peakAnonMiB, 0)}`.padStart(16)}  ${f(v.putsPerS, 0).padStart(13)}  ${f(v.maxPutMs).padStart(10)}  ${String(v.slowPuts).padStart(12)}`),
    '',
    'what the puts waited for (client fsync: the saver\'s fsync/fdatasync calls, strace; WAL fsync and commit: the server\'s histograms, bucket bounds; loop: Concord\'s main-thread event-loop delay; GC: Concord\'s --trace-gc)',
    'target/saver       client fsyncs (total/max ms)  max put in/outside client fsync  puts >100 ms in/outside  WAL fsync max ms (>100 ms)  commit max ms  loop max ms  GC marks/scavenges (max/total ms)',
    ...rows.map(({ v: { causes: c }, name }) => `${name} ${`${c.clientFsyncs} (${f(c.clientFsyncMs, 0)}/${f(c.clientFsyncMaxMs, 0)})`.padStart(28)}  ${`${f(c.maxPutInFsyncMs, 0)}/${f(c.maxPutElsewhereMs, 0)}`.padStart(31)}  ${`${c.slowPutsInFsync}/${c.slowPutsElsewhere}`.padStart(23)}  ${`<=${c.walMaxMs} (${c.walSlow})`.padStart(26)}  ${`<=${c.commitMaxMs}`.padStart(13)}  ${f(c.loopMaxMs, 0).padStart(11)}  ${`${f(c.marks, 0)}/${f(c.scavenges, 0)} (${f(c.gcMaxMs, 0)}/${f(c.gcTotalMs, 0)})`.padStart(32)}`),
    '',
    'the slowest puts (t: s from the save\'s start) and what overlapped each',
    ...rows.flatMap(({ v, name }) => [
      `${name.trim()}:${v.causes.markReasons ? ` (mark-compacts: ${v.causes.markReasons})` : ''}`,
      ...v.causes.slowest.map((p) => `  ${f(p.put.ms, 0).padStart(5)} ms at t=${f((p.put.startMs - v.startedMs) / 1000, 2)}: client fsync ${f(p.clientFsyncMs, 0)} ms, GC ${f(p.gcMs, 0)} ms (max ${f(p.gcMaxMs, 0)}), loop max ${p.loopMaxMs === undefined ? '-' : f(p.loopMaxMs, 0)} ms, WAL fsync <=${p.walMaxMs} ms, commit <=${p.commitMaxMs} ms`),
    ]),
    '',
    'restores and boots of the last saver\'s file',
    'target   fill s  file MiB  concordutl restore s (CPU s, peak RSS MiB)  etcdctl restore s (CPU s, peak RSS MiB)  boot concord/etcd s',
    ...results.map((r) => `${r.target.padEnd(8)} ${f(r.fillS).padStart(6)}  ${f(r.fileMiB).padStart(8)}  ${`${f(r.importS, 2)} (${f(r.importCpuS, 2)}, ${f(r.importPeakRssMiB, 0)})`.padStart(42)}  ${`${f(r.etcdRestoreS, 2)} (${f(r.etcdRestoreCpuS, 2)}, ${f(r.etcdRestorePeakRssMiB, 0)})`.padStart(39)}  ${`${f(r.concordBootS, 2)}/${f(r.etcdBootS, 2)}`.padStart(19)}`),
    ...(o.timeline ? rows.flatMap(({ v, name }) => ['', `${name.trim()} second by second`, ...v.timeline]) : []),
  ];
  return { results, table: lines.join('\n') };
}

function opt(name: string, env: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && process.argv[i + 1] !== undefined) return process.argv[i + 1]!;
  return process.env[env] ?? def;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const targets = opt('targets', 'BENCH_TARGETS', 'etcd,concord').split(',') as TargetName[];
  const savers = opt('savers', 'BENCH_SNAPSHOT_SAVERS', 'none,etcdctl,concordctl').split(',') as Saver[];
  const nodeArgs = opt('node-args', 'BENCH_SNAPSHOT_NODE_ARGS', '').split(' ').filter(Boolean);
  snapshotBench(targets, Number(opt('mb', 'BENCH_SNAPSHOT_MB', '256')), { savers, timeline: process.argv.includes('--timeline'), nodeArgs, gcLog: opt('gc-log', 'BENCH_SNAPSHOT_GC_LOG', ''), metrics: !process.argv.includes('--no-metrics') }).then(({ table }) => console.log(table), (e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
