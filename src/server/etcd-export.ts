/**
 * `concordutl export`: an etcd 3.4 data dir from a stopped Concord member, so real etcd boots
 * it as the same member (same member and cluster ids, every key and revision):
 *
 *   member/snap/db                      the backend as etcd's bbolt file (as Maintenance.Snapshot
 *                                       streams it, without the sha256 trailer)
 *   member/snap/%016x-%016x.snap        a raft snapshot at the backend's consistent index whose
 *                                       data is etcd's v2 store holding the membership
 *   member/wal/                         a WAL starting at that snapshot: the member's metadata,
 *                                       hard state (term, vote) and every entry after the index
 *
 * Entries the member persisted but had not applied stay in the WAL, so raft's promises
 * (term, vote, acknowledged entries) hold for the exported member too. Written under a
 * temporary name and renamed at the end: a failed export leaves nothing.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Backend, backendPath } from '../storage/index.js';
import { storedConsistentIndex } from '../mvcc/index.js';
import { etcdSnapshot } from '../snapshot/index.js';
import { Wal, Snapshotter } from '../wal/index.js';
import { Metadata, type ConfState } from '../proto/index.js';
import type { Logger } from '../log/index.js';
import { AlarmSet } from './alarms.js';
import { Membership, idToHex } from './membership.js';
import { v2StoreOfMembership } from './v2-store.js';
import { etcdBucketsOf } from './etcd-server.js';
import { readLog } from './etcd-data-dir.js';
import { membersKey, alarmsKey, alarmsOfRecord } from './member-records.js';

export interface ExportResult { consistentIndex: number; memberId: bigint; clusterId: bigint }

export interface ExportOptions {
  dataDir: string;
  walDir?: string;
  out: string;
  log: Logger;
  /** Called as the bbolt file is written (bytes so far, of `totalBytes`). */
  progress?: (doneBytes: number, totalBytes: number) => void;
}

export async function exportEtcdDataDir(o: ExportOptions): Promise<ExportResult> {
  if (existsSync(o.out)) throw new Error(`out dir ${JSON.stringify(o.out)} exists`);
  const lmdb = backendPath(o.dataDir);
  if (!existsSync(lmdb)) throw new Error(`no Concord backend at ${lmdb}`);
  const { snapshot, metadata, hardState, entries } = await readLog(o.walDir ?? join(o.dataDir, 'member', 'wal'), join(o.dataDir, 'member', 'snap'));
  const tmp = `${o.out}.exporting-${process.pid}`;
  const snapDir = join(tmp, 'member', 'snap');
  mkdirSync(snapDir, { recursive: true, mode: 0o700 });
  const backend = Backend.open({ path: lmdb });
  try {
    const ci = storedConsistentIndex(backend);
    const ciTerm = backend.get('meta', Buffer.from('term'))?.readBigUInt64BE(0) ?? BigInt(entries.find((e) => e.index === ci)?.term ?? snapshot?.metadata.term ?? 0);
    const membersText = backend.get('members', membersKey)?.toString('utf8');
    if (membersText === undefined) throw new Error(`${lmdb} holds no membership record`);
    const membership = Membership.fromJson(membersText);
    const alarms = new AlarmSet(alarmsOfRecord(backend.get('alarm', alarmsKey)));
    o.log.info('exporting backend as etcd\'s bbolt file', { path: lmdb, 'consistent-index': ci });
    const db = await etcdSnapshot(await backend.readView(), etcdBucketsOf(membership, alarms));
    try {
      await writeFileDurably(join(snapDir, 'db'), db.chunks(), (done) => o.progress?.(done, db.size));
    } finally {
      await db.close();
    }
    const clusterVersion = backend.get('cluster', Buffer.from('clusterVersion'))?.toString('utf8');
    await new Snapshotter(snapDir).save({
      data: Buffer.from(v2StoreOfMembership(membership, clusterVersion, ci)),
      metadata: { index: ci, term: Number(ciTerm), confState: confStateOf(membership) },
    });
    const wal = await Wal.create(join(tmp, 'member', 'wal'), metadata);
    await wal.saveSnapshot({ index: ci, term: Number(ciTerm) });
    await wal.save({ ...hardState, commit: Math.max(hardState.commit, ci) }, entries.filter((e) => e.index > ci), true);
    await wal.close();
    renameSync(tmp, o.out);
    const meta = Metadata.decode(metadata);
    o.log.info('exported an etcd data dir', { 'data-dir': o.out, 'consistent-index': ci, 'member-id': idToHex(meta.NodeID ?? 0n), 'cluster-id': idToHex(meta.ClusterID ?? 0n) });
    return { consistentIndex: ci, memberId: meta.NodeID ?? 0n, clusterId: meta.ClusterID ?? 0n };
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  } finally {
    await backend.close();
  }
}

/** Writes the chunks as they come (a chunk may be reused once the next is pulled: written at once), then fsyncs. */
async function writeFileDurably(path: string, chunks: AsyncIterable<Uint8Array>, progress: (doneBytes: number) => void): Promise<void> {
  const fd = openSync(path, 'w', 0o600);
  try {
    let written = 0;
    for await (const chunk of chunks) {
      for (let done = 0; done < chunk.length;) done += writeSync(fd, chunk, done);
      progress(written += chunk.length);
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function confStateOf(m: Membership): ConfState {
  const list = m.list();
  return {
    voters: list.filter((x) => !x.isLearner).map((x) => x.id), learners: list.filter((x) => x.isLearner).map((x) => x.id),
    votersOutgoing: [], learnersNext: [], autoLeave: false,
  };
}
