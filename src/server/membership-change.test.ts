// Membership changes through raft on three in-process members (the real Ready loop and
// applier over the in-memory network): a ConfChangeV2 with several changes goes through
// joint consensus and updates every member's membership; invalid changes are refused as
// etcd's ValidateConfigurationChange refuses them, on every member alike, and raft's
// configuration does not move.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ConfChangeTransition, ConfChangeType,
  type ConfChange, type ConfChangeV2,
} from '../proto/index.js';
import { isEtcdError } from '../errors/index.js';
import { memberToJson, Membership } from './membership.js';
import { confChangeV2Context, validateMemberChanges } from './membership-change.js';
import { startTestCluster, testMemberOf, type TestCluster } from './test-member.js';

let nextRequestId = 100n;

/**
 * Proposes at the leader under a fresh request id; resolves or rejects as the applier decides.
 * Waits for the loop to finish the Ready that applied the previous change first: raft turns
 * a change proposed while another is unapplied into an empty entry (nobody would answer it).
 */
async function propose(c: TestCluster, cc: (requestId: bigint) => ConfChange | ConfChangeV2): Promise<unknown> {
  const id = nextRequestId++;
  const l = c.leader();
  await l.raft.drained();
  const done = new Promise<unknown>((resolve, reject) => l.waits.register(id, 0, { resolve, reject }));
  l.raft.proposeConfChange(cc(id));
  return done;
}

const ids = (c: TestCluster, which: number[]) => which.map((i) => c.members[i]!);
const memberIds = (m: Membership) => m.list().map((x) => x.id);

test('a ConfChangeV2 replacing a voter goes through joint consensus and updates every member\'s membership', async () => {
  const c = await startTestCluster(3);
  try {
    const l = c.leader();
    const out = c.members.find((m) => m !== l)!.id;
    const replacement = testMemberOf(4n);
    await propose(c, (requestId) => ({
      transition: ConfChangeTransition.ConfChangeTransitionAuto,
      changes: [{ type: ConfChangeType.ConfChangeAddNode, nodeId: 4n }, { type: ConfChangeType.ConfChangeRemoveNode, nodeId: out }],
      context: confChangeV2Context(requestId, [{ member: replacement }]),
    }));
    const expected = [...[1n, 2n, 3n].filter((id) => id !== out), 4n];
    const staying = c.members.filter((m) => m.id !== out);
    // Auto-leave: the leader proposes leaving the joint configuration once it applied it.
    await c.until(() => staying.every((m) => m.raft.confState().votersOutgoing.length === 0 && m.raft.voters().length === 3), 'joint configuration left');
    for (const m of staying) {
      assert.deepEqual(m.raft.voters(), expected, `raft voters at ${m.id}`);
      assert.deepEqual(memberIds(m.membership), expected, `membership at ${m.id}`);
      assert.deepEqual(m.membership.get(4n)?.peerURLs, replacement.peerURLs);
      assert.ok(m.membership.isRemoved(out));
    }
  } finally {
    await c.close();
  }
});

test('an invalid ConfChangeV2 is refused whole with etcd\'s error, on every member, and raft\'s configuration stays', async () => {
  const c = await startTestCluster(3);
  try {
    // Adding 4 is fine, but 5 reuses member 1's peer URL: etcd's ErrPeerURLexists refuses it all.
    const clash = { ...testMemberOf(5n), peerURLs: testMemberOf(1n).peerURLs };
    await assert.rejects(propose(c, (requestId) => ({
      transition: ConfChangeTransition.ConfChangeTransitionJointExplicit,
      changes: [{ type: ConfChangeType.ConfChangeAddLearnerNode, nodeId: 4n }, { type: ConfChangeType.ConfChangeAddNode, nodeId: 5n }],
      context: confChangeV2Context(requestId, [{ member: testMemberOf(4n, true) }, { member: clash }]),
    })), (e: unknown) => isEtcdError(e, 'PeerURLExist') && (e as Error).message === 'etcdserver: Peer URLs already exists');
    const applied = c.leader().raft.appliedIndex;
    await c.until(() => c.members.every((m) => m.raft.appliedIndex >= applied), 'every member applied the refusal');
    for (const m of ids(c, [0, 1, 2])) {
      assert.deepEqual(m.raft.voters(), [1n, 2n, 3n], `raft voters at ${m.id}`);
      assert.deepEqual(m.raft.confState().learners, [], `no learner at ${m.id}`);
      assert.deepEqual(memberIds(m.membership), [1n, 2n, 3n]);
    }
    // The cluster still takes changes: a later valid one goes through.
    await propose(c, (requestId) => ({
      transition: ConfChangeTransition.ConfChangeTransitionAuto,
      changes: [{ type: ConfChangeType.ConfChangeAddLearnerNode, nodeId: 4n }],
      context: confChangeV2Context(requestId, [{ member: testMemberOf(4n, true) }]),
    }));
    assert.deepEqual(c.leader().raft.confState().learners, [4n]);
  } finally {
    await c.close();
  }
});

test('etcd\'s refusals: removing a non-member, re-adding a removed id, adding an existing id, promoting a voter', async () => {
  const c = await startTestCluster(3);
  try {
    const v1 = (type: ConfChangeType, nodeId: bigint, context?: string) => (id: bigint): ConfChange => ({
      type, nodeId, id, context: context === undefined ? undefined : Buffer.from(context),
    });
    const refused = async (p: Promise<unknown>, code: 'MemberNotFound' | 'MemberExist' | 'MemberNotLearner', message: string) => {
      await assert.rejects(p, (e: unknown) => isEtcdError(e, code) && (e as Error).message === message);
    };
    await refused(propose(c, v1(ConfChangeType.ConfChangeRemoveNode, 9n)), 'MemberNotFound', 'etcdserver: member not found');
    await refused(propose(c, v1(ConfChangeType.ConfChangeAddNode, 2n, memberToJson({ ...testMemberOf(2n), peerURLs: ['http://127.0.0.1:9999'] }))), 'MemberExist', 'etcdserver: member ID already exist');
    await refused(propose(c, v1(ConfChangeType.ConfChangeAddNode, 2n, `${memberToJson(testMemberOf(2n)).slice(0, -1)},"isPromote":true}`)), 'MemberNotLearner', 'etcdserver: can only promote a learner member');
    // Remove a follower, then try to bring its id back.
    const gone = c.members.find((m) => !m.raft.isLeader)!.id;
    await propose(c, v1(ConfChangeType.ConfChangeRemoveNode, gone));
    await refused(propose(c, v1(ConfChangeType.ConfChangeAddNode, gone, memberToJson(testMemberOf(gone)))), 'MemberNotFound', 'etcdserver: member not found');
    const l = c.leader();
    assert.deepEqual(l.raft.voters(), [1n, 2n, 3n].filter((id) => id !== gone));
    assert.deepEqual(memberIds(l.membership), [1n, 2n, 3n].filter((id) => id !== gone));
  } finally {
    await c.close();
  }
});

test('validation runs change by change against the membership the earlier ones leave', () => {
  const m = new Membership(1n, [testMemberOf(1n), testMemberOf(2n)]);
  const change = (type: ConfChangeType, nodeId: bigint, isLearner = false) => ({ type, nodeId, member: testMemberOf(nodeId, isLearner), isPromote: false });
  // Remove 2 then add 3 with 2's old URL: fine once 2 is gone (etcd checks current members' URLs).
  assert.equal(validateMemberChanges(m, [change(ConfChangeType.ConfChangeRemoveNode, 2n), { ...change(ConfChangeType.ConfChangeAddNode, 3n), member: { ...testMemberOf(3n), peerURLs: testMemberOf(2n).peerURLs } }]), undefined);
  // Two learners: etcd allows one.
  assert.ok(isEtcdError(validateMemberChanges(m, [change(ConfChangeType.ConfChangeAddLearnerNode, 3n, true), change(ConfChangeType.ConfChangeAddLearnerNode, 4n, true)]), 'TooManyLearners'));
  // Removing the same id twice in one change: the second is a removed id.
  assert.ok(isEtcdError(validateMemberChanges(m, [change(ConfChangeType.ConfChangeRemoveNode, 2n), change(ConfChangeType.ConfChangeRemoveNode, 2n)]), 'MemberNotFound'));
  // Nothing was applied by validating.
  assert.deepEqual(memberIds(m), [1n, 2n]);
});

test('removed ids survive the membership record\'s JSON (and older records without them still parse)', () => {
  const m = new Membership(7n, [testMemberOf(1n), testMemberOf(2n)]);
  m.remove(2n);
  const back = Membership.fromJson(m.toJson());
  assert.ok(back.isRemoved(2n));
  assert.deepEqual(memberIds(back), [1n]);
  const old = Membership.fromJson(`{"clusterId":"7","members":[${memberToJson(testMemberOf(1n))}]}`);
  assert.deepEqual(memberIds(old), [1n]);
  assert.ok(!old.isRemoved(2n));
});
