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
import { dirname, join } from 'node:path';
import type { Snapshot } from '../proto/index.js';
import type { MvccStore } from '../mvcc/index.js';
import type { Lessor } from '../lease/index.js';
import type { AuthStore } from '../auth/index.js';
import type { Logger } from '../log/index.js';
import { boltConsistentIndex, openSnapshotDb, readEtcdAlarms } from '../snapshot/index.js';
import { importEtcdBackend, membershipOfSnapshotData } from './etcd-data-dir.js';
import type { AlarmSet } from './alarms.js';
import type { Membership } from './membership.js';

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

/** etcd's snap.DBFilePath: where the transport saves the leader's backend for snapshot `index`. */
export function snapshotDbPath(snapDir: string, index: number): string {
  return join(snapDir, `${index.toString(16).padStart(16, '0')}.snap.db`);
}

export async function installSnapshot(d: SnapshotInstallDeps, snapshot: Snapshot): Promise<void> {
  const { index } = snapshot.metadata;
  const backend = d.store.backend;
  const dbPath = snapshotDbPath(dirname(backend.path), index);
  if (!existsSync(dbPath)) throw new Error(`failed to find database snapshot file (snap: snapshot file doesn't exist): ${dbPath}`);
  d.log.info('applying snapshot', { 'incoming-leader-snapshot-index': index, 'incoming-leader-snapshot-term': snapshot.metadata.term });
  const membership = membershipOfSnapshotData(snapshot.data ?? new Uint8Array(0), d.membership.clusterId);
  const staging = `${backend.path}.restoring`;
  const db = openSnapshotDb(dbPath, Number.MAX_SAFE_INTEGER);
  let alarms;
  try {
    const ci = boltConsistentIndex(db.reader);
    if (ci < index) throw new Error(`etcdserver: the leader's backend ${dbPath} holds consistent index ${ci}, behind its snapshot's index ${index}`);
    alarms = readEtcdAlarms(db.reader);
    await importEtcdBackend(db.reader, dbPath, staging, membership, alarms, d.log);
  } finally {
    db.close();
  }
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
  rmSync(dbPath, { force: true }); // imported: etcd renames it away too
  d.log.info('restored mvcc store from the leader\'s snapshot', { 'snapshot-index': index, 'consistent-index': d.store.consistentIndex(), revision: d.store.currentRevision });
}
