/**
 * Whom a stopping leader hands its leadership to: etcd's longestConnected (etcdserver/util.go),
 * the voting member whose peer connection has been up longest. A pure function of the peer
 * transport's connection times, so the choice is testable without a cluster.
 */
import type { PeerActivity } from './cluster-service.js';

/**
 * The voter in `voterIds` connected longest (earliest activeSince), or undefined when none
 * is connected. This member is among the voters and has no connection to itself, so it is
 * never chosen. Ties go to the first in `voterIds`, as in etcd.
 */
export function longestConnected(voterIds: readonly bigint[], peers: PeerActivity): bigint | undefined {
  let longest: bigint | undefined;
  let oldest = Infinity;
  for (const id of voterIds) {
    const since = peers.activeSince(id);
    if (since === undefined || since >= oldest) continue;
    oldest = since;
    longest = id;
  }
  return longest;
}
