/**
 * --force-new-cluster (etcd 3.4's restartAsStandaloneNode): disaster recovery for a cluster
 * that lost its quorum for good. The surviving member keeps every committed entry and its
 * backend, drops the entries that were never committed, and appends conf changes that remove
 * every other member (adding itself first if it is not a member), committed at once. Raft
 * then sees a one-voter cluster and elects this member; new members are added as usual.
 */
import {
  ConfChangeType, EntryType, encodeConfChange, decodeConfChange,
  type Entry, type HardState, type Snapshot,
} from '../proto/index.js';
import type { Logger } from '../log/index.js';
import { idToHex, memberToJson } from './membership.js';

export interface StandaloneLog {
  /** The committed entries read from the WAL, then the appended conf changes. */
  readonly entries: Entry[];
  /** The appended conf changes: the caller saves them to the WAL before raft starts. */
  readonly appended: Entry[];
  /** The hard state raft restarts with: everything above is committed. */
  readonly hardState: HardState;
}

/**
 * The log a forced standalone restart runs on. `entries` are the WAL's entries after the
 * snapshot; `hardState` is the WAL's; `appliedIndex` is the backend's consistent index.
 * Logs etcd's "discarding uncommitted WAL entries".
 *
 * An entry the backend applied was committed, even when the WAL's hard state does not say so
 * yet: a commit-only hard state is written lazily (never synced, by etcd either), so after a
 * kill the WAL's commit can trail what was applied. etcd 3.4 discards from the WAL's commit
 * and appends its conf changes over such an entry: the survivor's backend keeps the write but
 * its log loses it, and a member added later never receives it (seen with etcd 3.4.23 in
 * test/force-new-cluster.test.ts). Concord counts everything up to the applied index as kept.
 */
export function standaloneLog(self: bigint, snapshot: Snapshot | undefined, hardState: HardState, entries: readonly Entry[], appliedIndex: number, log: Logger): StandaloneLog {
  const lastIndex = entries.length > 0 ? entries[entries.length - 1].index : hardState.commit;
  const commit = Math.max(hardState.commit, Math.min(appliedIndex, lastIndex));
  let kept = entries.length;
  const firstUncommitted = entries.findIndex((e) => e.index > commit);
  if (firstUncommitted >= 0) {
    kept = firstUncommitted;
    log.info('discarding uncommitted WAL entries', {
      'entry-index': entries[firstUncommitted].index,
      'commit-index-from-wal': hardState.commit,
      'number-of-discarded-entries': entries.length - firstUncommitted,
    });
  }
  const committed = entries.slice(0, kept);
  const appended = removeOthersEntries(memberIds(snapshot, committed), self, hardState.term, commit);
  const all = committed.concat(appended);
  return { entries: all, appended, hardState: { ...hardState, commit: all.length > 0 ? all[all.length - 1].index : commit } };
}

/**
 * The members as of the end of `entries` (etcd's getIDs), sorted. etcd 3.4 reads only the
 * snapshot's voters, so a learner recorded in a snapshot would survive a forced restart and
 * count for nothing; Concord removes learners too (etcd 3.5 does the same).
 */
export function memberIds(snapshot: Snapshot | undefined, entries: readonly Entry[]): bigint[] {
  const ids = new Set<bigint>();
  const cs = snapshot?.metadata.confState;
  for (const id of cs?.voters ?? []) ids.add(id);
  for (const id of cs?.learners ?? []) ids.add(id);
  for (const e of entries) {
    if (e.type !== EntryType.EntryConfChange) continue;
    const cc = decodeConfChange(e.data ?? new Uint8Array(0));
    switch (cc.type) {
      case ConfChangeType.ConfChangeAddNode:
      case ConfChangeType.ConfChangeAddLearnerNode:
        ids.add(cc.nodeId);
        break;
      case ConfChangeType.ConfChangeRemoveNode:
        ids.delete(cc.nodeId);
        break;
      case ConfChangeType.ConfChangeUpdateNode:
        break;
      default:
        throw new Error(`unknown ConfChange Type ${String(cc.type)}`);
    }
  }
  return [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * etcd's createConfigChangeEnts: add `self` first when it is not a member (raft must never
 * be left without a voter; etcd gives it the placeholder URL http://localhost:2380), then
 * remove every other member, at `term`, from index `commit + 1`.
 */
export function removeOthersEntries(ids: readonly bigint[], self: bigint, term: number, commit: number): Entry[] {
  const out: Entry[] = [];
  let next = commit + 1;
  const entry = (type: ConfChangeType, nodeId: bigint, context?: string): Entry => ({
    term, index: next++, type: EntryType.EntryConfChange,
    data: encodeConfChange({ type, nodeId, id: 0n, ...(context !== undefined ? { context: Buffer.from(context) } : {}) }),
  });
  if (!ids.includes(self)) {
    out.push(entry(ConfChangeType.ConfChangeAddNode, self,
      memberToJson({ id: self, name: '', peerURLs: ['http://localhost:2380'], clientURLs: [], isLearner: false })));
  }
  for (const id of ids) if (id !== self) out.push(entry(ConfChangeType.ConfChangeRemoveNode, id));
  return out;
}

/** etcd's "forcing restart member" line. */
export function logForcedRestart(log: Logger, clusterId: bigint, memberId: bigint, commit: number): void {
  log.info('forcing restart member', { 'cluster-id': idToHex(clusterId), 'local-member-id': idToHex(memberId), 'commit-index': commit });
}
