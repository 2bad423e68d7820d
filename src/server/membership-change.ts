/**
 * Membership changes carried by conf-change entries, validated and applied as etcd's
 * RaftCluster does (ValidateConfigurationChange, AddMember, PromoteMember, RemoveMember,
 * UpdateRaftAttributes), against the membership as of the entry: apply is a pure function
 * of the log, so every member takes the same decision.
 *
 * A ConfChange (v1) carries one change; its context is etcd's: ConfigChangeContext JSON
 * (the member plus "isPromote") for additions, the member JSON for updates, and its `id` is
 * the proposal's request id. A ConfChangeV2 (several changes, joint consensus) has one
 * context for all: Concord's JSON `{"requestId":"<decimal>","members":[<ConfigChangeContext>...]}`
 * naming the member of every addition and update. A V2 is all or nothing: one invalid change
 * refuses the whole of it.
 */
import {
  ConfChangeType, EntryType, decodeConfChange, decodeConfChangeV2,
  type ConfChangeSingle, type ConfChangeV2, type Entry,
} from '../proto/index.js';
import { etcdError, type EtcdError } from '../errors/index.js';
import { memberFromJson, memberToJson, type Member, type Membership } from './membership.js';

/** etcd's maxLearners (membership/cluster.go). */
const maxLearners = 1;

export interface MemberChange {
  type: ConfChangeType;
  nodeId: bigint;
  /** The member an addition or update names (absent for removals). */
  member: Member | undefined;
  /** An AddNode promoting an existing learner (etcd's ConfigChangeContext.IsPromote). */
  isPromote: boolean;
}

export interface MemberChanges {
  /** The proposal's request id (0n: none waits). */
  requestId: bigint;
  changes: MemberChange[];
}

/** The changes a conf-change entry carries, from its bytes. */
export function memberChangesOf(e: Entry): MemberChanges {
  const data = e.data ?? new Uint8Array(0);
  if (e.type === EntryType.EntryConfChange) {
    const cc = decodeConfChange(data);
    const ctx = cc.context && cc.context.length > 0 ? Buffer.from(cc.context).toString('utf8') : undefined;
    return { requestId: cc.id, changes: [change(cc, ctx)] };
  }
  const cc = decodeConfChangeV2(data);
  const text = cc.context && cc.context.length > 0 ? Buffer.from(cc.context).toString('utf8') : '';
  const requestId = BigInt(/"requestId":"(\d+)"/.exec(text)?.[1] ?? '0');
  const contexts = new Map<bigint, string>();
  for (const m of text.matchAll(/\{[^{}]*\}/g)) contexts.set(memberFromJson(m[0]).id, m[0]);
  return { requestId, changes: cc.changes.map((c) => change(c, contexts.get(c.nodeId))) };
}

function change(c: ConfChangeSingle, context: string | undefined): MemberChange {
  return {
    type: c.type, nodeId: c.nodeId,
    member: context !== undefined ? memberFromJson(context) : undefined,
    isPromote: context !== undefined && /"isPromote"\s*:\s*true/.test(context),
  };
}

/** Concord's context of a ConfChangeV2 (see the header). */
export function confChangeV2Context(requestId: bigint, members: ReadonlyArray<{ member: Member; isPromote?: boolean }>): Uint8Array {
  const items = members.map(({ member, isPromote }) => (isPromote ? `${memberToJson(member).slice(0, -1)},"isPromote":true}` : memberToJson(member)));
  return Buffer.from(`{"requestId":"${requestId.toString()}","members":[${items.join(',')}]}`);
}

/**
 * etcd's ValidateConfigurationChange for each change in order, each against the membership
 * as the ones before it leave it. The first refusal, as etcd's error, or undefined.
 */
export function validateMemberChanges(membership: Membership, changes: readonly MemberChange[]): EtcdError | undefined {
  const members = new Map(membership.list().map((m) => [m.id, m]));
  const removed = new Set<bigint>();
  for (const c of changes) {
    if (c.nodeId === 0n) continue; // raft ignores changes to node 0
    if (membership.isRemoved(c.nodeId) || removed.has(c.nodeId)) return etcdError('MemberNotFound');
    const err = validateOne(members, c);
    if (err) return err;
    if (c.type === ConfChangeType.ConfChangeRemoveNode) {
      members.delete(c.nodeId);
      removed.add(c.nodeId);
    } else if (c.member) members.set(c.nodeId, c.isPromote ? { ...members.get(c.nodeId)!, isLearner: false } : c.member);
  }
  return undefined;
}

function validateOne(members: Map<bigint, Member>, c: MemberChange): EtcdError | undefined {
  const existing = members.get(c.nodeId);
  switch (c.type) {
    case ConfChangeType.ConfChangeAddNode:
    case ConfChangeType.ConfChangeAddLearnerNode: {
      if (c.isPromote) {
        if (!existing) return etcdError('MemberNotFound');
        return existing.isLearner ? undefined : etcdError('MemberNotLearner');
      }
      if (existing) return etcdError('MemberExist');
      if (c.member && peerUrlTaken(members, c.member, undefined)) return etcdError('PeerURLExist');
      const learners = [...members.values()].filter((m) => m.isLearner).length;
      if (c.member?.isLearner && learners + 1 > maxLearners) return etcdError('TooManyLearners');
      return undefined;
    }
    case ConfChangeType.ConfChangeRemoveNode:
      return existing ? undefined : etcdError('MemberNotFound');
    case ConfChangeType.ConfChangeUpdateNode:
      if (!existing) return etcdError('MemberNotFound');
      return c.member && peerUrlTaken(members, c.member, c.nodeId) ? etcdError('PeerURLExist') : undefined;
    default:
      return undefined;
  }
}

function peerUrlTaken(members: Map<bigint, Member>, m: Member, except: bigint | undefined): boolean {
  const urls = new Set<string>();
  for (const other of members.values()) if (other.id !== except) for (const u of other.peerURLs) urls.add(u);
  return m.peerURLs.some((u) => urls.has(u));
}

/** What applying one change did, for the caller's log line. */
export type AppliedMemberChange = 'added' | 'promoted' | 'removed' | 'updated' | 'none';

/** Applies one validated change to the membership (etcd's AddMember/PromoteMember/RemoveMember/UpdateRaftAttributes). */
export function applyMemberChange(membership: Membership, c: MemberChange): AppliedMemberChange {
  if (c.nodeId === 0n) return 'none';
  switch (c.type) {
    case ConfChangeType.ConfChangeAddNode:
    case ConfChangeType.ConfChangeAddLearnerNode: {
      const existing = membership.get(c.nodeId);
      if (c.isPromote && existing) {
        membership.add({ ...existing, isLearner: false });
        return 'promoted';
      }
      // A replayed bootstrap entry may carry no member (tests); raft still learns the node.
      if (!c.member) return 'none';
      membership.add(c.member);
      return existing ? 'none' : 'added';
    }
    case ConfChangeType.ConfChangeRemoveNode:
      membership.remove(c.nodeId);
      return 'removed';
    case ConfChangeType.ConfChangeUpdateNode: {
      const existing = membership.get(c.nodeId);
      if (!existing || !c.member) return 'none';
      // etcd's UpdateRaftAttributes replaces the raft attributes whole: an update of a learner
      // (whose context says nothing of isLearner) lists it as a voter from then on, though raft
      // still has it as a learner. Kept, so both list the same members.
      membership.add({ ...existing, peerURLs: c.member.peerURLs, isLearner: c.member.isLearner });
      return 'updated';
    }
    default:
      return 'none';
  }
}

/** The change raft applies instead of a refused one: a single change to node 0, which raft ignores. */
export const refusedConfChange: ConfChangeV2 = {
  transition: 0, changes: [{ type: ConfChangeType.ConfChangeAddNode, nodeId: 0n }],
};
