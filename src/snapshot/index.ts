/**
 * snapshot/: etcd's snapshot file and Concord's backend, both ways.
 *
 * - `etcdSnapshot`: a backend read view streamed as etcd's bbolt file (Maintenance.Snapshot).
 */
export { etcdSnapshot } from './etcd-snapshot.js';
export type { BucketEntries, BucketReplacements, StreamedSnapshot } from './etcd-snapshot.js';
