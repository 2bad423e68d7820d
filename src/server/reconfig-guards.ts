/**
 * etcd's checks before a membership change is proposed (etcdserver/server.go mayAddMember,
 * mayRemoveMember, mayPromoteMember, isLearnerReady; membership/cluster.go IsReadyTo*):
 * with --strict-reconfig-check a change that would leave fewer started members than a
 * quorum, or that the leader's peer connections say would break the active quorum, is
 * refused before it reaches raft. Pure functions of what the member knows at that moment,
 * so each rule is unit-tested on its own (reconfig-guards.test.ts).
 *
 * "Started" is etcd's Member.IsStarted: the member has published its name. "Connected since"
 * is etcd's rafthttp ActiveSince: when the stream to the peer last became active.
 */
import { etcdError, type EtcdError } from '../errors/index.js';
import type { Member } from './membership.js';

/** etcd's HealthInterval: a peer must have been connected this long to count as active. */
export const healthIntervalMs = 5000;
/** etcd's readyPercent: a learner is in sync once its match index is this share of the leader's. */
export const learnerReadyShare = 0.9;

/** What the guards know of the cluster at the moment of the request. */
export interface ReconfigView {
  readonly self: bigint;
  readonly members: readonly Member[];
  /** When the connection to peer `id` became active (ms, same clock as `nowMs`); undefined: not connected. */
  activeSince(id: bigint): number | undefined;
  readonly nowMs: number;
}

const isStarted = (m: Member): boolean => m.name !== '';
const votersOf = (v: ReconfigView): Member[] => v.members.filter((m) => !m.isLearner);

/** etcd's isConnectedSince(now - HealthInterval); the local member always counts. */
function connectedLongEnough(v: ReconfigView, id: bigint): boolean {
  if (id === v.self) return true;
  const since = v.activeSince(id);
  return since !== undefined && since < v.nowMs - healthIntervalMs;
}

const connectedVoters = (v: ReconfigView, voters: readonly Member[]): number => voters.filter((m) => connectedLongEnough(v, m.id)).length;

/** Started voters after the change against the quorum of the voters after it (IsReadyTo*). */
function startedQuorumHolds(nmembers: number, nstarted: number): boolean {
  return nstarted >= Math.floor(nmembers / 2) + 1;
}

/** mayAddMember: undefined when the add may be proposed. */
export function mayAddMember(v: ReconfigView, isLearner: boolean): EtcdError | undefined {
  const voters = votersOf(v);
  if (!isLearner) {
    const nmembers = voters.length + 1;
    const nstarted = voters.filter(isStarted).length;
    // etcd lets a lone started member take a second voter (restoring a cluster from one member).
    const restoring = nstarted === 1 && nmembers === 2;
    if (!restoring && !startedQuorumHolds(nmembers, nstarted)) return etcdError('MemberNotEnoughStarted');
  }
  if (connectedVoters(v, voters) !== voters.length) return etcdError('Unhealthy');
  return undefined;
}

/** mayRemoveMember: undefined when the removal of `id` may be proposed. */
export function mayRemoveMember(v: ReconfigView, id: bigint): EtcdError | undefined {
  const target = v.members.find((m) => m.id === id);
  if (target?.isLearner) return undefined; // a learner is not part of any quorum
  const voters = votersOf(v);
  const remaining = voters.filter((m) => m.id !== id);
  if (!startedQuorumHolds(remaining.length, remaining.filter(isStarted).length)) return etcdError('MemberNotEnoughStarted');
  // A peer that was never connected is not part of the active quorum: safe to remove.
  if (id !== v.self && v.activeSince(id) === undefined) return undefined;
  const active = connectedVoters(v, voters);
  if (active - 1 < 1 + Math.floor((voters.length - 1) / 2)) return etcdError('Unhealthy');
  return undefined;
}

/**
 * etcd's isLearnerReady, on the leader's raft progress (`match` by member id; undefined on
 * a member that does not lead): NotLeader off the leader; LearnerNotReady while the
 * learner's match index is below 90% of the leader's. A member raft does not track passes
 * (apply refuses it later, as etcd leaves it to apply).
 */
export function learnerReadiness(match: ReadonlyMap<bigint, number> | undefined, leader: bigint, id: bigint): EtcdError | undefined {
  if (match === undefined) return etcdError('NotLeader');
  const learnerMatch = match.get(id);
  if (learnerMatch === undefined) return undefined;
  return learnerMatch < (match.get(leader) ?? 0) * learnerReadyShare ? etcdError('LearnerNotReady') : undefined;
}

/** mayPromoteMember after isLearnerReady: the strict check counts the learner as a started voter. */
export function mayPromoteMember(v: ReconfigView): EtcdError | undefined {
  const voters = votersOf(v);
  return startedQuorumHolds(voters.length + 1, voters.filter(isStarted).length + 1) ? undefined : etcdError('MemberNotEnoughStarted');
}
