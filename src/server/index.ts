/**
 * server/: one Concord member. `startMember` bootstraps or restarts it from its data dir and
 * runs its raft loop; the client API is wired on top by the composition root (cli/).
 * This list is the folder's public face: other folders import these names only.
 */
export { startMember } from './member.js';
export type { RunningMember } from './member.js';
export { EtcdServer, serverVersion, clusterVersion, maxPendingReads } from './etcd-server.js';
export type { EtcdService, HealthReport, BackendSnapshot, WatchHost, Queued, WatchStream, WatchStreamBounds } from './service.js';
export type { ServerConfig } from './config.js';
export { defaultQuotaBackendBytes, maxQuotaBackendBytes, defaultWatchProgressNotifyIntervalMs } from './config.js';
export { urlString } from './ids.js';
export { idToHex } from './membership.js';
export { isTxnReadOnly, isTxnSerializable } from './txn-rules.js';
export { startAutoCompaction } from './compactor.js';
export type { AuthApi, AuthCallOp, AuthInfo } from './auth-server.js';
export { authOff } from './auth-server.js';
