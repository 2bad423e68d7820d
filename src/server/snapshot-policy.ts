/**
 * --snapshot-count: once that many entries have been applied since the last raft snapshot,
 * take one (membership as its data, as etcd keeps the v2 store there), save it to snap/ and
 * the WAL, compact the in-memory raft log (keeping a tail for slow followers) and release
 * WAL segments wholly before it, so the WAL does not grow without bound.
 *
 * Runs on the raft loop between Readies (no WAL write in flight).
 */
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { ConfState } from '../proto/raftpb.js';
import type { MemoryStorage } from '../raft/index.js';
import type { Wal, Snapshotter } from '../wal/index.js';
import type { MvccStore } from '../mvcc/index.js';
import type { Logger } from '../log/index.js';
import type { Membership } from './membership.js';

/** Entries kept in memory behind a snapshot so a slightly slow follower needs no snapshot. */
const snapshotCatchUpEntries = 5000;

export class SnapshotPolicy {
  private snapIndex: number;
  constructor(private readonly o: {
    snapshotCount: number; log: Logger; store: MvccStore; storage: MemoryStorage; wal: Wal;
    snapshotter: Snapshotter; membership: Membership; appliedIndex: number;
    snapDir: string; maxSnapshots: number;
  }) {
    this.snapIndex = o.appliedIndex;
  }

  /** `confState` is read only when a snapshot is due: raft's configuration as of `applied`. */
  async maybeSnapshot(applied: number, confState: () => ConfState): Promise<void> {
    const { o } = this;
    if (o.snapshotCount <= 0 || applied - this.snapIndex <= o.snapshotCount) return;
    o.log.info('triggering snapshot', { 'local-member-applied-index': applied, 'local-member-snapshot-index': this.snapIndex, 'local-member-snapshot-count': o.snapshotCount });
    // The backend must hold everything up to `applied` before the WAL before it is released.
    await o.store.forceCommit();
    const data = Buffer.from(o.membership.toJson());
    const snap = o.storage.createSnapshot(applied, confState(), data);
    await o.snapshotter.save(snap);
    await o.wal.saveSnapshot({ index: snap.metadata.index, term: snap.metadata.term });
    o.log.info('saved snapshot', { 'snapshot-index': snap.metadata.index });
    this.snapIndex = applied;
    // Keep a tail of entries for slow followers. After a restart the log may already start
    // past that point (it begins at the loaded snapshot): then there is nothing to compact.
    const compactIndex = applied - snapshotCatchUpEntries;
    if (compactIndex > o.storage.firstIndex()) {
      o.storage.compact(compactIndex);
      o.log.info('compacted Raft logs', { 'compact-index': compactIndex });
    }
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
