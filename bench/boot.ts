// Boot and import of a large store, real etcd and Concord in the same run (issue 10):
// - an etcd snapshot file of about --mb MiB (4 KiB values, filled into real etcd and saved
//   with etcdctl), or the file given with --file (kept between runs for before/after);
// - restore: `concordutl snapshot restore` beside `etcdctl snapshot restore` of that file;
// - boot: Concord on its restored data dir (the key-index rebuild), etcd on its own;
// - import at boot: Concord on etcdctl's restored data dir (bbolt member/snap/db -> LMDB).
// Each row: wall seconds, CPU seconds (user + system: barely depends on the machine's load,
// unlike wall time) and peak RSS (VmHWM) of the process, a server's up to when it serves.
//
//   node dist/bench/boot.js --mb 256 [--file /tmp/boot.db] [--targets etcd,concord]
import { performance } from 'node:perf_hooks';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Server, REPO_ROOT, freePort } from '../test/harness.js';
import { cpuSeconds, fill, run, runTimed } from './snapshot.js';

interface Row { what: string; wallS: number; cpuS: number; peakRssMiB: number }

function opt(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
}

/** Peak resident set size of `pid` so far (VmHWM), MiB. */
function peakRssMiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? NaN) / 1024;
}

/** An etcd snapshot file of about `mb` MiB: filled into real etcd, saved with etcdctl. */
async function makeSnapshot(mb: number, file: string): Promise<void> {
  const s = new Server({ target: 'etcd', extraArgs: ['--quota-backend-bytes', String(8 * 1024 ** 3)], readyTimeoutMs: 120_000 });
  try {
    await s.start();
    process.stderr.write(`[bench:boot] filling etcd with ${mb} MiB...\n`);
    await fill(s, mb);
    const saved = await s.etcdctl(['snapshot', 'save', file], { timeoutMs: 600_000 });
    if (saved.code !== 0) throw new Error(`etcdctl snapshot save failed: ${saved.stderr}`);
  } finally {
    await s.destroy();
  }
}

/** A server of `target` on a data dir `restore(dataDir, name, peerUrl)` makes; its figures until it serves. */
async function bootRow(what: string, target: 'etcd' | 'concord', restore: (s: Server) => Promise<void>, check?: (log: string) => void): Promise<Row> {
  const s = new Server({ target, name: 'boot', readyTimeoutMs: 1_200_000 });
  try {
    s.clientPort = await freePort();
    s.peerPort = await freePort();
    await restore(s);
    const started = performance.now();
    await s.start();
    const wallS = (performance.now() - started) / 1000;
    const row = { what, wallS, cpuS: cpuSeconds(s.pid!), peakRssMiB: peakRssMiB(s.pid!) };
    check?.(s.log);
    return row;
  } finally {
    await s.destroy();
  }
}

async function restoreWith(cmd: 'etcdctl' | 'concordutl', file: string, s: Server): Promise<void> {
  const args = ['snapshot', 'restore', file, '--data-dir', s.dataDir, '--name', s.name,
    '--initial-cluster', `${s.name}=${s.peerUrl}`, '--initial-advertise-peer-urls', s.peerUrl];
  const r = cmd === 'etcdctl' ? await run('etcdctl', args) : await run(process.execPath, [join(REPO_ROOT, 'bin', 'concordutl.js'), ...args]);
  if (r.code !== 0) throw new Error(`${cmd} snapshot restore failed: ${r.stderr}`);
}

async function main(): Promise<void> {
  const targets = opt('targets', 'etcd,concord').split(',');
  // --file: made there once (kept), then reused by later runs (before/after on the same bytes).
  const given = opt('file', '');
  const tmp = join(tmpdir(), `concord-boot-bench-${process.pid}`);
  const file = given !== '' ? given : `${tmp}.db`;
  if (!existsSync(file)) await makeSnapshot(Number(opt('mb', '256')), file);
  const rows: Row[] = [];
  for (const [what, cmd] of [['concordutl snapshot restore', 'concordutl'], ['etcdctl snapshot restore', 'etcdctl']] as const) {
    if (!targets.includes(cmd === 'etcdctl' ? 'etcd' : 'concord')) continue;
    const dir = `${tmp}-${cmd}`;
    const args = ['snapshot', 'restore', file, '--data-dir', dir];
    const r = cmd === 'etcdctl' ? await runTimed('etcdctl', args, dir) : await runTimed(process.execPath, [join(REPO_ROOT, 'bin', 'concordutl.js'), ...args], dir);
    rmSync(dir, { recursive: true, force: true });
    if (r.code !== 0) throw new Error(`${what} failed: ${r.stderr}`);
    rows.push({ what, wallS: r.ms / 1000, cpuS: r.cpuS, peakRssMiB: r.peakRssMiB });
  }
  if (targets.includes('concord')) {
    rows.push(await bootRow('concord boot, its restored dir', 'concord', (s) => restoreWith('concordutl', file, s)));
    rows.push(await bootRow('concord boot, etcd dir (import)', 'concord', (s) => restoreWith('etcdctl', file, s), (log) => {
      if (!/"msg":"imported the etcd data dir"/.test(log)) throw new Error('Concord did not import the etcd data dir');
    }));
  }
  if (targets.includes('etcd')) rows.push(await bootRow('etcd boot, its restored dir', 'etcd', (s) => restoreWith('etcdctl', file, s)));
  const fileMiB = statSync(file).size / 1024 ** 2;
  if (given === '') rmSync(file, { force: true });
  console.log(`boot/restore of an etcd snapshot file of ${fileMiB.toFixed(0)} MiB (4 KiB values); servers: until they serve`);
  console.log('what                               wall s   CPU s   peak RSS MiB');
  for (const r of rows) console.log(`${r.what.padEnd(34)} ${r.wallS.toFixed(2).padStart(7)} ${r.cpuS.toFixed(2).padStart(7)} ${r.peakRssMiB.toFixed(0).padStart(14)}`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
