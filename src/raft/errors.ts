/** Errors of the raft core, with etcd raft's messages (operators and tests grep for them). */

export type RaftErrorCode =
  | 'Compacted'
  | 'SnapOutOfDate'
  | 'Unavailable'
  | 'SnapshotTemporarilyUnavailable'
  | 'ProposalDropped'
  | 'StepLocalMsg'
  | 'StepPeerNotFound'
  | 'ReadyOutstanding';

const MESSAGES: Record<RaftErrorCode, string> = {
  Compacted: 'requested index is unavailable due to compaction',
  SnapOutOfDate: 'requested index is older than the existing snapshot',
  Unavailable: 'requested entry at index is unavailable',
  SnapshotTemporarilyUnavailable: 'snapshot is temporarily unavailable',
  ProposalDropped: 'raft proposal dropped',
  StepLocalMsg: 'raft: cannot step raft local message',
  StepPeerNotFound: 'raft: cannot step as peer not found',
  ReadyOutstanding: 'raft: ready() called before advance() of the previous Ready',
};

/**
 * Why a proposal was dropped. 'uncommitted-bound': the leader's uncommitted log tail is at
 * maxUncommittedEntriesSize (etcd's server answers "etcdserver: too many requests"); 'no-leader':
 * no leader known, or this node is being removed or hands leadership over (retry later).
 */
export type ProposalDropReason = 'uncommitted-bound' | 'no-leader';

export class RaftError extends Error {
  readonly code: RaftErrorCode;
  /** Set on ProposalDropped errors. */
  readonly dropReason: ProposalDropReason | undefined;
  constructor(code: RaftErrorCode, dropReason?: ProposalDropReason) {
    super(MESSAGES[code]);
    this.name = 'RaftError';
    this.code = code;
    this.dropReason = dropReason;
  }
}

export function isRaftError(e: unknown, code: RaftErrorCode): e is RaftError {
  return e instanceof RaftError && e.code === code;
}
