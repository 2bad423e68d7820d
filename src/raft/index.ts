/**
 * raft/: the consensus core, a pure deterministic state machine in the shape of etcd-io/raft.
 * No I/O, timers, clocks or Math.random: time is tick(), randomness is injected.
 */
export { RawNode, SnapshotStatus } from './rawnode.js';
export type { Ready, SoftState, Status, ProgressStatus, Peer } from './rawnode.js';
export { Raft, StateType, stateName, None } from './raft.js';
export type { RaftConfig } from './raft.js';
export { MemoryStorage, limitSize } from './storage.js';
export type { Storage, InitialState } from './storage.js';
export { RaftError, isRaftError } from './errors.js';
export type { RaftErrorCode, ProposalDropReason } from './errors.js';
export { ProgressState } from './progress.js';
export type { ReadState } from './readindex.js';
export { Changer, ConfChangeError, restoreConfState } from './confchange/index.js';
export type { ChangeResult } from './confchange/index.js';
export { MajorityConfig, JointConfig } from './quorum/index.js';
export type { VoteResult } from './quorum/index.js';
export { describeConfig } from './tracker.js';
export type { TrackerConfig } from './tracker.js';
export { asConfChangeV2, confChangeOfEntry, isLeaveJoint, enterJointAutoLeave } from './raft.js';
