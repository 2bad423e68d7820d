/**
 * --snapshot-count: once that many entries have been applied since the last raft snapshot,
 * take one (membership and cluster version as its data, in etcd's v2 store JSON), save it to snap/ and
 * the WAL, compact the in-memory raft log (keeping a tail for slow followers) and release
 * WAL segments wholly before it, so the WAL does not grow without bound.
 *
 * Runs on the raft loop between Readies (no WAL write in flight).
 */
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Wal, Snapshotter } from '../wal/index.js';
import type { MvccStore } from '../mvcc/index.js';
import type { Logger } from '../log/index.js';
import type { Membership } from './membership.js';
import type { RaftNode } from './raft-node.js';
import { v2StoreOfMembership } from './v2-store.js';

/** Entries kept in memory behind a snapshot so a slightly slow follower needs no snapshot. */
const snapshotCatchUpEntries = 5000;

export class SnapshotPolicy {
  constructor(private readonly o: {
    snapshotCount: number; log: Logger; store: MvccStore; raft: RaftNode; wal: Wal;
    snapshotter: Snapshotter; membership: Membership; clusterVersion: () => string | undefined;
    snapDir: string; maxSnapshots: number;
  }) {}

  /**
   * Takes a snapshot when --snapshot-count entries were applied since the last one; undefined
   * (no promise: the raft loop calls this between every two Readies) when none is due.
   */
  maybeSnapshot(): Promise<void> | undefined {
    const { o } = this;
    // Counted from raft's newest snapshot, which may be one installed from the leader (etcd
    // sets snapi to the installed index): a snapshot below it would go back in time.
    if (o.snapshotCount <= 0 || o.raft.appliedIndex - o.raft.snapshotIndex <= o.snapshotCount) return undefined;
    return this.snapshot();
  }

  private async snapshot(): Promise<void> {
    const { o } = this;
    const applied = o.raft.appliedIndex;
    const snapIndex = o.raft.snapshotIndex;
    o.log.info('triggering snapshot', { 'local-member-applied-index': applied, 'local-member-snapshot-index': snapIndex, 'local-member-snapshot-count': o.snapshotCount });
    // The backend must hold everything up to `applied` before the WAL before it is released.
    await o.store.forceCommit();
    // etcd's v2 store JSON, as etcd's snapshots carry: an etcd follower installs it as it is.
    const data = v2StoreOfMembership(o.membership, o.clusterVersion(), applied);
    const snap = await o.raft.snapshot(Buffer.from(data), snapshotCatchUpEntries);
    await o.wal.releaseLockTo(snap.metadata.index);
    await this.purgeSnapFiles();
  }

  /** Keeps the newest `maxSnapshots` snap files (etcd's --max-snapshots purge; 0 = keep all). */
  private async purgeSnapFiles(): Promise<void> {
    const max = this.o.maxSnapshots;
    if (max <= 0) return;
    const names = await this.o.snapshotter.snapNames(); // newest first
    for (const name of names.slice(max)) {
      await unlink(join(this.o.snapDir, name)).catch(() => undefined);
      this.o.log.info('purged', { path: join(this.o.snapDir, name) });
    }
  }
}
