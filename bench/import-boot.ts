// Boot of an etcd data dir (issue 10's "import of a 1 GB bbolt file"), Concord and real etcd on
// the same bytes, repeated: `etcdctl snapshot restore` makes the data dir once (a template
// kept in --work), each run boots a fresh copy of it with the page cache dropped first (`sync;
// echo 3 > /proc/sys/vm/drop_caches`, as root), so every run reads the file from the disk
// alike. Per run: seconds until the server serves, CPU seconds, peak RSS (VmHWM) and peak
// anonymous RSS (RssAnon polled: mapped file pages the kernel may drop are not the import's
// memory), and for Concord the seconds of each boot phase from its log lines.
//
//   flock /tmp/concord-bench.lock node dist/bench/import-boot.js --file /tmp/x.db [--runs 3]
//     [--targets concord,etcd] [--work /tmp/import-boot] [--node-args "--cpu-prof --cpu-prof-dir=/tmp/p"]
//     [--no-drop-caches] [--logs DIR (each server's log kept there)]
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Server, freePort, type TargetName } from '../test/harness.js';
import { cpuSeconds, rssMiB, run } from './snapshot.js';

function opt(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
}

interface Run { target: TargetName; wallS: number; cpuS: number; peakRssMiB: number; peakAnonMiB: number; phases: string }

/** Log lines that start a boot phase (Concord's JSON log), in the order they come. */
const phaseLines: readonly [string, RegExp][] = [
  ['read log', /"msg":"found an etcd data dir/],
  ['import', /"msg":"importing bbolt database"/],
  ['final sync', /"msg":"imported bbolt database"/],
  ['open', /"msg":"imported the etcd data dir"/],
  ['serve', /"msg":"ready to serve client requests"/],
];

/** Seconds from the process's start to each phase's first log line ("ts" of the JSON lines). */
function phases(log: string, startedEpochMs: number): string {
  const out: string[] = [];
  let prev = startedEpochMs;
  let prevName = 'start';
  for (const [name, re] of phaseLines) {
    const line = log.split('\n').find((l) => re.test(l));
    const ts = line === undefined ? undefined : /"ts":"([^"]+)"/.exec(line)?.[1];
    if (ts === undefined) continue;
    const at = Date.parse(ts);
    out.push(`${prevName} ${((at - prev) / 1000).toFixed(2)}`);
    prev = at;
    prevName = name;
  }
  return out.join(', ');
}

function dropCaches(): void {
  execFileSync('sync');
  writeFileSync('/proc/sys/vm/drop_caches', '3\n');
}

const logDir = opt('logs', '');

async function bootOnce(target: TargetName, template: string, ports: { client: number; peer: number }, nodeArgs: string[], drop: boolean): Promise<Run> {
  const s = new Server({ target, name: 'boot', readyTimeoutMs: 1_200_000, nodeArgs });
  try {
    s.clientPort = ports.client;
    s.peerPort = ports.peer;
    cpSync(template, s.dataDir, { recursive: true });
    if (drop) dropCaches();
    const startedEpochMs = Date.now();
    const started = performance.now();
    let peakAnon = 0;
    const poll = setInterval(() => { if (s.pid !== undefined) try { peakAnon = Math.max(peakAnon, rssMiB(s.pid).anon); } catch { /* exited */ } }, 50);
    try {
      await s.start();
    } finally {
      clearInterval(poll);
    }
    const wallS = (performance.now() - started) / 1000;
    const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${s.pid!}/status`, 'utf8'))?.[1] ?? NaN) / 1024;
    peakAnon = Math.max(peakAnon, rssMiB(s.pid!).anon);
    if (logDir !== '') writeFileSync(join(logDir, `${target}-${Date.now()}.log`), s.log);
    if (target === 'concord' && !/"msg":"imported the etcd data dir"/.test(s.log)) throw new Error('Concord did not import the etcd data dir');
    return { target, wallS, cpuS: cpuSeconds(s.pid!), peakRssMiB: hwm, peakAnonMiB: peakAnon, phases: target === 'concord' ? phases(s.log, startedEpochMs) : '' };
  } finally {
    await s.destroy();
  }
}

async function main(): Promise<void> {
  const file = opt('file', '');
  if (file === '' || !existsSync(file)) throw new Error('--file: an etcd snapshot file (etcdctl snapshot save)');
  const runs = Number(opt('runs', '3'));
  const targets = opt('targets', 'concord,etcd').split(',') as TargetName[];
  const work = opt('work', '/tmp/import-boot');
  const nodeArgs = opt('node-args', '').split(' ').filter((a) => a !== '');
  const drop = !process.argv.includes('--no-drop-caches') && process.getuid?.() === 0;
  const ports = { client: await freePort(), peer: await freePort() };
  const template = join(work, 'template');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const peerUrl = `http://127.0.0.1:${ports.peer}`;
  const restored = await run('etcdctl', ['snapshot', 'restore', file, '--data-dir', template, '--name', 'boot',
    '--initial-cluster', `boot=${peerUrl}`, '--initial-advertise-peer-urls', peerUrl]);
  if (restored.code !== 0) throw new Error(`etcdctl snapshot restore failed: ${restored.stderr}`);
  const dbMiB = statSync(join(template, 'member', 'snap', 'db')).size / 1024 ** 2;
  const results: Run[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      for (const target of targets) {
        const r = await bootOnce(target, template, ports, target === 'concord' ? nodeArgs : [], drop);
        process.stderr.write(`[bench:import-boot] run ${i + 1} ${target}: ${r.wallS.toFixed(2)} s\n`);
        results.push(r);
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  console.log(`boot of etcdctl's restored data dir (db ${dbMiB.toFixed(0)} MiB), caches ${drop ? 'dropped' : 'kept'} before each run; load average at the end ${load}`);
  console.log('target   wall s   CPU s   peak RSS MiB  peak anon MiB  phases (s, from the log)');
  for (const r of results) {
    console.log(`${r.target.padEnd(8)} ${r.wallS.toFixed(2).padStart(6)} ${r.cpuS.toFixed(2).padStart(7)} ${r.peakRssMiB.toFixed(0).padStart(14)} ${r.peakAnonMiB.toFixed(0).padStart(14)}  ${r.phases}`);
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
