/** raft/quorum: majority and joint configurations (commit index and vote arithmetic). */
export { MajorityConfig, cmpId } from './majority.js';
export type { VoteResult, AckedIndexer } from './majority.js';
export { JointConfig } from './joint.js';
