/**
 * Booting Concord on an etcd data dir (a stopped etcd member's, or what `etcdctl snapshot
 * restore` wrote): when `member/snap/db` (etcd's bbolt backend) is there and Concord's LMDB
 * backend is not, the bbolt file is imported before the member opens its backend. The WAL
 * and the snap files are etcd's format already (wal/ reads them as they are); what differs:
 *
 * - the backend: bbolt -> LMDB, bucket for bucket (snapshot/'s importBoltBuckets); members
 *   and alarms become Concord's records (the cluster id, which etcd keeps in the WAL's
 *   metadata, goes into the members record);
 * The snap files stay as etcd wrote them: their data, etcd's v2 store (JSON of the /0 and /1
 * trees), is what Concord's own snapshots carry too (server/v2-store.ts).
 *
 * Before anything is written the backend is checked against the WAL and the snap files: its
 * consistent index must be at or past the newest snapshot (etcd's own start-up check) and
 * within the WAL (a backend ahead of the log came from another member or a later copy).
 * bbolt's integrity check runs along the import (the file is read once): a damaged file
 * fails it and the half-done import is removed, never served.
 *
 * Crash safety: the backend is imported under a temporary name and renamed into place last.
 * An interrupted import leaves the data dir as etcd's and starts over on the next boot.
 */
import { closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Backend, backendPath } from '../storage/index.js';
import { importBoltBuckets, boltConsistentIndex, openSnapshotDb, readEtcdAlarms, readEtcdMembers, BoltFormatError, SnapshotFileError } from '../snapshot/index.js';

type BoltReader = Parameters<typeof importBoltBuckets>[0];
import { Wal, Snapshotter, validSnapshotEntries } from '../wal/index.js';
import { Metadata, type AlarmMember, type Entry, type HardState, type Snapshot } from '../proto/index.js';
import type { Logger } from '../log/index.js';
import { KeyIndexRestore } from '../mvcc/index.js';
import { checkBackendMatchesSnapshot } from './bootstrap.js';
import { Membership, memberFromJson } from './membership.js';
import { alarmsRecord, membersKey, alarmsKey } from './member-records.js';

/** etcd's backend file in a data dir. */
export function etcdBackendPath(dataDir: string): string {
  return join(dataDir, 'member', 'snap', 'db');
}

/**
 * Imports an etcd data dir's backend when Concord's is missing; does nothing otherwise.
 * Throws (writing nothing) when the backend does not match the WAL and snap files. Returns
 * the key index built from the key bucket as it was copied (for MvccStore.open: the store is
 * not read again), or undefined when nothing was imported.
 */
export async function adoptEtcdDataDir(dataDir: string, walDir: string, log: Logger): Promise<KeyIndexRestore | undefined> {
  const etcdDb = etcdBackendPath(dataDir);
  const target = backendPath(dataDir);
  if (!existsSync(etcdDb) || existsSync(target)) return undefined;
  if (!(await Wal.exists(walDir))) throw new Error(`found etcd's backend ${etcdDb} but no WAL in ${walDir}: cannot tell which raft entries it holds`);
  log.info('found an etcd data dir; importing its backend', { 'data-dir': dataDir, 'etcd-backend': etcdDb, 'backend': target });
  const snapDir = join(dataDir, 'member', 'snap');
  const { snapshot, clusterId, lastIndex } = await readEtcdLog(walDir, snapDir);
  const db = openSnapshotDb(etcdDb, Number.MAX_SAFE_INTEGER); // etcd's db file: bbolt pages only
  const index = new KeyIndexRestore();
  try {
    checkBackendMatchesLog(etcdDb, boltConsistentIndex(db.reader), snapshot?.metadata.index ?? 0, lastIndex);
    await namingTheFile(etcdDb, async () => {
      const { members, removed } = readEtcdMembers(db.reader);
      const membership = new Membership(clusterId, members.map(memberFromJson), removed);
      await importEtcdBackend(db.reader, etcdDb, `${target}.importing`, membership, readEtcdAlarms(db.reader), log, index);
    });
  } finally {
    db.close();
  }
  renameSync(`${target}.importing`, target);
  rmSync(`${target}.importing-lock`, { force: true });
  fsyncDir(snapDir);
  log.info('imported the etcd data dir', { 'data-dir': dataDir, backend: target });
  return index;
}

/** A data dir's raft log: the newest snapshot both the snap dir and the WAL know, then the WAL after it. */
export async function readLog(walDir: string, snapDir: string): Promise<{ snapshot: Snapshot | undefined; metadata: Uint8Array; hardState: HardState; entries: Entry[] }> {
  const snapshot = await new Snapshotter(snapDir).loadNewestAvailable(await validSnapshotEntries(walDir));
  const wal = await Wal.open(walDir, { index: snapshot?.metadata.index ?? 0, term: snapshot?.metadata.term ?? 0 });
  try {
    const { metadata, hardState, entries } = await wal.readAll();
    return { snapshot, metadata, hardState, entries };
  } finally {
    await wal.close();
  }
}

/** The newest snapshot both the snap dir and the WAL know, the cluster id and the WAL's last index. */
async function readEtcdLog(walDir: string, snapDir: string): Promise<{ snapshot: Snapshot | undefined; clusterId: bigint; lastIndex: number }> {
  const { snapshot, metadata, entries } = await readLog(walDir, snapDir);
  return { snapshot, clusterId: Metadata.decode(metadata).ClusterID ?? 0n, lastIndex: entries.at(-1)?.index ?? snapshot?.metadata.index ?? 0 };
}

/**
 * A damaged db (bbolt's integrity check, made along the import, or a page that cannot be
 * read) is refused with the file named; the half-done import is already removed.
 */
async function namingTheFile(path: string, work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (e) {
    if (e instanceof SnapshotFileError || e instanceof BoltFormatError) throw new Error(`database file ${path}: ${e.message}`, { cause: e });
    throw e;
  }
}

/** The backend holds every entry up to the snapshot (etcd's check) and none past the WAL. */
export function checkBackendMatchesLog(path: string, consistentIndex: number, snapshotIndex: number, lastWalIndex: number): void {
  checkBackendMatchesSnapshot(path, consistentIndex, snapshotIndex);
  if (consistentIndex > lastWalIndex) {
    throw new Error(`database file (${path} index ${consistentIndex}) is ahead of the WAL (last index ${lastWalIndex}): it is not this member's backend`);
  }
}

/**
 * bbolt -> a new LMDB file at `path` (replacing a half-done one) with Concord's records for
 * `membership` and `alarms`; durable on return. `index`, when given, is fed the key bucket's
 * records as they are copied.
 */
export async function importEtcdBackend(reader: BoltReader, etcdDb: string, path: string, membership: Membership, alarms: readonly AlarmMember[], log: Logger, index?: KeyIndexRestore): Promise<void> {
  rmSync(path, { force: true });
  rmSync(`${path}-lock`, { force: true });
  const backend = Backend.open({ path, deferSync: true }); // synced by the forceCommit below, before the rename
  try {
    await importBoltBuckets(reader, backend, { log, path: etcdDb, ...(index ? { onKeyEntry: (k, v) => index.add(k, v) } : {}) });
    backend.put('members', membersKey, Buffer.from(membership.toJson()));
    if (alarms.length > 0) backend.put('alarm', alarmsKey, alarmsRecord(alarms));
    await backend.forceCommit();
  } catch (e) {
    await backend.close();
    rmSync(path, { force: true });
    rmSync(`${path}-lock`, { force: true });
    throw e;
  }
  await backend.close();
}

/** A rename is durable once its directory is synced. */
function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try { fsyncSync(fd); } finally { closeSync(fd); }
}
