// `concordutl snapshot restore`: a new Concord data dir from an etcd snapshot file (one saved
// from etcd or from Concord: both are etcd's bbolt file). As etcd's restore: the file is
// checked first (sha256; bbolt's integrity check along the copy), the data dir must not exist, the data keeps its revisions, and the
// member starts a new cluster from --initial-cluster (new member and cluster ids). Nothing is
// left behind on failure: the data dir is built under a temporary name and renamed at the end.

import fs from 'node:fs';
import path from 'node:path';
import { verifySnapshotFile, openSnapshotDb, importBoltBuckets, readEtcdAlarms } from '../snapshot/index.js';
import { writeRestoredMember, idToHex, type NewMemberConfig } from '../server/index.js';
import type { Logger } from '../log/index.js';
import { revKey } from '../mvcc/index.js';
import type { Backend } from '../storage/index.js';

export interface RestoreOptions extends NewMemberConfig {
  snapshotPath: string;
  skipHashCheck: boolean;
  log: Logger;
  /** Entries added to the key bucket after the snapshot's (point-in-time recovery's replayed events). */
  extraKeyEntries?: Iterable<readonly [Buffer, Buffer]>;
  /** Called as the data is copied (bytes of keys and values so far, of about `totalBytes`). */
  progress?: (doneBytes: number, totalBytes: number) => void;
  /** etcdutl 3.5's --bump-revision: the latest revision is raised by this much. */
  bumpRevision?: number;
  /** etcdutl 3.5's --mark-compacted: the (bumped) latest revision is marked compacted. */
  markCompacted?: boolean;
}

/** Meta keys that belong to the old member's raft log, not to the data (etcd's restore rewinds them too). */
const raftPositionKeys = new Set(['consistent_index', 'term']);

/**
 * etcdutl 3.5's modifyLatestRevision: a revision record (empty value) at latest + bump, so
 * the store resumes past every revision a client may have seen; with markCompacted, a
 * compaction scheduled at it (run when the member opens the store), so watchers and reads
 * from before are told "compacted" rather than served a history that skipped ahead.
 */
function modifyLatestRevision(backend: Backend, latest: number, o: Pick<RestoreOptions, 'bumpRevision' | 'markCompacted' | 'log'>): void {
  const bump = o.bumpRevision ?? 0;
  if (bump > 0) {
    o.log.info('bumping latest revision', { 'latest-revision': latest, 'bump-amount': bump, 'new-latest-revision': latest + bump });
    latest += bump;
    backend.put('key', revKey(latest, 0), Buffer.alloc(0));
  }
  if (o.markCompacted) {
    o.log.info('marking revision compacted', { revision: latest });
    backend.put('meta', Buffer.from('scheduledCompactRev'), revKey(latest, 0));
  }
}

export async function restoreSnapshot(o: RestoreOptions): Promise<{ memberId: bigint; clusterId: bigint }> {
  if (fs.existsSync(o.dataDir)) throw new Error(`data-dir ${JSON.stringify(o.dataDir)} exists`);
  if (o.walDir !== undefined && fs.existsSync(o.walDir)) throw new Error(`wal-dir ${JSON.stringify(o.walDir)} exists`);
  const walDir = o.walDir ?? path.join(o.dataDir, 'member', 'wal');
  o.log.info('restoring snapshot', { path: o.snapshotPath, 'wal-dir': walDir, 'data-dir': o.dataDir, 'snap-dir': path.join(o.dataDir, 'member', 'snap') });
  const { dbBytes } = await verifySnapshotFile(o.snapshotPath, o.skipHashCheck);
  // bbolt's integrity check runs along the import (the file read once more, not twice): a
  // damaged file fails it, and the temporary data dir below is removed.
  const db = openSnapshotDb(o.snapshotPath, dbBytes);
  const tmpDir = `${o.dataDir}.restoring-${process.pid}`;
  const tmpWal = o.walDir === undefined ? undefined : `${o.walDir}.restoring-${process.pid}`;
  try {
    const alarms = readEtcdAlarms(db.reader);
    const ids = await writeRestoredMember({ ...o, dataDir: tmpDir, walDir: tmpWal }, alarms, async (backend) => {
      const { lastKeyRevision } = await importBoltBuckets(db.reader, backend, {
        log: o.log, path: o.snapshotPath, extraKeyEntries: o.extraKeyEntries, progress: o.progress,
        skip: (bucket, key) => bucket === 'meta' && raftPositionKeys.has(key.toString('latin1')),
      });
      modifyLatestRevision(backend, lastKeyRevision, o);
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
