/**
 * Membership (voters and learners) and each member's Progress, with the quorum arithmetic:
 * the committed index is the highest index a majority of voters has matched; an election is
 * won with a majority of voters. Learners are tracked but never counted.
 *
 * Only simple configurations (one change at a time) are supported, not joint consensus.
 */
import type { ConfState, NodeId } from '../proto/raftpb.js';
import { Progress } from './progress.js';

export type VoteResult = 'pending' | 'won' | 'lost';

export class ProgressTracker {
  readonly voters = new Set<NodeId>();
  readonly learners = new Set<NodeId>();
  readonly progress = new Map<NodeId, Progress>();
  readonly votes = new Map<NodeId, boolean>();
  private readonly maxInflight: number;
  /** Scratch array for committed(), reused to keep the commit path allocation-free. */
  private scratch: number[] = [];

  constructor(maxInflight: number) {
    this.maxInflight = maxInflight;
  }

  quorum(): number {
    return (this.voters.size >> 1) + 1;
  }

  isSingleVoter(id: NodeId): boolean {
    return this.voters.size === 1 && this.voters.has(id);
  }

  confState(): ConfState {
    return {
      voters: [...this.voters].sort(cmpId),
      learners: [...this.learners].sort(cmpId),
      votersOutgoing: [],
      learnersNext: [],
      autoLeave: false,
    };
  }

  /** Adds (or promotes) a voter; a new one starts probing at `next`. */
  addVoter(id: NodeId, next: number): void {
    this.learners.delete(id);
    this.voters.add(id);
    const pr = this.progress.get(id);
    if (pr) {
      pr.isLearner = false;
      return;
    }
    const p = new Progress(next, this.maxInflight, false);
    p.recentActive = true;
    this.progress.set(id, p);
  }

  /** Adds a learner, or demotes a voter to one. */
  addLearner(id: NodeId, next: number): void {
    this.voters.delete(id);
    this.learners.add(id);
    const pr = this.progress.get(id);
    if (pr) {
      pr.isLearner = true;
      return;
    }
    const p = new Progress(next, this.maxInflight, true);
    p.recentActive = true;
    this.progress.set(id, p);
  }

  remove(id: NodeId): void {
    this.voters.delete(id);
    this.learners.delete(id);
    this.progress.delete(id);
    this.votes.delete(id);
  }

  /** The highest index matched by a quorum of voters. */
  committed(): number {
    const n = this.voters.size;
    if (n === 0) return 0;
    const arr = this.scratch;
    arr.length = 0;
    for (const id of this.voters) arr.push(this.progress.get(id)!.match);
    arr.sort(descending);
    return arr[this.quorum() - 1];
  }

  /** Whether a quorum of voters has been heard from recently (the leader counts itself). */
  quorumActive(self: NodeId): boolean {
    let active = 0;
    for (const id of this.voters) {
      if (id === self || this.progress.get(id)!.recentActive) active++;
    }
    return active >= this.quorum();
  }

  resetVotes(): void {
    this.votes.clear();
  }

  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  tally(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const id of this.voters) {
      const v = this.votes.get(id);
      if (v === true) granted++;
      else if (v === false) rejected++;
    }
    const q = this.quorum();
    const missing = this.voters.size - granted - rejected;
    let result: VoteResult = 'pending';
    if (granted >= q) result = 'won';
    else if (granted + missing < q) result = 'lost';
    return { granted, rejected, result };
  }
}

function descending(a: number, b: number): number {
  return b - a;
}

export function cmpId(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
