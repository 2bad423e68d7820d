/**
 * server/: one Concord member. `startMember` bootstraps or restarts it from its data dir and
 * runs its raft loop; the client API is wired on top by the composition root (cli/).
 * This list is the folder's public face: other folders import these names only.
 */
export { startMember, writeRestoredMember } from './member.js';
export { exportEtcdDataDir } from './etcd-export.js';
export { hashKvOfDataDir, defragDataDir, readWalForDump, describeEntry } from './offline-tools.js';
export type { DumpedEntry } from './offline-tools.js';
export type { RunningMember, NewMemberConfig } from './member.js';
export type { PeerTls } from './peers.js';
export { EtcdServer, serverVersion, clusterVersion, maxPendingReads } from './etcd-server.js';
export type { EtcdService, RangeAnswer, LeaseService, HealthQuery, HealthReport, BackendSnapshot, WatchHost, Queued, QueuedItem, Fanout, WatchStream, WatchStreamBounds } from './service.js';
export type { ServerConfig } from './config.js';
export { defaultQuotaBackendBytes, maxQuotaBackendBytes, defaultWatchProgressNotifyIntervalMs } from './config.js';
export { urlString } from './ids.js';
export { idToHex } from './membership.js';
export { isTxnReadOnly, isTxnSerializable } from './txn-rules.js';
export { startAutoCompaction } from './compactor.js';

// For test support (simtest/): the real Ready loop and its in-memory ports.
export { RaftNode } from './raft-node.js';
export type { RaftNodeOptions, RaftNodeEvents, RaftTuning } from './raft-node.js';
export type { WalPort, SnapshotterPort, TransportPort, ApplierPort } from './ports.js';
export { MemoryWal, MemorySnapshotter, MemoryNetwork, readBackMemory } from './memory-ports.js';
// ... and the real applier with the requests it applies (simtest/'s key-value mode).
export { testApplier, testMemberOf, startTestMember, type TestMember } from './test-member.js';
export { recoverSnapshotBackend } from './snapshot-install.js';
export type { Applier } from './applier.js';
export type { WaitRegistry, Waiter } from './wait.js';
export { encodeRaftRequest, decodePutRequestBody, decodeTxnRequestBody } from './request-codec.js';
export { memberToJson } from './membership.js';
export { confChangeV2Context } from './membership-change.js';
export { ClusterService } from './cluster-service.js';
export type { ClusterServiceDeps, ClusterRaft, PeerActivity } from './cluster-service.js';
export { memberAttributesPath, attributesToJson } from './membership.js';
export type { Membership } from './membership.js';
export type { AuthApi, AuthCallOp, AuthInfo } from './auth-server.js';
export { authOff } from './auth-server.js';
export { jwtAlgs } from '../auth/index.js';
export type { JwtAlg, JwtOptions, TokenProviderConfig } from '../auth/index.js';
