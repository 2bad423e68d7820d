/**
 * Rebuilds a configuration from a ConfState (a snapshot's, or storage's at startup) by
 * replaying it as changes through the Changer, as etcd-io/raft's confchange.Restore: first the
 * outgoing voters one by one, then (if joint) entering the joint configuration with the rest.
 */
import { type ConfChangeSingle, ConfChangeType, type ConfState, type NodeId } from '../../proto/index.js';
import { emptyTrackerConfig } from '../tracker.js';
import { type ChangeResult, Changer } from './changer.js';

export function restoreConfState(cs: ConfState): ChangeResult {
  const add = (nodeId: NodeId): ConfChangeSingle => ({ type: ConfChangeType.ConfChangeAddNode, nodeId });
  const learner = (nodeId: NodeId): ConfChangeSingle => ({ type: ConfChangeType.ConfChangeAddLearnerNode, nodeId });
  const incoming: ConfChangeSingle[] = [
    ...cs.votersOutgoing.map((nodeId) => ({ type: ConfChangeType.ConfChangeRemoveNode, nodeId })),
    ...cs.voters.map(add),
    ...cs.learners.map(learner),
    ...cs.learnersNext.map(learner),
  ];
  let result: ChangeResult = { config: emptyTrackerConfig(), tracked: new Set(), fresh: new Set() };
  const step = (f: (c: Changer) => ChangeResult): void => {
    const fresh = result.fresh;
    result = f(new Changer(result.config, result.tracked));
    for (const id of fresh) if (result.tracked.has(id)) result.fresh.add(id);
  };
  if (cs.votersOutgoing.length === 0) {
    for (const cc of incoming) step((c) => c.simple([cc]));
  } else {
    for (const id of cs.votersOutgoing) step((c) => c.simple([add(id)]));
    step((c) => c.enterJoint(cs.autoLeave, incoming));
  }
  return result;
}

