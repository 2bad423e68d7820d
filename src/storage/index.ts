/**
 * storage/: the LMDB backend. One environment (`<dataDir>/member/snap/concord.lmdb`) with
 * etcd's buckets as named databases, a read-your-writes write buffer committed in batches,
 * size and size in use, defrag, and point-in-time copies for snapshots.
 */
export { Backend, backendPath, DB_NAMES } from './backend.js';
export type { BackendOptions, BackendReadView, BackendSnapshotFile, DbName, ScanOptions } from './backend.js';
