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

export class RaftError extends Error {
  readonly code: RaftErrorCode;
  constructor(code: RaftErrorCode) {
    super(MESSAGES[code]);
    this.name = 'RaftError';
    this.code = code;
  }
}

export function isRaftError(e: unknown, code: RaftErrorCode): e is RaftError {
  return e instanceof RaftError && e.code === code;
}
