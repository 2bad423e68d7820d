/**
 * Installing a leader's snapshot (etcd's applySnapshot): the leader's backend travels beside
 * the MsgSnap as etcd's bbolt file, saved by the peer transport as
 * `<snap dir>/%016x.snap.db` (%016x = the snapshot's index, etcd's name) before raft sees the
 * message. Here it is imported into a fresh LMDB file next to the backend, swapped in by a
 * rename (durable before this resolves), and everything kept in memory is rebuilt from it:
 * leases, the MVCC index and revisions (watchers resync), auth, alarms; membership comes
 * from the snapshot's data (Concord's membership record, or etcd's v2 store when the leader
 * is etcd). Apply is paused meanwhile: the raft loop awaits ApplierPort.restore.
 */
import { existsSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import type { AlarmMember, Snapshot } from '../proto/index.js';
import { storedConsistentIndex, type MvccStore } from '../mvcc/index.js';
import type { Backend } from '../storage/index.js';
import type { Lessor } from '../lease/index.js';
import type { AuthStore } from '../auth/index.js';
import type { Logger } from '../log/index.js';
import { boltConsistentIndex, openSnapshotDb, readEtcdAlarms } from '../snapshot/index.js';
import { importEtcdBackend } from './etcd-data-dir.js';
import { membershipOfSnapshotData } from './v2-store.js';
import type { AlarmSet } from './alarms.js';
import type { Membership } from './membership.js';
import { snapshotDbPath } from './snapshot-db.js';

export interface SnapshotInstallDeps {
  store: MvccStore;
  lessor: Lessor;
  auth: AuthStore;
  membership: Membership;
  alarms: AlarmSet;
  log: Logger;
  clock(): number;
  persistMembership(m: Membership): void;
}

/**
 * The leader's bbolt file for snapshot `snapshot`, imported into a fresh LMDB file at
 * `staging` (durable on return), with the membership of the snapshot's data and the file's
 * alarms. The file must hold every entry up to the snapshot (its consistent index).
 */
async function importLeaderDb(snapDir: string, snapshot: Snapshot, clusterId: bigint, staging: string, log: Logger): Promise<{ membership: Membership; alarms: AlarmMember[] }> {
  const { index } = snapshot.metadata;
  const dbPath = snapshotDbPath(snapDir, index);
  if (!existsSync(dbPath)) throw new Error(`failed to find database snapshot file (snap: snapshot file doesn't exist): ${dbPath}`);
  const membership = membershipOfSnapshotData(snapshot.data ?? new Uint8Array(0), clusterId);
  const db = openSnapshotDb(dbPath, Number.MAX_SAFE_INTEGER);
  try {
    const ci = boltConsistentIndex(db.reader);
    if (ci < index) throw new Error(`etcdserver: the leader's backend ${dbPath} holds consistent index ${ci}, behind its snapshot's index ${index}`);
    const alarms = readEtcdAlarms(db.reader);
    await importEtcdBackend(db.reader, dbPath, staging, membership, alarms, log);
    return { membership, alarms };
  } finally {
    db.close();
  }
}

export async function installSnapshot(d: SnapshotInstallDeps, snapshot: Snapshot): Promise<void> {
  const { index } = snapshot.metadata;
  const backend = d.store.backend;
  const snapDir = dirname(backend.path);
  d.log.info('applying snapshot', { 'incoming-leader-snapshot-index': index, 'incoming-leader-snapshot-term': snapshot.metadata.term });
  const staging = `${backend.path}.restoring`;
  const { membership, alarms } = await importLeaderDb(snapDir, snapshot, d.membership.clusterId, staging, d.log);
  // The lessor before the store: the store re-attaches every key to its lease as it rebuilds.
  await d.store.restoreFrom(async () => {
    await backend.replaceWith(staging);
    d.lessor.reload(d.clock());
  });
  d.auth.reload();
  d.alarms.replaceAll(alarms);
  d.membership.replaceWith(membership);
  d.persistMembership(d.membership);
  await backend.forceCommit();
  rmSync(snapshotDbPath(snapDir, index), { force: true }); // imported: etcd renames it away too
  d.log.info('restored mvcc store from the leader\'s snapshot', { 'snapshot-index': index, 'consistent-index': d.store.consistentIndex(), revision: d.store.currentRevision });
}

/**
 * etcd's recoverSnapshotBackend, at start-up before anything reads the backend: a member
 * that stopped after saving a leader's snapshot (snap file and WAL record) but before its
 * backend took the leader's file has a backend behind that snapshot; the leader's file,
 * still in the snap dir, becomes the backend. Returns whether it did (false: nothing to do).
 */
export async function recoverSnapshotBackend(backend: Backend, snapshot: Snapshot, clusterId: bigint, log: Logger): Promise<boolean> {
  const { index } = snapshot.metadata;
  const snapDir = dirname(backend.path);
  if (storedConsistentIndex(backend) >= index || !existsSync(snapshotDbPath(snapDir, index))) return false;
  log.info('recovering the backend from the leader\'s snapshot file', { 'snapshot-index': index, path: snapshotDbPath(snapDir, index) });
  const staging = `${backend.path}.restoring`;
  await importLeaderDb(snapDir, snapshot, clusterId, staging, log);
  await backend.replaceWith(staging);
  rmSync(snapshotDbPath(snapDir, index), { force: true });
  return true;
}
