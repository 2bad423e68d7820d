/**
 * The Changer computes a new membership configuration from the current one and a list of
 * changes, refusing an invalid request with a ConfChangeError (as etcd-io/raft's
 * confchange.Changer). It never mutates its input: the tracker installs the result.
 *
 * - simple(): at most one voter added or removed (learners freely), outside joint consensus.
 * - enterJoint(): any number of changes; the old voters stay as the outgoing half and must
 *   agree to every decision until leaveJoint().
 * - leaveJoint(): drops the outgoing half; learners-next become learners; voters only in the
 *   outgoing half are removed.
 *
 * A change naming node 0 is ignored, and removing an unknown node is a no-op, as in etcd-io/raft.
 */
import { type ConfChangeSingle, ConfChangeType, type NodeId } from '../../proto/index.js';
import { JointConfig } from '../quorum/joint.js';
import type { TrackerConfig } from '../tracker.js';

export class ConfChangeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfChangeError';
  }
}

/** A computed configuration and which ids it tracks progress for. */
export interface ChangeResult {
  config: TrackerConfig;
  /** Ids that have a Progress in the new configuration. */
  tracked: Set<NodeId>;
  /** Ids whose Progress is new (added, or removed and added again). */
  fresh: Set<NodeId>;
}

/** Mutable working copy of a configuration while changes are applied. */
interface Draft {
  incoming: Set<NodeId>;
  outgoing: Set<NodeId>;
  learners: Set<NodeId>;
  learnersNext: Set<NodeId>;
  autoLeave: boolean;
  tracked: Set<NodeId>;
  fresh: Set<NodeId>;
}

export class Changer {
  constructor(
    private readonly config: TrackerConfig,
    private readonly tracked: ReadonlySet<NodeId>,
  ) {}

  /** Enters a joint configuration: the current voters become the outgoing half. */
  enterJoint(autoLeave: boolean, changes: readonly ConfChangeSingle[]): ChangeResult {
    const d = this.draft();
    if (d.outgoing.size > 0) throw new ConfChangeError('config is already joint');
    if (d.incoming.size === 0) {
      // A joint config with an empty outgoing half would not be joint; refuse rather than guess.
      throw new ConfChangeError("can't make a zero-voter config joint");
    }
    for (const id of d.incoming) d.outgoing.add(id);
    apply(d, changes);
    d.autoLeave = autoLeave;
    return finish(d);
  }

  /** Leaves the joint configuration for the incoming half. */
  leaveJoint(): ChangeResult {
    const d = this.draft();
    if (d.outgoing.size === 0) throw new ConfChangeError("can't leave a non-joint config");
    for (const id of d.learnersNext) d.learners.add(id);
    d.learnersNext.clear();
    for (const id of d.outgoing) {
      if (!d.incoming.has(id) && !d.learners.has(id)) {
        d.tracked.delete(id);
        d.fresh.delete(id);
      }
    }
    d.outgoing.clear();
    d.autoLeave = false;
    return finish(d);
  }

  /** Applies changes that alter at most one voter, outside joint consensus. */
  simple(changes: readonly ConfChangeSingle[]): ChangeResult {
    const d = this.draft();
    if (d.outgoing.size > 0) throw new ConfChangeError("can't apply simple config change in joint config");
    apply(d, changes);
    let changed = 0;
    for (const id of this.config.voters.incoming.ids) if (!d.incoming.has(id)) changed++;
    for (const id of d.incoming) if (!this.config.voters.incoming.has(id)) changed++;
    if (changed > 1) throw new ConfChangeError('more than one voter changed without entering joint config');
    return finish(d);
  }

  private draft(): Draft {
    const c = this.config;
    return {
      incoming: new Set(c.voters.incoming.ids),
      outgoing: new Set(c.voters.outgoing.ids),
      learners: new Set(c.learners),
      learnersNext: new Set(c.learnersNext),
      autoLeave: c.autoLeave,
      tracked: new Set(this.tracked),
      fresh: new Set(),
    };
  }
}

function apply(d: Draft, changes: readonly ConfChangeSingle[]): void {
  for (const cc of changes) {
    if (cc.nodeId === 0n) continue; // etcd-io/raft ignores changes to node 0
    switch (cc.type) {
      case ConfChangeType.ConfChangeAddNode:
        makeVoter(d, cc.nodeId);
        break;
      case ConfChangeType.ConfChangeAddLearnerNode:
        makeLearner(d, cc.nodeId);
        break;
      case ConfChangeType.ConfChangeRemoveNode:
        remove(d, cc.nodeId);
        break;
      case ConfChangeType.ConfChangeUpdateNode:
        break;
      default:
        throw new ConfChangeError(`unexpected conf type ${cc.type as number}`);
    }
  }
  if (d.incoming.size === 0) throw new ConfChangeError('removed all voters');
}

function track(d: Draft, id: NodeId): void {
  if (d.tracked.has(id)) return;
  d.tracked.add(id);
  d.fresh.add(id);
}

function makeVoter(d: Draft, id: NodeId): void {
  track(d, id);
  d.learners.delete(id);
  d.learnersNext.delete(id);
  d.incoming.add(id);
}

function makeLearner(d: Draft, id: NodeId): void {
  if (d.learners.has(id)) return;
  const wasTracked = d.tracked.has(id);
  const wasFresh = d.fresh.has(id);
  remove(d, id);
  // Keep the node's progress: it stays in the group, only its role changes.
  d.tracked.add(id);
  if (!wasTracked || wasFresh) d.fresh.add(id);
  // A voter of the outgoing half votes until the joint config is left: learner only then.
  if (d.outgoing.has(id)) d.learnersNext.add(id);
  else d.learners.add(id);
}

function remove(d: Draft, id: NodeId): void {
  d.incoming.delete(id);
  d.learners.delete(id);
  d.learnersNext.delete(id);
  // A voter of the outgoing half keeps its progress until the joint config is left.
  if (!d.outgoing.has(id)) {
    d.tracked.delete(id);
    d.fresh.delete(id);
  }
}

/** Checks the invariants of the result (a violation is a bug here, so it throws loudly). */
function finish(d: Draft): ChangeResult {
  for (const id of [...d.incoming, ...d.outgoing, ...d.learners, ...d.learnersNext]) {
    if (!d.tracked.has(id)) throw new Error(`raft/confchange: no progress for ${id}`);
  }
  for (const id of d.learnersNext) {
    if (!d.outgoing.has(id)) throw new Error(`raft/confchange: ${id} is in LearnersNext, but not Voters[1]`);
  }
  for (const id of d.learners) {
    if (d.incoming.has(id)) throw new Error(`raft/confchange: ${id} is in Learners and Voters[0]`);
    if (d.outgoing.has(id)) throw new Error(`raft/confchange: ${id} is in Learners and Voters[1]`);
  }
  for (const id of d.tracked) {
    if (!d.incoming.has(id) && !d.outgoing.has(id) && !d.learners.has(id) && !d.learnersNext.has(id)) {
      throw new Error(`raft/confchange: progress for ${id} outside the configuration`);
    }
  }
  if (d.outgoing.size === 0 && (d.learnersNext.size > 0 || d.autoLeave)) {
    throw new Error('raft/confchange: learners_next or autoleave set outside joint config');
  }
  const config: TrackerConfig = {
    voters: new JointConfig(d.incoming, d.outgoing),
    learners: d.learners,
    learnersNext: d.learnersNext,
    autoLeave: d.autoLeave,
  };
  return { config, tracked: d.tracked, fresh: d.fresh };
}
