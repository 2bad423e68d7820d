// snapshot save (from a member), status and restore (offline, on a file). status and restore
// use the snapshot/backup code of the program that runs concordctl (Io.snapshots; concordctl
// passes concordutl's), so ctl/ stays on client/ alone. restore writes a Concord data dir.
import { open, rename, rm } from 'node:fs/promises';
import { CtlExit, ExitCode } from '../exit.js';
import { describeError, describeFileError } from '../errors.js';
import { humanizeBytes } from '../format.js';
import type { Ctx } from '../context.js';
import { boolFlag, strFlag, type Command } from '../command.js';
import type { SnapshotFileStatus, SnapshotRestoreConfig, SnapshotTools } from '../io.js';

function toolsOf(ctx: Ctx): SnapshotTools {
  const tools = ctx.io.snapshots;
  if (tools === undefined) throw new CtlExit(ExitCode.BadFeature, 'snapshot status and restore are not available in this program');
  return tools;
}

/**
 * Bytes of the saved file written between two fdatasyncs. etcdctl fsyncs once at the end, so
 * a 1 GiB snapshot is 1 GiB of dirty page cache flushed at once, and every other fsync on the
 * disk (the member's own WAL, when it is on the same disk) waits behind it: a put pause of
 * seconds. Syncing as it goes keeps each flush this small. (Measured in bench/snapshot.ts.)
 */
const syncEveryBytes = 32 * 1024 * 1024;
/** Chunks gathered into one write (the stream's are 32 KiB). */
const writeBatchBytes = 1024 * 1024;

/** A file written in batches and fdatasynced every syncEveryBytes; `close` fsyncs it (etcdctl's fileutil.Fsync) first. */
async function syncingFile(path: string): Promise<{ write(chunk: Buffer): Promise<void>; close(): Promise<void>; destroy(): Promise<void> }> {
  const fh = await open(path, 'w', 0o600);
  let batch: Buffer[] = [];
  let batched = 0;
  let unsynced = 0;
  const flush = async () => {
    if (batch.length > 0) await fh.writev(batch);
    unsynced += batched;
    batch = [];
    batched = 0;
  };
  return {
    async write(chunk) {
      batch.push(chunk);
      batched += chunk.length;
      if (batched < writeBatchBytes) return;
      await flush();
      if (unsynced < syncEveryBytes) return;
      await fh.datasync();
      unsynced = 0;
    },
    async close() {
      await flush();
      await fh.sync();
      await fh.close();
    },
    destroy: () => fh.close(),
  };
}

/** etcd's hasChecksum: a snapshot is whole pages (multiples of 512 bytes) then a sha256. */
const hasChecksum = (size: number): boolean => size % 512 === 32;

async function snapshotSave(ctx: Ctx): Promise<void> {
  if (ctx.args.length !== 1) throw new CtlExit(ExitCode.BadArgs, 'snapshot save expects one argument');
  if (ctx.globals.endpoints.length !== 1) throw new CtlExit(ExitCode.BadArgs, `snapshot must be requested to one selected node, not multiple [${ctx.globals.endpoints.join(' ')}]`);
  const path = ctx.args[0]!;
  const ep = ctx.globals.endpoints[0]!;
  const partPath = `${path}.part`;
  await rm(partPath, { force: true });
  let file: Awaited<ReturnType<typeof syncingFile>>;
  try {
    file = await syncingFile(partPath);
  } catch (e) {
    throw new CtlExit(ExitCode.Interrupted, `could not open ${partPath} (${describeFileError(e, 'open')})`);
  }
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
      await file.write(chunk);
      bar?.update(size, total);
    }
    bar?.done();
    log({ ts: iso(), caller: 'clientv3/maintenance.go:208', msg: 'completed snapshot read; closing' });
    if (!hasChecksum(size)) throw new Error(`sha256 checksum not found [bytes: ${size}]`);
    await file.close();
  } catch (e) {
    bar?.done();
    await file.destroy().catch(() => {});
    await rm(partPath, { force: true });
    throw new CtlExit(ExitCode.Interrupted, describeError(e));
  }
  log({ ts: epoch(), caller: 'snapshot/v3_snapshot.go:142', msg: 'fetched snapshot', endpoint: ep, size: humanizeBytes(size), took: Number(process.hrtime.bigint() - start) / 1e9 });
  await rename(partPath, path);
  log({ ts: epoch(), caller: 'snapshot/v3_snapshot.go:152', msg: 'saved', path });
  ctx.io.stdout(`Snapshot saved at ${path}\n`);
}

async function snapshotStatus(ctx: Ctx): Promise<void> {
  if (ctx.args.length !== 1) throw new CtlExit(ExitCode.BadArgs, 'snapshot status requires exactly one argument');
  let st: SnapshotFileStatus;
  try {
    st = await toolsOf(ctx).status(ctx.args[0]!);
  } catch (e) {
    if (e instanceof CtlExit) throw e;
    throw new CtlExit(ExitCode.Error, describeFileError(e, 'stat'));
  }
  ctx.display.dbStatus(st);
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
