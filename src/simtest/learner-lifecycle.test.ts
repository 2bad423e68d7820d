// Membership lifecycle on the real Ready loop, applier and Cluster service (in-memory ports):
// add a learner to a running 3- or 5-member cluster, let it catch up from the leader's log,
// promote it (by MemberPromote once in sync, or by --auto-promote-learners), then remove the
// leader itself, which stops, while the rest elect a new leader and carry on. After each
// step the members agree on the membership, and on the store at equal applied indexes.
// SIM_SEED=n replays one seed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { etcdserverpb as pb } from '../proto/index.js';
import { LifecycleCluster, settle, type LifecycleMember } from './learner-lifecycle.js';

const seeds = process.env.SIM_SEED ? [Number(process.env.SIM_SEED)] : [1, 2];

const membersOf = (m: LifecycleMember): string => JSON.stringify(m.membership.list().map((x) => [x.id.toString(16), x.isLearner, x.peerURLs]));

/** Waits until every live member applied what the leader committed, then checks they agree. */
async function converged(c: LifecycleCluster, what: string): Promise<void> {
  await c.until(() => {
    const leader = c.leader();
    return leader !== undefined && c.live().every((m) => m.raft.appliedIndex === leader.raft.commitIndex && m.raft.leader === leader.id);
  }, `all apply the leader's commit (${what})`);
  const [first, ...rest] = c.live();
  for (const m of rest) {
    assert.equal(membersOf(m), membersOf(first!), `${what}: members of ${m.id} and ${first!.id}`);
    assert.deepEqual(m.store.hash(), first!.store.hash(), `${what}: stores of ${m.id} and ${first!.id}`);
  }
}

for (const voters of [3, 5]) {
  for (const autoPromoteLearners of [false, true]) {
    for (const seed of seeds) {
      test(`${voters} members${autoPromoteLearners ? ', --auto-promote-learners' : ''} (seed ${seed}): add learner, catch up, promote, remove the leader`, async () => {
        const c = new LifecycleCluster({ seed, voters, autoPromoteLearners });
        try {
          await c.start();
          c.writes(200);
          await converged(c, 'before the learner');
          const leader = c.leader()!;

          const added = await settle(c, leader.cluster.memberAdd(pb.MemberAddRequest.fromPartial({ peerURLs: ['http://127.0.0.1:9001'], isLearner: true })), 'member add');
          const id = added.member!.ID;
          assert.deepEqual(added.members.filter((m) => m.isLearner).map((m) => m.ID), [id]);
          // Not running yet: raft tracks it at match 0, so it is not in sync (and not auto-promoted).
          await assert.rejects(leader.cluster.memberPromote(pb.MemberPromoteRequest.fromPartial({ ID: id })),
            { message: 'etcdserver: can only promote a learner member which is in sync with leader' });
          await assert.rejects(settle(c, leader.cluster.memberAdd(pb.MemberAddRequest.fromPartial({ peerURLs: ['http://127.0.0.1:9002'], isLearner: true })), 'second learner'),
            { message: 'etcdserver: too many learner members in cluster' });
          // Off the leader nobody knows the learner's progress.
          const follower = c.live().find((m) => m !== leader)!;
          await assert.rejects(follower.cluster.memberPromote(pb.MemberPromoteRequest.fromPartial({ ID: id })), { message: 'etcdserver: not leader' });

          const learner = c.join(id);
          await c.until(() => learner.membership.get(id) !== undefined, 'the learner learns it is one');
          assert.equal(learner.cluster.isLearner(), true);
          c.publish(learner);
          await c.until(() => leader.membership.get(id)?.name !== '' || (c.publish(learner), false), 'the learner publishes its name');

          if (autoPromoteLearners) {
            await c.until(() => c.live().every((m) => m.membership.get(id)?.isLearner === false), 'auto-promotion');
          } else {
            // Promote as an operator would: retry while the learner is still catching up.
            for (;;) {
              try {
                const r = await settle(c, leader.cluster.memberPromote(pb.MemberPromoteRequest.fromPartial({ ID: id })), 'member promote');
                assert.equal(r.members.find((m) => m.ID === id)?.isLearner, false);
                break;
              } catch (e) {
                assert.equal((e as Error).message, 'etcdserver: can only promote a learner member which is in sync with leader');
                await c.until(() => true, 'a turn');
              }
            }
          }
          c.writes(100);
          await converged(c, 'after the promotion');
          assert.equal(learner.cluster.isLearner(), false);
          assert.ok(c.leader()!.raft.confState().voters.includes(id), 'raft has the promoted member as a voter');
          await assert.rejects(leader.cluster.memberPromote(pb.MemberPromoteRequest.fromPartial({ ID: id })), { message: 'etcdserver: can only promote a learner member' });

          // The leader removes itself: answered with the members after it, then it stops.
          const old = c.leader()!;
          const removed = await settle(c, old.cluster.memberRemove(pb.MemberRemoveRequest.fromPartial({ ID: old.id })), 'member remove of the leader');
          assert.ok(!removed.members.some((m) => m.ID === old.id));
          await c.until(() => old.stopped && c.leader() !== undefined, 'the removed leader stops and another leads');
          assert.equal(old.removed, true);
          c.writes(50);
          await converged(c, 'after removing the old leader');
          assert.equal(c.live().length, voters);
          for (const m of c.live()) assert.ok(m.membership.isRemoved(old.id) && m.membership.get(old.id) === undefined);
        } finally {
          await c.close();
        }
      });
    }
  }
}
