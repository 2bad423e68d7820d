/**
 * `concordutl`: offline tools, as etcdutl (etcd 3.5) and etcdctl 3.4's offline `snapshot`
 * commands have them, with their flags, output formats, messages and exit codes:
 *
 *   concordutl snapshot status <file> [-w simple|table|json|fields]
 *   concordutl snapshot restore <file> [--data-dir D] [--wal-dir W] [--name N]
 *       [--initial-cluster C] [--initial-cluster-token T] [--initial-advertise-peer-urls U]
 *       [--skip-hash-check]
 *   concordutl export --data-dir D [--wal-dir W] --out DIR   (a stopped member's data as an etcd data dir)
 *   concordutl hashkv | defrag | wal dump --data-dir D ...   (concordutl-tools.ts)
 *   concordutl backup start --endpoints URL --dir D [--snapshot-interval 30m] [--segment-interval 10s]
 *   concordutl backup restore --from D (--to-revision R | --to-time T) [--data-dir ...and snapshot restore's flags]
 *   concordutl version
 *
 * `backup` goes beyond etcd (the seed's continuous backup, backup/continuous.ts): it runs
 * until SIGINT/SIGTERM, then writes the events it holds and exits 0.
 *
 * bin/concordutl.js calls main(); importing the module runs nothing.
 */
import type { RestoreOptions } from '../backup/index.js';
import type { SnapshotStatus } from '../snapshot/index.js';
import { UsageError } from './concordutl-tools.js';
import { createLogger, humanizeBytes, progressBar } from '../log/index.js';
import { etcdVersion } from './version.js';
import { parseEtcdUrls, parseGoDuration, parseUrlsMap } from './go-flags.js';

const out = (text: string): void => { process.stdout.write(text); };

// Each command loads the layers it uses when it runs (the server's module graph costs most
// of a second of CPU): `version` and usage errors load none, `snapshot status` the snapshot
// reader only.
const backup = () => import('../backup/index.js');
const snapshot = () => import('../snapshot/index.js');
const server = () => import('../server/index.js');
const tools = () => import('./concordutl-tools.js');

/** etcdctl's exit codes (ctlv3/command/error.go). */
const exitError = 1;
const exitBadArgs = 128;

class CommandError extends Error {
  constructor(message: string, readonly code: number) { super(message); }
}

export async function main(argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  try {
    await run(argv);
  } catch (e) {
    const code = e instanceof CommandError ? e.code : e instanceof UsageError ? exitBadArgs : exitError;
    process.stderr.write(`Error: ${(e as Error).message}\n`);
    process.exitCode = code;
  }
}

async function run(argv: readonly string[]): Promise<void> {
  const { positional, flags } = parseArgs(argv, new Set(['skip-hash-check', 'mark-compacted']));
  const [cmd, sub, ...rest] = positional;
  if (cmd === undefined || cmd === 'help') {
    process.stdout.write(usage);
    return;
  }
  if (cmd === 'version') {
    process.stdout.write(`concordutl version: ${etcdVersion}\nAPI version: ${etcdVersion.split('.').slice(0, 2).join('.')}\n`);
    return;
  }
  if (cmd === 'snapshot' && sub === 'status') {
    if (rest.length !== 1) throw new CommandError('snapshot status requires exactly one argument', exitBadArgs);
    const { snapshotStatus } = await snapshot();
    process.stdout.write(formatStatus(snapshotStatus(rest[0]!), flags.get('write-out') ?? flags.get('w') ?? 'simple'));
    return;
  }
  if (cmd === 'snapshot' && sub === 'restore') {
    if (rest.length !== 1) throw new CommandError('snapshot restore requires exactly one argument', exitBadArgs);
    await restore(rest[0]!, flags);
    return;
  }
  if (cmd === 'hashkv' && sub === undefined) return (await tools()).hashkvCommand(flags, out, table);
  if (cmd === 'defrag' && sub === undefined) return (await tools()).defragCommand(flags, out);
  if (cmd === 'wal' && sub === 'dump' && rest.length === 0) return (await tools()).walDumpCommand(flags, out);
  if (cmd === 'export') {
    const dataDir = flags.get('data-dir');
    const out = flags.get('out');
    if (!dataDir || !out || sub !== undefined) throw new CommandError('export requires --data-dir DIR and --out DIR', exitBadArgs);
    const { exportEtcdDataDir } = await server();
    await withProgress('exporting', (progress) => exportEtcdDataDir({ dataDir, out, walDir: flags.get('wal-dir') || undefined, log: createLogger({ caller: false }), progress }));
    return;
  }
  if (cmd === 'backup' && sub === 'start') {
    await runBackup(flags);
    return;
  }
  if (cmd === 'backup' && sub === 'restore') {
    const from = flags.get('from');
    const toTime = flags.get('to-time');
    const atMs = toTime === undefined ? undefined : Date.parse(toTime);
    if (atMs !== undefined && Number.isNaN(atMs)) throw new CommandError(`invalid argument ${JSON.stringify(toTime)} for "--to-time" flag (RFC 3339 time expected)`, exitBadArgs);
    if (atMs !== undefined && flags.has('to-revision')) throw new CommandError('backup restore takes --to-revision or --to-time, not both', exitBadArgs);
    const { revisionAtTime, restoreToRevision } = await backup();
    const to = atMs !== undefined && from ? revisionAtTime(from, atMs) : Number(flags.get('to-revision'));
    if (!from || !Number.isSafeInteger(to) || to <= 0) throw new CommandError('backup restore requires --from DIR and --to-revision N (> 0) or --to-time T', exitBadArgs);
    const { snapshotPath: _unused, skipHashCheck: _skip, ...member } = restoreOptions('', flags);
    await withProgress('restoring', (progress) => restoreToRevision({ ...member, from, toRevision: to, progress }));
    return;
  }
  throw new CommandError(`unknown command ${JSON.stringify(positional.join(' '))} for "concordutl"\n\n${usage}`, exitBadArgs);
}

const usage = `concordutl: offline tools for Concord (and etcd snapshot files)

  concordutl snapshot status <file> [-w simple|table|json|fields]
  concordutl snapshot restore <file> [--data-dir D] [--wal-dir W] [--name N] [--initial-cluster C]
      [--initial-cluster-token T] [--initial-advertise-peer-urls U] [--skip-hash-check]
      [--bump-revision N --mark-compacted]
  concordutl export --data-dir D [--wal-dir W] --out DIR   (an etcd data dir from a stopped member)
  concordutl hashkv --data-dir D [--rev R] [-w simple|json|table]
  concordutl defrag --data-dir D
  concordutl wal dump --data-dir D [--wal-dir W] [--start-index N] [--end-index N] [--entry-type T,...]
  concordutl backup start --endpoints URL --dir D [--snapshot-interval 30m] [--segment-interval 10s]
  concordutl backup restore --from D (--to-revision R | --to-time RFC3339) [snapshot restore's flags]
  concordutl version
`;

/** pflag-style: flags anywhere, `--f v`, `--f=v`, `-w v`; `bools` take no value unless `=`. */
function parseArgs(argv: readonly string[], bools: ReadonlySet<string>): { positional: string[]; flags: Map<string, string> } {
  const positional: string[] = [];
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') { positional.push(...argv.slice(i + 1)); break; }
    if (!a.startsWith('-') || a === '-') { positional.push(a); continue; }
    const body = a.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq >= 0 ? body.slice(0, eq) : body;
    if (eq >= 0) flags.set(name, body.slice(eq + 1));
    else if (bools.has(name)) flags.set(name, 'true');
    else if (i + 1 < argv.length) flags.set(name, argv[++i]!);
    else throw new CommandError(`flag needs an argument: ${a}`, exitBadArgs);
  }
  return { positional, flags };
}

async function runBackup(flags: Map<string, string>): Promise<void> {
  const dir = flags.get('dir');
  const endpoint = (flags.get('endpoints') ?? '127.0.0.1:2379').split(',')[0]!;
  if (!dir) throw new CommandError('backup start requires --dir', exitBadArgs);
  const { ContinuousBackup } = await backup();
  const running = new ContinuousBackup({
    endpoint, dir,
    snapshotIntervalMs: parseGoDuration(flags.get('snapshot-interval') ?? '30m'),
    segmentIntervalMs: parseGoDuration(flags.get('segment-interval') ?? '10s'),
    log: createLogger({ caller: false }),
  });
  const stop = () => running.stop();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await running.run();
}

async function restore(file: string, flags: Map<string, string>): Promise<void> {
  const options = restoreOptions(file, flags);
  const { restoreSnapshot } = await backup();
  await withProgress('restoring', (progress) => restoreSnapshot({ ...options, progress }));
}

/** Runs `work` with a progress bar on stderr when it is a terminal (ended before an error is printed). */
async function withProgress<T>(label: string, work: (progress: (done: number, total: number) => void) => Promise<T>): Promise<T> {
  const bar = progressBar(label, process.stderr);
  try {
    return await work((done, total) => bar.update(done, total));
  } finally {
    bar.done();
  }
}

/** etcdctl snapshot restore's flags and defaults. */
function restoreOptions(file: string, flags: Map<string, string>): RestoreOptions {
  const name = flags.get('name') ?? 'default';
  const peerUrls = (flags.get('initial-advertise-peer-urls') ?? 'http://localhost:2380').split(',');
  const initialCluster = new Map<string, URL[]>();
  for (const [n, urls] of parseUrlsMap(flags.get('initial-cluster') ?? 'default=http://localhost:2380')) initialCluster.set(n, urls.map((u) => new URL(u.text)));
  const skip = flags.get('skip-hash-check') ?? 'false';
  if (skip !== 'true' && skip !== 'false') throw new CommandError(`invalid argument "${skip}" for "--skip-hash-check" flag`, exitBadArgs);
  const walDir = flags.get('wal-dir');
  const bump = Number(flags.get('bump-revision') ?? '0');
  if (!Number.isSafeInteger(bump) || bump < 0) throw new CommandError(`invalid argument ${JSON.stringify(flags.get('bump-revision'))} for "--bump-revision" flag`, exitBadArgs);
  const markCompacted = flags.get('mark-compacted') === 'true';
  if (bump > 0 && !markCompacted) throw new CommandError('--mark-compacted required if --bump-revision > 0', exitBadArgs);
  return {
    bumpRevision: bump, markCompacted,
    snapshotPath: file,
    name,
    dataDir: flags.get('data-dir') || `${name}.etcd`,
    ...(walDir ? { walDir } : {}),
    initialCluster,
    initialAdvertisePeerUrls: parseEtcdUrls(peerUrls).map((u) => new URL(u.text)),
    initialClusterToken: flags.get('initial-cluster-token') ?? 'etcd-cluster',
    skipHashCheck: skip === 'true',
    log: createLogger({ caller: false }),
  };
}

function formatStatus(st: SnapshotStatus, format: string): string {
  const row = [st.hash.toString(16), String(st.revision), String(st.totalKey), humanizeBytes(st.totalSize)];
  switch (format) {
    case 'simple': return `${row.join(', ')}\n`;
    case 'json': return `${JSON.stringify(st)}\n`;
    case 'table': return table(['hash', 'revision', 'total keys', 'total size'], [row]);
    case 'fields': return `"Hash" : ${st.hash}\n"Revision" : ${st.revision}\n"Keys" : ${st.totalKey}\n"Size" : ${st.totalSize}\n`;
    default: throw new CommandError(`unknown output format ${JSON.stringify(format)}`, exitBadArgs);
  }
}

/** olekukonko/tablewriter as etcdctl sets it up: upper-case centred headers, right-aligned cells. */
function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+\n`;
  const centre = (s: string, w: number) => {
    const left = Math.floor((w - s.length) / 2);
    return ' '.repeat(left) + s + ' '.repeat(w - s.length - left);
  };
  const head = `|${header.map((h, i) => ` ${centre(h.toUpperCase(), widths[i]!)} `).join('|')}|\n`;
  const body = rows.map((r) => `|${r.map((c, i) => ` ${c.padStart(widths[i]!)} `).join('|')}|\n`).join('');
  return line + head + line + body + line;
}
