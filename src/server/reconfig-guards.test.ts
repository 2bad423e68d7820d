import { test } from 'node:test';
import assert from 'node:assert/strict';
import { healthIntervalMs, learnerReadiness, mayAddMember, mayPromoteMember, mayRemoveMember, type ReconfigView } from './reconfig-guards.js';
import type { Member } from './membership.js';

const now = 1_000_000;
const long = now - healthIntervalMs - 1; // connected long enough
const recent = now - 10; // connected, but not for HealthInterval yet

function m(id: number, o: { started?: boolean; learner?: boolean } = {}): Member {
  return { id: BigInt(id), name: o.started === false ? '' : `m${id}`, peerURLs: [`http://127.0.0.1:${2380 + id}`], clientURLs: [], isLearner: o.learner ?? false };
}

function view(members: Member[], active: Record<number, number> = {}): ReconfigView {
  return { self: 1n, members, nowMs: now, activeSince: (id) => active[Number(id)] };
}

const kind = (e: { kind: string } | undefined): string | undefined => e?.kind;

test('add: a lone started member may take a second voter (etcd restores clusters so); a third is refused', () => {
  assert.equal(kind(mayAddMember(view([m(1)]), false)), undefined);
  assert.equal(kind(mayAddMember(view([m(1), m(2, { started: false })]), false)), 'MemberNotEnoughStarted');
});

test('add: a voter needs started voters to stay a quorum of the cluster after it', () => {
  const three = [m(1), m(2), m(3, { started: false })];
  // 4 voters after the add, quorum 3, started 2.
  assert.equal(kind(mayAddMember(view(three, { 2: long, 3: long }), false)), 'MemberNotEnoughStarted');
  const threeStarted = [m(1), m(2), m(3)];
  assert.equal(kind(mayAddMember(view(threeStarted, { 2: long, 3: long }), false)), undefined);
});

test('add: every voter must have been connected for HealthInterval, for a learner too ("unhealthy cluster")', () => {
  const ms = [m(1), m(2), m(3)];
  assert.equal(kind(mayAddMember(view(ms, { 2: long, 3: recent }), true)), 'Unhealthy');
  assert.equal(kind(mayAddMember(view(ms, { 2: long }), true)), 'Unhealthy');
  assert.equal(kind(mayAddMember(view(ms, { 2: long, 3: long }), true)), undefined);
  // A learner is not a voter: its connection does not count.
  assert.equal(kind(mayAddMember(view([...ms, m(4, { learner: true })], { 2: long, 3: long }), false)), undefined);
});

test('remove: a learner always may go; a voter only if the started rest keep a quorum', () => {
  assert.equal(kind(mayRemoveMember(view([m(1), m(2, { learner: true, started: false })]), 2n)), undefined);
  assert.equal(kind(mayRemoveMember(view([m(1)]), 1n)), 'MemberNotEnoughStarted');
  // Removing 3 of [1, 2 unstarted, 3]: remaining 2 voters, 1 started < quorum 2.
  assert.equal(kind(mayRemoveMember(view([m(1), m(2, { started: false }), m(3)], { 3: long }), 3n)), 'MemberNotEnoughStarted');
  // An unknown id: the voters all remain.
  assert.equal(kind(mayRemoveMember(view([m(1)]), 99n)), undefined);
});

test('remove: a peer never connected is safe to remove; otherwise the active rest must keep a quorum', () => {
  const ms = [m(1), m(2), m(3)];
  assert.equal(kind(mayRemoveMember(view(ms, { 2: long }), 3n)), undefined); // 3 was never connected
  // Removing connected 2 while 3 is down: active 2 (self, 2), minus the removed one = 1 < 2.
  assert.equal(kind(mayRemoveMember(view(ms, { 2: long }), 2n)), 'Unhealthy');
  assert.equal(kind(mayRemoveMember(view(ms, { 2: long, 3: long }), 2n)), undefined);
  // Removing itself counts its own connection out too.
  assert.equal(kind(mayRemoveMember(view(ms, { 2: long, 3: recent }), 1n)), 'Unhealthy');
});

test('promote: only the leader knows; a learner below 90% of the leader\'s match index is not in sync', () => {
  assert.equal(kind(learnerReadiness(undefined, 1n, 2n)), 'NotLeader');
  const match = new Map([[1n, 100], [2n, 89]]);
  assert.equal(kind(learnerReadiness(match, 1n, 2n)), 'LearnerNotReady');
  match.set(2n, 90);
  assert.equal(kind(learnerReadiness(match, 1n, 2n)), undefined);
  // A member raft does not track is left to apply (member not found / not a learner).
  assert.equal(kind(learnerReadiness(match, 1n, 7n)), undefined);
});

test('promote: the learner counts as a started voter; the others must make the quorum with it', () => {
  assert.equal(kind(mayPromoteMember(view([m(1), m(2, { learner: true })]))), undefined);
  // Voters 1, 2 (unstarted), 3 (unstarted) + the learner: 4, quorum 3, started 2.
  assert.equal(kind(mayPromoteMember(view([m(1), m(2, { started: false }), m(3, { started: false }), m(4, { learner: true })]))), 'MemberNotEnoughStarted');
});
