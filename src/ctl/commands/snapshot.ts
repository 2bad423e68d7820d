// snapshot save (from a member), status and restore (offline, on a file). status and restore
// use the snapshot/backup code of the program that runs concordctl (Io.snapshots; concordctl
// passes concordutl's), so ctl/ stays on client/ alone. restore writes a Concord data dir.
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { CtlExit, ExitCode } from '../exit.js';
import { describeError, describeFileError } from '../errors.js';
import { humanizeBytes } from '../format.js';
import type { Ctx } from '../context.js';
import { boolFlag, strFlag, type Command } from '../command.js';

/** etcd's snapshot.Status (its JSON names). */
export interface SnapshotFileStatus { hash: number; revision: number; totalKey: number; totalSize: number }

/** etcd's snapshot.RestoreConfig, as `snapshot restore`'s flags give it. */
export interface SnapshotRestoreConfig {
  snapshotPath: string;
  name: string;
  dataDir: string;
  walDir: string;
  peerUrls: string[];
  initialCluster: string;
  initialClusterToken: string;
  skipHashCheck: boolean;
}

/** The offline snapshot tools concordctl is given. */
export interface SnapshotTools {
  status(path: string): SnapshotFileStatus;
  restore(config: SnapshotRestoreConfig): Promise<void>;
}

function toolsOf(ctx: Ctx): SnapshotTools {
  const tools = ctx.io.snapshots;
  if (tools === undefined) throw new CtlExit(ExitCode.BadFeature, 'snapshot status and restore are not available in this program');
  return tools;
}

async function snapshotSave(ctx: Ctx): Promise<void> {
  if (ctx.args.length !== 1) throw new CtlExit(ExitCode.BadArgs, 'snapshot save expects one argument');
  if (ctx.globals.endpoints.length !== 1) throw new CtlExit(ExitCode.BadArgs, `snapshot must be requested to one selected node, not multiple [${ctx.globals.endpoints.join(' ')}]`);
  const path = ctx.args[0]!;
  const ep = ctx.globals.endpoints[0]!;
  const partPath = `${path}.part`;
  await rm(partPath, { force: true });
  const file = createWriteStream(partPath, { mode: 0o600 });
  // etcdctl's zap lines: the snapshot package logs epoch seconds, clientv3 ISO8601 times.
  const epoch = () => Date.now() / 1000;
  const iso = () => new Date().toISOString();
  const log = (fields: Record<string, unknown>) => ctx.io.stderr(`${JSON.stringify({ level: 'info', ...fields })}\n`);
  log({ ts: epoch(), caller: 'snapshot/v3_snapshot.go:119', msg: 'created temporary db file', path: partPath });
  const start = process.hrtime.bigint();
  let size = 0;
  let total: number | undefined;
  const bar = ctx.io.progress?.('saving snapshot');
  try {
    const chunks = await ctx.client.maintenance.snapshot({ onReceived: (received, remaining) => { total = received + remaining; } });
    log({ ts: iso(), caller: 'clientv3/maintenance.go:200', msg: 'opened snapshot stream; downloading' });
    log({ ts: epoch(), caller: 'snapshot/v3_snapshot.go:127', msg: 'fetching snapshot', endpoint: ep });
    for await (const chunk of chunks) {
      size += chunk.length;
      if (!file.write(chunk)) await new Promise<void>((r) => file.once('drain', () => r()));
      bar?.update(size, total);
    }
    bar?.done();
    log({ ts: iso(), caller: 'clientv3/maintenance.go:208', msg: 'completed snapshot read; closing' });
    await new Promise<void>((res, rej) => file.end((e?: Error | null) => (e ? rej(e) : res())));
  } catch (e) {
    bar?.done();
    file.destroy();
    await rm(partPath, { force: true });
    throw new CtlExit(ExitCode.Interrupted, describeError(e));
  }
  log({ ts: epoch(), caller: 'snapshot/v3_snapshot.go:142', msg: 'fetched snapshot', endpoint: ep, size: humanizeBytes(size), took: Number(process.hrtime.bigint() - start) / 1e9 });
  await rename(partPath, path);
  log({ ts: epoch(), caller: 'snapshot/v3_snapshot.go:152', msg: 'saved', path });
  ctx.io.stdout(`Snapshot saved at ${path}\n`);
}

function snapshotStatus(ctx: Ctx): Promise<void> {
  if (ctx.args.length !== 1) throw new CtlExit(ExitCode.BadArgs, 'snapshot status requires exactly one argument');
  let st: SnapshotFileStatus;
  try {
    st = toolsOf(ctx).status(ctx.args[0]!);
  } catch (e) {
    if (e instanceof CtlExit) throw e;
    throw new CtlExit(ExitCode.Error, describeFileError(e, 'stat'));
  }
  ctx.display.dbStatus(st);
  return Promise.resolve();
}

async function snapshotRestore(ctx: Ctx): Promise<void> {
  if (ctx.args.length !== 1) throw new CtlExit(ExitCode.BadArgs, 'snapshot restore requires exactly one argument');
  const name = ctx.str('name');
  const dataDir = ctx.str('data-dir') || `${name}.etcd`;
  try {
    await toolsOf(ctx).restore({
      snapshotPath: ctx.args[0]!, name, dataDir,
      walDir: ctx.str('wal-dir'),
      peerUrls: ctx.str('initial-advertise-peer-urls').split(','),
      initialCluster: ctx.str('initial-cluster'),
      initialClusterToken: ctx.str('initial-cluster-token'),
      skipHashCheck: ctx.bool('skip-hash-check'),
    });
  } catch (e) {
    if (e instanceof CtlExit) throw e;
    throw new CtlExit(ExitCode.Error, describeFileError(e, 'open'));
  }
}

export const snapshotCommand: Command = {
  name: 'snapshot',
  sub: [
    { name: 'save', run: snapshotSave },
    { name: 'status', run: snapshotStatus },
    {
      name: 'restore',
      flags: [
        strFlag('data-dir'), strFlag('wal-dir'), strFlag('initial-cluster', 'default=http://localhost:2380'),
        strFlag('initial-cluster-token', 'etcd-cluster'), strFlag('initial-advertise-peer-urls', 'http://localhost:2380'),
        strFlag('name', 'default'), boolFlag('skip-hash-check'),
      ],
      run: snapshotRestore,
    },
  ],
};
