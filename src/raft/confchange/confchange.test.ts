import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type ConfChangeSingle, ConfChangeType } from '../../proto/index.js';
import { type TrackerConfig, describeConfig, emptyTrackerConfig } from '../tracker.js';
import { type ChangeResult, Changer, ConfChangeError } from './changer.js';
import { restoreConfState } from './restore.js';

/**
 * Runs a script in the shape of etcd-io/raft's confchange/testdata: each step is a command
 * ("simple v1 l2", "enter-joint r1 v2", "enter-joint-auto v2", "leave-joint") and the expected
 * configuration, or the error it is refused with (the configuration then stays as it was).
 * "new=(...)" lists the ids that got a fresh Progress in that step.
 */
function run(script: string): void {
  let cur: ChangeResult = { config: emptyTrackerConfig(), tracked: new Set(), fresh: new Set() };
  const lines = script.trim().split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  for (const line of lines) {
    const [cmd, want] = line.split(' => ');
    const [verb, ...ops] = cmd.split(' ');
    const changes = ops.map(parseOp);
    const changer = new Changer(cur.config, cur.tracked);
    let got: string;
    try {
      const next =
        verb === 'simple' ? changer.simple(changes)
        : verb === 'enter-joint' ? changer.enterJoint(false, changes)
        : verb === 'enter-joint-auto' ? changer.enterJoint(true, changes)
        : verb === 'leave-joint' ? changer.leaveJoint()
        : assert.fail(`unknown command ${verb}`);
      assertTracksExactly(next);
      got = describeConfig(next.config) + (next.fresh.size ? ` new=(${[...next.fresh].sort().join(' ')})` : '');
      cur = next;
    } catch (e) {
      if (!(e instanceof ConfChangeError)) throw e;
      got = e.message;
    }
    assert.equal(got, want, cmd);
  }
}

function parseOp(op: string): ConfChangeSingle {
  const nodeId = BigInt(op.slice(1));
  const type = { v: ConfChangeType.ConfChangeAddNode, l: ConfChangeType.ConfChangeAddLearnerNode, r: ConfChangeType.ConfChangeRemoveNode, u: ConfChangeType.ConfChangeUpdateNode }[op[0]];
  assert.ok(type !== undefined, `bad op ${op}`);
  return { type, nodeId };
}

function assertTracksExactly(r: ChangeResult): void {
  const c: TrackerConfig = r.config;
  const all = new Set([...c.voters.ids(), ...c.learners, ...c.learnersNext]);
  assert.deepEqual([...r.tracked].sort(), [...all].sort());
}

test('simple changes: at most one voter, never zero voters (etcd-io/raft simple_safety)', () => {
  run(`
    simple l1 => removed all voters
    simple v1 => voters=(1) new=(1)
    simple v2 l3 => voters=(1 2) learners=(3) new=(2 3)
    simple r1 v5 => more than one voter changed without entering joint config
    simple r1 r2 => removed all voters
    simple v3 v4 => more than one voter changed without entering joint config
    simple l1 v5 => more than one voter changed without entering joint config
    simple l1 l2 => removed all voters
    simple l2 l3 l4 l5 => voters=(1) learners=(2 3 4 5) new=(4 5)
    simple r1 => removed all voters
    simple r2 r3 r4 r5 => voters=(1)
  `);
});

test('idempotent and no-op changes: repeats, unknown removals, node 0, updates', () => {
  run(`
    simple v1 v1 => voters=(1) new=(1)
    simple r7 => voters=(1)
    simple v0 u1 => voters=(1)
    simple l2 l2 => voters=(1) learners=(2) new=(2)
    simple v2 => voters=(1 2)
    simple l2 => voters=(1) learners=(2)
    simple r2 v2 => voters=(1 2) new=(2)
  `);
});

test('joint: enter, refuse nesting or simple changes, leave (etcd-io/raft joint_safety)', () => {
  run(`
    leave-joint => can't leave a non-joint config
    enter-joint => can't make a zero-voter config joint
    enter-joint v1 => can't make a zero-voter config joint
    simple v1 => voters=(1) new=(1)
    leave-joint => can't leave a non-joint config
    enter-joint => voters=(1)&&(1)
    enter-joint => config is already joint
    leave-joint => voters=(1)
    enter-joint r1 v2 v3 l4 => voters=(2 3)&&(1) learners=(4) new=(2 3 4)
    enter-joint v12 => config is already joint
    simple l15 => can't apply simple config change in joint config
    leave-joint => voters=(2 3) learners=(4)
    simple l9 => voters=(2 3) learners=(4 9) new=(9)
  `);
});

test('joint: a demoted voter waits in learners_next, keeping its progress', () => {
  run(`
    simple v1 => voters=(1) new=(1)
    enter-joint v2 l1 => voters=(2)&&(1) learners_next=(1) new=(2)
    leave-joint => voters=(2) learners=(1)
  `);
});

test('joint: auto-leave is recorded and cleared on leaving; replacing every voter', () => {
  run(`
    simple v1 => voters=(1) new=(1)
    simple v2 => voters=(1 2) new=(2)
    simple v3 => voters=(1 2 3) new=(3)
    enter-joint-auto r1 r2 r3 v4 v5 v6 => voters=(4 5 6)&&(1 2 3) autoleave new=(4 5 6)
    leave-joint => voters=(4 5 6)
    enter-joint-auto r4 r5 r6 => removed all voters
  `);
});

test('restore rebuilds a joint ConfState exactly', () => {
  const cs = { voters: [2n, 3n], votersOutgoing: [1n, 2n], learners: [4n], learnersNext: [1n], autoLeave: true };
  const r = restoreConfState(cs);
  assert.equal(describeConfig(r.config), 'voters=(2 3)&&(1 2) learners=(4) learners_next=(1) autoleave');
  assert.deepEqual([...r.tracked].sort(), [1n, 2n, 3n, 4n]);
  const simple = restoreConfState({ voters: [1n, 2n], votersOutgoing: [], learners: [3n], learnersNext: [], autoLeave: false });
  assert.equal(describeConfig(simple.config), 'voters=(1 2) learners=(3)');
});
