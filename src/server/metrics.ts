/**
 * Binds the member's state to etcd's metrics (src/metrics): gauges read at scrape time from
 * where the values live (raft's indexes, the backend's size, the key index), and a WAL port
 * that times each synced save into etcd_disk_wal_fsync_duration_seconds.
 */
import { bindCollected, bindIdentity, diskMetrics } from '../metrics/index.js';
import type { WatchableStore } from '../mvcc/index.js';
import type { WalPort } from './ports.js';
import type { RaftNode } from './raft-node.js';
import type { WaitRegistry } from './wait.js';
import { idToHex } from './membership.js';
import { serverVersion } from './etcd-server.js';


export interface MemberMetricsSources {
  memberId: bigint;
  raft: RaftNode;
  watchable: WatchableStore;
  waits: WaitRegistry;
  quotaBytes: number;
  clusterVersion: () => string | undefined;
  defragging: () => boolean;
}

export function bindMemberMetrics(m: MemberMetricsSources): void {
  const { raft, watchable, waits } = m;
  const store = watchable.kv;
  bindIdentity({ serverVersion, clusterVersion: m.clusterVersion, memberIdHex: idToHex(m.memberId) });
  bindCollected({
    etcd_server_has_leader: () => (raft.leader !== 0n ? 1 : 0),
    etcd_server_is_leader: () => (raft.isLeader ? 1 : 0),
    etcd_server_is_learner: () => 0,
    etcd_server_proposals_committed_total: () => raft.commitIndex,
    etcd_server_proposals_applied_total: () => raft.appliedIndex,
    etcd_server_proposals_pending: () => waits.size,
    etcd_server_quota_backend_bytes: () => m.quotaBytes,
    etcd_mvcc_db_total_size_in_bytes: () => store.backend.size(),
    etcd_debugging_mvcc_db_total_size_in_bytes: () => store.backend.size(),
    etcd_mvcc_db_total_size_in_use_in_bytes: () => store.backend.sizeInUse(),
    // Live keys (etcd's keysGauge); the key index also holds deleted keys until compaction.
    etcd_debugging_mvcc_keys_total: () => store.liveKeys(),
    etcd_debugging_mvcc_current_revision: () => store.currentRevision,
    etcd_debugging_mvcc_compact_revision: () => (store.compactRevision > 0 ? store.compactRevision : -1),
    etcd_disk_defrag_inflight: () => (m.defragging() ? 1 : 0),
  });
}

/**
 * The WAL as the raft loop sees it, timing each synced save (write + fdatasync, as etcd's
 * histogram covers the fsync only; the write lands in the page cache and is small beside it).
 */
export function timedWal(wal: WalPort): WalPort {
  return {
    save(hardState, entries, mustSync) {
      if (!mustSync) return wal.save(hardState, entries, mustSync);
      const t0 = performance.now();
      return wal.save(hardState, entries, mustSync).then(() => {
        diskMetrics.walFsync.observe((performance.now() - t0) / 1000);
      });
    },
    saveNow(hardState, entries, mustSync) {
      const t0 = performance.now();
      const done = wal.saveNow?.(hardState, entries, mustSync) ?? false;
      if (done === false || !mustSync) return done;
      const observe = () => diskMetrics.walFsync.observe((performance.now() - t0) / 1000);
      if (done !== true) return done.then(observe);
      observe();
      return true;
    },
    saveSnapshot: (snap) => wal.saveSnapshot(snap),
  };
}
