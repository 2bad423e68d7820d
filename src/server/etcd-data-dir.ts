/**
 * Booting Concord on an etcd data dir (a stopped etcd member's, or what `etcdctl snapshot
 * restore` wrote): when `member/snap/db` (etcd's bbolt backend) is there and Concord's LMDB
 * backend is not, the bbolt file is imported before the member opens its backend. The WAL
 * and the snap files are etcd's format already (wal/ reads them as they are); what differs:
 *
 * - the backend: bbolt -> LMDB, bucket for bucket (snapshot/'s importBoltBuckets); members
 *   and alarms become Concord's records (the cluster id, which etcd keeps in the WAL's
 *   metadata, goes into the members record);
 * - the snap files' data: etcd's v2 store (JSON of the /0 and /1 trees) becomes Concord's
 *   membership record, which is all the snapshot data Concord keeps. The original is kept
 *   beside it as `<name>.etcd`.
 *
 * Before anything is written the backend is checked against the WAL and the snap files: its
 * consistent index must be at or past the newest snapshot (etcd's own start-up check) and
 * within the WAL (a backend ahead of the log came from another member or a later copy).
 *
 * Crash safety: the backend is imported under a temporary name and renamed into place last;
 * each snap file is replaced by a rename. An interrupted import leaves the data dir as etcd's
 * (snap files converted or not: converting is idempotent) and starts over on the next boot.
 */
import { closeSync, copyFileSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Backend, backendPath } from '../storage/index.js';
import { importBoltBuckets, boltConsistentIndex, checkSnapshotDb, openSnapshotDb, readEtcdAlarms, readEtcdMembers } from '../snapshot/index.js';

type BoltReader = Parameters<typeof importBoltBuckets>[0];
import { Wal, Snapshotter, readSnapFile, validSnapshotEntries } from '../wal/index.js';
import { Metadata, type AlarmMember, type Entry, type HardState, type Snapshot } from '../proto/index.js';
import type { Logger } from '../log/index.js';
import { checkBackendMatchesSnapshot } from './bootstrap.js';
import { Membership, memberFromJson, type Member } from './membership.js';
import { alarmsRecord, membersKey, alarmsKey } from './member.js';

/** etcd's backend file in a data dir. */
export function etcdBackendPath(dataDir: string): string {
  return join(dataDir, 'member', 'snap', 'db');
}

/**
 * Imports an etcd data dir's backend when Concord's is missing; does nothing otherwise.
 * Throws (writing nothing) when the backend does not match the WAL and snap files.
 */
export async function adoptEtcdDataDir(dataDir: string, walDir: string, log: Logger): Promise<void> {
  const etcdDb = etcdBackendPath(dataDir);
  const target = backendPath(dataDir);
  if (!existsSync(etcdDb) || existsSync(target)) return;
  if (!(await Wal.exists(walDir))) throw new Error(`found etcd's backend ${etcdDb} but no WAL in ${walDir}: cannot tell which raft entries it holds`);
  log.info('found an etcd data dir; importing its backend', { 'data-dir': dataDir, 'etcd-backend': etcdDb, 'backend': target });
  const snapDir = join(dataDir, 'member', 'snap');
  const { snapshot, clusterId, lastIndex } = await readEtcdLog(walDir, snapDir);
  const db = openSnapshotDb(etcdDb, Number.MAX_SAFE_INTEGER); // etcd's db file: bbolt pages only
  try {
    checkBackendMatchesLog(etcdDb, boltConsistentIndex(db.reader), snapshot?.metadata.index ?? 0, lastIndex);
    checkEtcdDb(etcdDb, db.reader);
    const { members, removed } = readEtcdMembers(db.reader);
    const membership = new Membership(clusterId, members.map(memberFromJson), removed);
    await importEtcdBackend(db.reader, etcdDb, `${target}.importing`, membership, readEtcdAlarms(db.reader), log);
  } finally {
    db.close();
  }
  await convertSnapFiles(snapDir, clusterId, log);
  renameSync(`${target}.importing`, target);
  rmSync(`${target}.importing-lock`, { force: true });
  fsyncDir(snapDir);
  log.info('imported the etcd data dir', { 'data-dir': dataDir, backend: target });
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

/** bbolt's integrity check before anything is imported (a damaged db is refused, not half copied). */
function checkEtcdDb(path: string, reader: BoltReader): void {
  try {
    checkSnapshotDb(reader);
  } catch (e) {
    throw new Error(`database file ${path}: ${(e as Error).message}`);
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
 * `membership` and `alarms`; durable on return.
 */
export async function importEtcdBackend(reader: BoltReader, etcdDb: string, path: string, membership: Membership, alarms: readonly AlarmMember[], log: Logger): Promise<void> {
  rmSync(path, { force: true });
  rmSync(`${path}-lock`, { force: true });
  const backend = Backend.open({ path });
  try {
    await importBoltBuckets(reader, backend, { log, path: etcdDb });
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

/** Every snap file holding etcd's v2 store gets Concord's membership record instead. */
async function convertSnapFiles(snapDir: string, clusterId: bigint, log: Logger): Promise<void> {
  const snapshotter = new Snapshotter(snapDir);
  const staging = `${snapDir}.importing`;
  for (const name of await snapshotter.snapNames()) {
    const path = join(snapDir, name);
    const snap = await readSnapFile(path);
    if (isConcordMembership(Buffer.from(snap.data ?? []).toString('utf8'))) continue;
    const membership = membershipOfSnapshotData(snap.data ?? new Uint8Array(0), clusterId);
    rmSync(staging, { recursive: true, force: true });
    mkdirSync(staging, { recursive: true });
    await new Snapshotter(staging).save({ ...snap, data: Buffer.from(membership.toJson()) });
    copyFileSync(path, `${path}.etcd`);
    renameSync(join(staging, name), path);
    log.info('converted an etcd snap file', { path, 'original': `${path}.etcd`, members: membership.size });
  }
  rmSync(staging, { recursive: true, force: true });
}

function isConcordMembership(text: string): boolean {
  return text.startsWith('{"clusterId":');
}

/** A raft snapshot's data as membership: Concord's record, or etcd's v2 store (a snapshot from etcd). */
export function membershipOfSnapshotData(data: Uint8Array, clusterId: bigint): Membership {
  const text = Buffer.from(data).toString('utf8');
  return isConcordMembership(text) ? Membership.fromJson(text) : membershipOfV2Store(text, clusterId);
}

/** A node of etcd's v2 store as its snapshot JSON has it (v2store/node.go). */
interface V2Node { Value?: string; Children?: Record<string, V2Node> | null }

/**
 * Membership from etcd's v2 store JSON: /0/members/<hex id>/raftAttributes
 * ({"peerURLs","isLearner"}) and /attributes ({"name","clientURLs"}), /0/removed_members/<hex id>.
 */
export function membershipOfV2Store(text: string, clusterId: bigint): Membership {
  let root: V2Node | undefined;
  try {
    root = (JSON.parse(text) as { Root?: V2Node }).Root;
  } catch (e) {
    throw new Error(`snap: data is neither Concord's membership nor etcd's v2 store: ${(e as Error).message}`);
  }
  const cluster = root?.Children?.['0']?.Children ?? {};
  const members: Member[] = [];
  for (const [hex, node] of Object.entries(cluster.members?.Children ?? {})) {
    const raft = JSON.parse(node.Children?.raftAttributes?.Value ?? '{}') as { peerURLs?: string[]; isLearner?: boolean };
    const attrs = JSON.parse(node.Children?.attributes?.Value ?? '{}') as { name?: string; clientURLs?: string[] };
    members.push({ id: hexId(hex), name: attrs.name ?? '', peerURLs: raft.peerURLs ?? [], clientURLs: attrs.clientURLs ?? [], isLearner: raft.isLearner ?? false });
  }
  const removed = Object.keys(cluster.removed_members?.Children ?? {}).map(hexId);
  return new Membership(clusterId, members, removed);
}

function hexId(hex: string): bigint {
  if (!/^[0-9a-f]{1,16}$/.test(hex)) throw new Error(`snap: etcd's v2 store names a member ${JSON.stringify(hex)}, not a hex id`);
  return BigInt(`0x${hex}`);
}

/** A rename is durable once its directory is synced. */
function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try { fsyncSync(fd); } finally { closeSync(fd); }
}
