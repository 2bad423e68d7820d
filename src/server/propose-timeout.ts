/**
 * Which "request timed out" a proposal gets when raft has not applied it within the request
 * timeout: etcd's parseProposeCtxErr (etcdserver/util.go, server.go), a pure function of what
 * the member knows when the timeout is decided.
 *
 * - it started in the two election timeouts before the current leader was elected:
 *   "...possibly due to previous leader failure";
 * - this member leads, and fewer than a quorum of members (itself counted) have had their
 *   peer connection up since before the proposal started; or a follower whose connection to
 *   the leader came up only after it started (or is down): "...possibly due to connection lost";
 * - otherwise (no leader known included): "request timed out".
 */
import type { ErrorKind } from '../errors/index.js';

export type ProposeTimeout = Extract<ErrorKind, 'Timeout' | 'TimeoutDueToLeaderFail' | 'TimeoutDueToConnectionLost'>;

/** What the member knows at the moment a proposal times out. */
export interface TimeoutView {
  readonly self: bigint;
  /** The leader raft knows of (0n: none). */
  readonly leader: bigint;
  /** Every member's id (learners included, as etcd's cluster.Members()). */
  readonly memberIds: readonly bigint[];
  /** When the current leader was elected (monotonic ms, as `started`). */
  readonly leaderElectedAtMs: number;
  readonly electionTimeoutMs: number;
  /** When the peer connection to `id` became active (wall-clock ms); undefined: not connected. */
  activeSince(id: bigint): number | undefined;
  /** Wall-clock minus monotonic ms now: turns a proposal's monotonic start into the peers' clock. */
  readonly wallOffsetMs: number;
}

/** The timeout error for a proposal that started at `startedMs` (monotonic ms). */
export function proposeTimeout(v: TimeoutView, startedMs: number): ProposeTimeout {
  const leaderLostFrom = v.leaderElectedAtMs - 2 * v.electionTimeoutMs;
  if (startedMs > leaderLostFrom && startedMs < v.leaderElectedAtMs) return 'TimeoutDueToLeaderFail';
  const since = startedMs + v.wallOffsetMs;
  if (v.leader === v.self) {
    const connected = v.memberIds.filter((id) => id === v.self || connectedSince(v, id, since)).length;
    if (connected < Math.floor(v.memberIds.length / 2) + 1) return 'TimeoutDueToConnectionLost';
  } else if (v.leader !== 0n && !connectedSince(v, v.leader, since)) {
    return 'TimeoutDueToConnectionLost';
  }
  return 'Timeout';
}

/** etcd's isConnectedSince: the connection to `id` has been up since before `sinceWallMs`. */
function connectedSince(v: TimeoutView, id: bigint, sinceWallMs: number): boolean {
  const t = v.activeSince(id);
  return t !== undefined && t < sinceWallMs;
}
