/**
 * backup/: the offline tools behind concordutl.
 *
 * - `restoreSnapshot`: a new Concord data dir from an etcd snapshot file.
 * - `ContinuousBackup`: a snapshot, then the watch stream saved in segments (segments.ts);
 *   `restoreToRevision`: a chain's snapshot plus its events up to a revision (`revisionAtTime`
 *   finds the revision on disk at a wall-clock time).
 */
export { restoreSnapshot } from './restore.js';
export type { RestoreOptions } from './restore.js';
export { ContinuousBackup, snapshotRevision } from './continuous.js';
export type { ContinuousBackupOptions } from './continuous.js';
export { restoreToRevision, revisionAtTime } from './pitr.js';
export type { PitrOptions } from './pitr.js';
export { listChains, listSegments, readSegment, BackupFormatError } from './segments.js';
