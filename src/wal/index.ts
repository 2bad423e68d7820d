/**
 * wal/: etcd-format write-ahead log segments and raft snapshot files.
 *
 * - `Wal`: create/open/readAll/save/saveSnapshot/releaseLockTo/close over
 *   `%016x-%016x.wal` segments (etcd's record framing and CRC32C chain, byte for byte).
 * - `Snapshotter`: save/load `%016x-%016x.snap` files; corrupt ones are renamed `.broken`.
 * - `validSnapshotEntries` + `Snapshotter.loadNewestAvailable`: pick the newest snapshot
 *   that both the snap dir and the WAL know about, as etcd does on restart.
 */

export { Wal, validSnapshotEntries, DEFAULT_SEGMENT_SIZE_BYTES } from './wal.js';
export type { WalOptions, WalLogger, ReadAllResult, DataSyncer } from './wal.js';
export { BlockingSyncPolicy, meminfoPressure, LOOP_BOUND_MS, WARY_MS } from './blocking-sync-policy.js';
export type { DiskPressureProbe } from './blocking-sync-policy.js';
export { Snapshotter, SnapshotError, readSnapFile } from './snapshotter.js';
export { WalError, WalCorruptError } from './errors.js';
export type { WalErrorCode } from './errors.js';
export { walName, snapName, parseWalName, parseSnapName } from './names.js';
export type { WalSnapshot } from '../proto/index.js';
