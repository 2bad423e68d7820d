/**
 * Membership (a joint configuration of voters, plus learners) and each member's Progress.
 * Quorum questions go to the joint configuration: the committed index is what both halves
 * have committed, an election or a read round is won when both halves agree. Learners are
 * tracked but never counted. Changes are computed by confchange/'s Changer and installed here
 * with setConfig().
 */
import type { ConfState, NodeId } from '../proto/index.js';
import { JointConfig } from './quorum/joint.js';
import { type VoteResult, cmpId } from './quorum/majority.js';
import { Progress } from './progress.js';

export type { VoteResult };

/** A membership configuration, as etcd-io/raft's tracker.Config. */
export interface TrackerConfig {
  readonly voters: JointConfig;
  /** Learners; never also a voter of either half. */
  readonly learners: ReadonlySet<NodeId>;
  /**
   * Voters of the outgoing half that become learners when the joint configuration is left
   * (a voter cannot turn learner while it still votes in the outgoing half).
   */
  readonly learnersNext: ReadonlySet<NodeId>;
  /** Leave the joint configuration automatically once it is applied. */
  readonly autoLeave: boolean;
}

export function emptyTrackerConfig(): TrackerConfig {
  return { voters: new JointConfig(), learners: new Set(), learnersNext: new Set(), autoLeave: false };
}

/** etcd's rendering: "voters=(1 2)&&(1) learners=(3) learners_next=(4) autoleave". */
export function describeConfig(c: TrackerConfig): string {
  let s = `voters=${c.voters}`;
  if (c.learners.size > 0) s += ` learners=(${sortedIds(c.learners).join(' ')})`;
  if (c.learnersNext.size > 0) s += ` learners_next=(${sortedIds(c.learnersNext).join(' ')})`;
  if (c.autoLeave) s += ' autoleave';
  return s;
}

export function sortedIds(ids: Iterable<NodeId>): NodeId[] {
  return [...ids].sort(cmpId);
}

export class ProgressTracker {
  config: TrackerConfig = emptyTrackerConfig();
  readonly progress = new Map<NodeId, Progress>();
  readonly votes = new Map<NodeId, boolean>();
  readonly maxInflight: number;
  private readonly matchOf = (id: NodeId): number | undefined => this.progress.get(id)?.match;

  constructor(maxInflight: number) {
    this.maxInflight = maxInflight;
  }

  /** Every voter of either half of the joint configuration. */
  voterIds(): Set<NodeId> {
    return this.config.voters.ids();
  }

  isVoter(id: NodeId): boolean {
    return this.config.voters.has(id);
  }

  isSingleVoter(id: NodeId): boolean {
    const v = this.config.voters;
    return !v.isJoint() && v.incoming.size === 1 && v.incoming.has(id);
  }

  confState(): ConfState {
    const c = this.config;
    return {
      voters: c.voters.incoming.slice(),
      learners: sortedIds(c.learners),
      votersOutgoing: c.voters.outgoing.slice(),
      learnersNext: sortedIds(c.learnersNext),
      autoLeave: c.autoLeave,
    };
  }

  /**
   * Installs a configuration computed by the Changer. `fresh` ids get a new Progress starting
   * at `next`; others keep theirs (learner flag updated); ids no longer in it are dropped.
   */
  setConfig(config: TrackerConfig, tracked: ReadonlySet<NodeId>, fresh: ReadonlySet<NodeId>, next: number): void {
    this.config = config;
    for (const id of this.progress.keys()) {
      if (!tracked.has(id)) {
        this.progress.delete(id);
        this.votes.delete(id);
      }
    }
    for (const id of tracked) {
      const isLearner = config.learners.has(id);
      const pr = this.progress.get(id);
      if (pr && !fresh.has(id)) {
        pr.isLearner = isLearner;
        continue;
      }
      const p = new Progress(next, this.maxInflight, isLearner);
      p.recentActive = true;
      this.progress.set(id, p);
    }
  }

  /** The highest index matched by both halves of the voters (0 with no voters at all). */
  committed(): number {
    const c = this.config.voters.committedIndex(this.matchOf);
    return c === Number.POSITIVE_INFINITY ? 0 : c;
  }

  /** Whether a quorum of voters has been heard from recently (the leader counts itself). */
  quorumActive(self: NodeId): boolean {
    const active = new Map<NodeId, boolean>();
    for (const [id, pr] of this.progress) active.set(id, id === self || pr.recentActive);
    return this.config.voters.voteResult(active) === 'won';
  }

  /** Whether the acknowledging ids (a read round's) form a quorum of the voters. */
  quorumOf(acks: ReadonlySet<NodeId>): boolean {
    const votes = new Map<NodeId, boolean>();
    for (const id of acks) votes.set(id, true);
    return this.config.voters.voteResult(votes) === 'won';
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
    for (const id of this.voterIds()) {
      const v = this.votes.get(id);
      if (v === true) granted++;
      else if (v === false) rejected++;
    }
    return { granted, rejected, result: this.config.voters.voteResult(this.votes) };
  }
}

export { cmpId };
