/**
 * backup/: the offline tools behind concordutl: a new Concord data dir from an etcd snapshot
 * file (`restoreSnapshot`).
 */
export { restoreSnapshot } from './restore.js';
export type { RestoreOptions } from './restore.js';
