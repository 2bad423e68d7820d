/**
 * concordutl's offline commands on a stopped member's data dir, with etcdutl's output:
 *
 *   concordutl hashkv --data-dir D [--rev R] [-w simple|json|table]
 *   concordutl defrag --data-dir D
 *   concordutl wal dump --data-dir D [--wal-dir W] [--start-index N] [--end-index N] [--entry-type T,...]
 *
 * `wal dump` prints as etcd-dump-logs does: the snapshot the WAL starts from, the WAL's
 * metadata and hard state, then one line per entry (term, index, conf/norm, the decoded
 * request); --entry-type takes etcd-dump-logs' names (ConfigChange, Normal, Request,
 * IRRPut, IRRRange, IRRDeleteRange, IRRTxn, IRRCompaction, IRRLeaseGrant, IRRLeaseRevoke,
 * IRRLeaseCheckpoint, IRRAlarm, IRRAuth).
 */

/** The server's offline tools, loaded when a command runs (not when concordutl starts). */
const server = () => import('../server/index.js');

/** A bad command line: the caller prints it and exits with etcdctl's bad-args code. */
export class UsageError extends Error {}

type Flags = ReadonlyMap<string, string>;
type Out = (text: string) => void;

function dataDirOf(flags: Flags, cmd: string): string {
  const d = flags.get('data-dir');
  if (!d) throw new UsageError(`${cmd} requires --data-dir`);
  return d;
}

function intFlag(flags: Flags, name: string, def: number): number {
  const v = flags.get(name);
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new UsageError(`invalid argument ${JSON.stringify(v)} for "--${name}" flag`);
  return n;
}

export async function hashkvCommand(flags: Flags, out: Out, table: (h: string[], rows: string[][]) => string): Promise<void> {
  const h = await (await server()).hashKvOfDataDir(dataDirOf(flags, 'hashkv'), intFlag(flags, 'rev', 0));
  const format = flags.get('write-out') ?? flags.get('w') ?? 'simple';
  const row = [String(h.hash), String(h.revision), String(h.compactRevision)];
  if (format === 'simple') out(`${row.join(', ')}\n`);
  else if (format === 'json') out(`${JSON.stringify({ hash: h.hash, hashRevision: h.revision, compactRevision: h.compactRevision })}\n`);
  else if (format === 'table') out(table(['hash', 'hash revision', 'compact revision'], [row]));
  else throw new UsageError(`unknown output format ${JSON.stringify(format)}`);
}

export async function defragCommand(flags: Flags, out: Out): Promise<void> {
  const dataDir = dataDirOf(flags, 'defrag');
  try {
    await (await server()).defragDataDir(dataDir);
  } catch (e) {
    throw new Error(`Failed to defragment etcd data[${dataDir}] (${(e as Error).message})`);
  }
  out(`Finished defragmenting etcd data[${dataDir}]\n`);
}

export async function walDumpCommand(flags: Flags, out: Out): Promise<void> {
  const dataDir = dataDirOf(flags, 'wal dump');
  const start = intFlag(flags, 'start-index', 0);
  const end = intFlag(flags, 'end-index', Number.MAX_SAFE_INTEGER);
  const types = flags.get('entry-type')?.split(',').filter(Boolean);
  const { readWalForDump, describeEntry } = await server();
  const w = await readWalForDump(dataDir, flags.get('wal-dir') || undefined);
  const s = w.snapshot?.metadata;
  out(`Snapshot:\n${s ? `term=${s.term} index=${s.index} nodes=[${[...s.confState.voters, ...s.confState.learners].map((id) => id.toString(16)).join(' ')}]` : 'empty'}\n`);
  out('Start dumping log entries from snapshot.\n');
  out(`WAL metadata:\nnodeID=${w.nodeId.toString(16)} clusterID=${w.clusterId.toString(16)} term=${w.hardState.term} commitIndex=${w.hardState.commit} vote=${w.hardState.vote.toString(16)}\n`);
  out(`WAL entries:\nlastIndex=${w.entries.at(-1)?.index ?? s?.index ?? 0}\nterm\t     index\ttype\tdata\n`);
  let shown = 0;
  for (const e of w.entries) {
    if (e.index < start || e.index > end) continue;
    const d = describeEntry(e);
    if (types && !types.some((t) => t === d.kind || (t === 'Normal' && d.type === 'norm'))) continue;
    out(`${String(e.term).padStart(4)}\t${String(e.index).padStart(10)}\t${d.type}\t${d.text}\n`);
    shown++;
  }
  out(`\nEntry types (${types?.join(',') ?? 'Normal,ConfigChange'}) count is : ${shown}\n`);
}
