/**
 * snapshot/: etcd's snapshot file and Concord's backend, both ways.
 *
 * - `etcdSnapshot`: a backend read view streamed as etcd's bbolt file (Maintenance.Snapshot).
 * - `verifySnapshotFile`, `openSnapshotDb`, `snapshotStatus`: a snapshot file on disk, checked
 *   as etcd's restore and status check it (sha256 trailer, bbolt integrity), with etcd's messages.
 * - `importBoltBuckets`: a bbolt file streamed into Concord's backend (members and alarms read
 *   apart, `readEtcdMembers`/`readEtcdAlarms`, for the server's own records).
 */
export { etcdSnapshot } from './etcd-snapshot.js';
export type { BucketEntries, BucketReplacements, StreamedSnapshot } from './etcd-snapshot.js';
export { verifySnapshotFile, openSnapshotDb, checkSnapshotDb, snapshotStatus, hasChecksum, SnapshotFileError, sha256Bytes } from './snapshot-file.js';
export type { SnapshotStatus } from './snapshot-file.js';
/** The reader's error for a damaged page, met while importing (bbolt/'s, for layers that may not import bbolt/). */
export { BoltFormatError } from '../bbolt/index.js';
export { importBoltBuckets, boltGet, boltConsistentIndex, readEtcdAlarms, readEtcdMembers } from './import.js';
export type { BoltImportOptions, BoltImportStats } from './import.js';
