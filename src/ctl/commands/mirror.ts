// make-mirror [options] <destination>: etcdctl 3.4's mirror (clientv3/mirror's Syncer): every
// key under --prefix at one revision, put one by one to the destination, then the watch from
// the next revision, each revision's events applied there as one txn. Keys are renamed by
// replacing the first occurrence of --prefix with --dest-prefix (Go's strings.Replace, n=1);
// the count of keys mirrored so far is printed every 30 s. Runs until interrupted.
import { Op, WatchCompactedError, type Client } from '../../client/index.js';
import { CtlExit, ExitCode } from '../exit.js';
import type { Ctx } from '../context.js';
import { boolFlag, strFlag, type Command } from '../command.js';

/** Keys per range page while copying the base state (mirror.batchLimit). */
const pageSize = 1000;
const reportEveryMs = 30_000;

/** Go's strings.Replace(key, from, to, 1) on bytes: an empty `from` inserts `to` in front. */
export function replaceFirst(key: Buffer, from: Buffer, to: Buffer): Buffer {
  const at = key.indexOf(from);
  if (at < 0) return key;
  return Buffer.concat([key.subarray(0, at), to, key.subarray(at + from.length)]);
}

async function makeMirror(ctx: Ctx): Promise<void> {
  if (ctx.args.length !== 1) throw new CtlExit(ExitCode.BadArgs, 'make-mirror takes one destination argument');
  const dest = ctx.clientWith([ctx.args[0]!], {
    cert: ctx.str('dest-cert'), key: ctx.str('dest-key'), cacert: ctx.str('dest-cacert'),
    insecureTransport: ctx.bool('dest-insecure-transport'), user: '', password: '',
  });
  let total = 0;
  const report = setInterval(() => ctx.io.stdout(`${total}\n`), reportEveryMs);
  try {
    const prefix = Buffer.from(ctx.str('prefix'), 'latin1');
    // SyncBase picks the revision first (a get of "foo"); the flags are checked after it, as etcdctl does.
    const revision = (await ctx.call(ctx.client.kv.get('foo', ctx.callOpts))).header!.revision;
    if (ctx.bool('no-dest-prefix') && ctx.str('dest-prefix') !== '') {
      throw new CtlExit(ExitCode.BadArgs, '`--dest-prefix` and `--no-dest-prefix` cannot be set at the same time, choose one');
    }
    const destPrefix = ctx.bool('no-dest-prefix') || ctx.str('dest-prefix') !== '' ? Buffer.from(ctx.str('dest-prefix'), 'latin1') : prefix;
    const rename = (key: Buffer): Buffer => replaceFirst(key, prefix, destPrefix);
    for await (const kv of ctx.client.kv.iterate(prefix, { prefix: true, revision, pageSize })) {
      await dest.kv.put(rename(kv.key), kv.value);
      total++;
    }
    await followUpdates(ctx.client, dest, prefix, revision, rename, () => { total++; });
  } finally {
    clearInterval(report);
    dest.close();
  }
}

/** The watch from `revision + 1`: the events of one revision go to the destination as one txn. */
async function followUpdates(src: Client, dest: Client, prefix: Buffer, revision: number,
  rename: (key: Buffer) => Buffer, counted: () => void): Promise<void> {
  const watcher = src.watch.watch(prefix, { prefix: true, startRevision: revision + 1 });
  try {
    for await (const batch of watcher) {
      let ops: ReturnType<typeof Op.put>[] = [];
      let lastRev = 0;
      for (const ev of batch.events) {
        const rev = ev.kv!.modRevision;
        if (lastRev !== 0 && rev > lastRev) { await dest.kv.txn().then(...ops).commit(); ops = []; }
        lastRev = rev;
        ops.push(ev.type === 1 ? Op.delete(rename(ev.kv!.key)) : Op.put(rename(ev.kv!.key), ev.kv!.value));
        counted();
      }
      if (ops.length > 0) await dest.kv.txn().then(...ops).commit();
    }
  } catch (e) {
    if (e instanceof WatchCompactedError) throw new CtlExit(ExitCode.Error, 'etcdserver: mvcc: required revision has been compacted');
    throw e;
  } finally {
    watcher.close();
  }
}

export const makeMirrorCommand: Command = {
  name: 'make-mirror',
  flags: [
    strFlag('prefix'), strFlag('dest-prefix'), boolFlag('no-dest-prefix'),
    strFlag('dest-cert'), strFlag('dest-key'), strFlag('dest-cacert'),
    { name: 'dest-insecure-transport', kind: 'bool', default: true },
  ],
  run: makeMirror,
};
