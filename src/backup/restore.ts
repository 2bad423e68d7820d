// `concordutl snapshot restore`: a new Concord data dir from an etcd snapshot file (one saved
// from etcd or from Concord: both are etcd's bbolt file). As etcd's restore: the file is
// checked first (sha256), the data dir must not exist, the data keeps its revisions, and the
// member starts a new cluster from --initial-cluster (new member and cluster ids). Nothing is
// left behind on failure: the data dir is built under a temporary name and renamed at the end.

import fs from 'node:fs';
import path from 'node:path';
import { AlarmMember } from '../proto/index.js';
import type { BoltReader } from '../bbolt/index.js';
import { verifySnapshotFile, openSnapshotDb } from '../snapshot/index.js';
import { DB_NAMES, type Backend, type DbName } from '../storage/index.js';
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

/** Entries copied between two commits of the new backend (its write buffer stays bounded). */
const commitEveryEntries = 10_000;

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
    const alarms = readAlarms(db.reader);
    const ids = await writeRestoredMember({ ...o, dataDir: tmpDir, walDir: tmpWal }, alarms, (backend) => copyData(db.reader, backend, o, dbBytes));
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

/** Every bucket Concord keeps, entry for entry, but the old cluster's members and raft position. */
async function copyData(reader: BoltReader, backend: Backend, o: RestoreOptions, totalBytes: number): Promise<void> {
  const known = new Set<string>(DB_NAMES);
  let done = 0;
  let sinceCommit = 0;
  const put = async (db: DbName, key: Buffer, value: Buffer): Promise<void> => {
    backend.put(db, key, value);
    done += key.length + value.length;
    if (++sinceCommit === commitEveryEntries) {
      sinceCommit = 0;
      await backend.forceCommit();
      o.progress?.(done, totalBytes);
    }
  };
  for (const nameBytes of reader.bucketNames()) {
    const name = nameBytes.toString('latin1');
    if (!known.has(name)) {
      o.log.warn('skipping a bucket Concord does not keep', { bucket: name });
      continue;
    }
    if (name === 'members' || name === 'members_removed' || name === 'alarm') continue;
    for (const e of reader.bucket(nameBytes)!) {
      if (e.isBucket || (name === 'meta' && raftPositionKeys.has(e.key.toString('latin1')))) continue;
      await put(name as DbName, Buffer.from(e.key), Buffer.from(e.value));
    }
  }
  for (const [key, value] of o.extraKeyEntries ?? []) await put('key', key, value);
  o.progress?.(totalBytes, totalBytes);
}

/** etcd's alarm bucket: each key a marshalled AlarmMember. */
function readAlarms(reader: BoltReader): AlarmMember[] {
  const bucket = reader.bucket(Buffer.from('alarm'));
  if (bucket === undefined) return [];
  return [...bucket].map((e) => AlarmMember.decode(e.key));
}
