// `concordutl snapshot restore`: a new Concord data dir from an etcd snapshot file (one saved
// from etcd or from Concord: both are etcd's bbolt file). As etcd's restore: the file is
// checked first (sha256), the data dir must not exist, the data keeps its revisions, and the
// member starts a new cluster from --initial-cluster (new member and cluster ids). Nothing is
// left behind on failure: the data dir is built under a temporary name and renamed at the end.

import fs from 'node:fs';
import path from 'node:path';
import { verifySnapshotFile, openSnapshotDb, importBoltBuckets, readEtcdAlarms } from '../snapshot/index.js';
import { writeRestoredMember, idToHex, type NewMemberConfig } from '../server/index.js';
import type { Logger } from '../log/index.js';

export interface RestoreOptions extends NewMemberConfig {
  snapshotPath: string;
  skipHashCheck: boolean;
  log: Logger;
  /** Entries added to the key bucket after the snapshot's (point-in-time recovery's replayed events). */
  extraKeyEntries?: Iterable<readonly [Buffer, Buffer]>;
  /** Called as the data is copied (bytes of keys and values so far, of about `totalBytes`). */
  progress?: (doneBytes: number, totalBytes: number) => void;
}

/** Meta keys that belong to the old member's raft log, not to the data (etcd's restore rewinds them too). */
const raftPositionKeys = new Set(['consistent_index', 'term']);

export async function restoreSnapshot(o: RestoreOptions): Promise<{ memberId: bigint; clusterId: bigint }> {
  if (fs.existsSync(o.dataDir)) throw new Error(`data-dir ${JSON.stringify(o.dataDir)} exists`);
  if (o.walDir !== undefined && fs.existsSync(o.walDir)) throw new Error(`wal-dir ${JSON.stringify(o.walDir)} exists`);
  const walDir = o.walDir ?? path.join(o.dataDir, 'member', 'wal');
  o.log.info('restoring snapshot', { path: o.snapshotPath, 'wal-dir': walDir, 'data-dir': o.dataDir, 'snap-dir': path.join(o.dataDir, 'member', 'snap') });
  const { dbBytes } = await verifySnapshotFile(o.snapshotPath, o.skipHashCheck);
  const db = openSnapshotDb(o.snapshotPath, dbBytes);
  const tmpDir = `${o.dataDir}.restoring-${process.pid}`;
  const tmpWal = o.walDir === undefined ? undefined : `${o.walDir}.restoring-${process.pid}`;
  try {
    const alarms = readEtcdAlarms(db.reader);
    const ids = await writeRestoredMember({ ...o, dataDir: tmpDir, walDir: tmpWal }, alarms, async (backend) => {
      await importBoltBuckets(db.reader, backend, {
        log: o.log, path: o.snapshotPath, extraKeyEntries: o.extraKeyEntries, progress: o.progress,
        skip: (bucket, key) => bucket === 'meta' && raftPositionKeys.has(key.toString('latin1')),
      });
    });
    if (tmpWal !== undefined) fs.renameSync(tmpWal, o.walDir!);
    fs.renameSync(tmpDir, o.dataDir);
    o.log.info('restored snapshot', { path: o.snapshotPath, 'wal-dir': walDir, 'data-dir': o.dataDir, 'member-id': idToHex(ids.memberId), 'cluster-id': idToHex(ids.clusterId) });
    return ids;
  } catch (e) {
    fs.rmSync(tmpDir, { recursive: true, force: true });
    if (tmpWal !== undefined) fs.rmSync(tmpWal, { recursive: true, force: true });
    throw e;
  } finally {
    db.close();
  }
}
