// Live migration between etcd and Concord through the peer protocol both speak, with no
// downtime and no dump and restore, under a steady writer:
//
//   3 etcd -> (add a Concord learner, start it, promote it, remove an etcd member) x 3 -> 3 Concord
//   3 Concord -> (add an etcd learner, start it, promote it, remove a Concord member) x 3 -> 3 etcd
//
// Every membership change goes through real etcdctl. After each step HashKV agrees across the
// members; at the end every acknowledged write is readable from every member. And a 5-member
// Concord cluster survives the loss of two members (the leader among them) under the writer.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runConcord, runEtcd, sleep, etcdctl, type TargetName, type CmdResult } from './harness.js';
import { startCluster, startWriter, missingKeys, hashesAtCommonRevision, type Cluster, type ClusterMember } from './cluster-harness.js';

/**
 * etcdctl against the given members (voters: a learner refuses most requests), repeated
 * (bounded) while the answer matches `retryOn`.
 */
async function ctl(members: readonly ClusterMember[], args: string[], retryOn = /unhealthy cluster|in sync with leader|request timed out|leader changed|no leader/, timeoutMs = 60_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let r: CmdResult;
  for (;;) {
    r = await etcdctl(members.map((m) => m.endpoint).join(','), args, { timeoutMs: 30_000 });
    if (r.code === 0) return r.stdout;
    // A retried add whose first attempt applied after etcdctl gave up.
    if (args[1] === 'add' && r.stderr.includes('Peer URLs already exists')) return r.stdout;
    if (!retryOn.test(r.stderr) || Date.now() > deadline) break;
    await sleep(500);
  }
  assert.fail(`etcdctl ${args.join(' ')}: exit ${r.code} ${r.stderr}${r.stdout}`);
}

async function idOf(m: ClusterMember): Promise<string> {
  return (await m.rpc.status()).header!.memberId.toString(16);
}

async function assertHashesAgree(c: Cluster, step: string): Promise<void> {
  const { revision, hashes } = await hashesAtCommonRevision(c);
  assert.equal(new Set(hashes.map((h) => h.hash)).size, 1, `${step}: HashKV differs at revision ${revision}: ${JSON.stringify(hashes)}`);
  console.log(`# ${step}: HashKV equal on ${hashes.map((h) => h.name).join(', ')} at revision ${revision}`);
}

/** One migration step: a `to` learner joins, is promoted, and the oldest `from` member leaves. */
async function replaceOne(c: Cluster, from: TargetName, to: TargetName, name: string): Promise<void> {
  const voters = c.running();
  const joining = await c.addMember(to, name);
  await ctl(voters, ['member', 'add', name, '--learner', `--peer-urls=${joining.advertisedPeerUrl}`]);
  await joining.start();
  const joinedId = await idOf(joining);
  await ctl(voters, ['member', 'promote', joinedId]);
  const leaving = c.running().find((m) => m.target === from)!;
  const leavingId = await idOf(leaving);
  const leader = await c.leader();
  // Ask a member that stays (a removed leader steps down only once the change applies).
  const via = leader === leaving ? c.running().find((m) => m !== leaving)! : leader;
  const removed = await via.etcdctl(['member', 'remove', leavingId], { timeoutMs: 30_000 });
  assert.equal(removed.code, 0, `member remove ${leaving.name}: ${removed.stderr}`);
  await leaving.stop();
  c.members.splice(c.members.indexOf(leaving), 1);
  await leaving.destroy();
  await c.leader();
  const list = await ctl(c.running(), ['member', 'list']);
  assert.equal(list.trim().split('\n').length, 3, list);
  assert.ok(!list.includes(', true'), `no learner left: ${list}`);
}

async function migrate(c: Cluster, from: TargetName, to: TargetName, prefix: string): Promise<void> {
  for (let i = 0; i < 3; i++) {
    await replaceOne(c, from, to, `${to}${prefix}${i}`);
    await assertHashesAgree(c, `${from} -> ${to}, step ${i + 1}: ${c.running().map((m) => `${m.name} (${m.target})`).join(', ')}`);
  }
  assert.deepEqual(c.running().map((m) => m.target), [to, to, to]);
}

test('live migration under a steady writer: 3 etcd -> 3 Concord and back to 3 etcd, one member at a time; nothing lost, HashKV equal at each step', { skip: !runConcord() || !runEtcd(), timeout: 900_000 }, async () => {
  const c = await startCluster({ targets: ['etcd', 'etcd', 'etcd'] });
  const w = startWriter(c, 'mig/');
  try {
    await migrate(c, 'etcd', 'concord', 'a');
    const there = w.acked.length;
    await migrate(c, 'concord', 'etcd', 'b');
    await w.stop();
    console.log(`# ${w.acked.length} writes acknowledged (${there} by the time the cluster was all Concord)`);
    assert.ok(there > 0 && w.acked.length > there, 'the writer made progress in both directions');
    for (const [name, missing] of Object.entries(await missingKeys(c, 'mig/', w.acked))) assert.deepEqual(missing, [], `${name} lacks acknowledged writes`);
    await assertHashesAgree(c, 'the end');
  } finally {
    await w.stop();
    await c.destroy();
  }
});

test('5 Concord members survive the loss of two (the leader among them) under a writer; both rejoin and catch up', { skip: !runConcord(), timeout: 600_000 }, async () => {
  // etcd's default timings: five Node processes start slowly on a loaded 2-core machine.
  const c = await startCluster({ target: 'concord', size: 5, readyTimeoutMs: 120_000 });
  const w = startWriter(c, 'five/');
  try {
    const until = async (n: number) => { for (let i = 0; i < 1200 && w.acked.length < n; i++) await sleep(100); assert.ok(w.acked.length >= n, `${n} writes acknowledged`); };
    await until(50);
    const leader = await c.leader();
    const other = c.members.find((m) => m !== leader)!;
    await leader.kill();
    await other.kill();
    const at = w.acked.length;
    await until(at + 100);
    const next = await c.leader();
    assert.ok(next !== leader && next !== other, 'a surviving member leads');
    await w.stop();
    for (const [name, missing] of Object.entries(await missingKeys(c, 'five/', w.acked))) assert.deepEqual(missing, [], `${name} lacks acknowledged writes`);
    await assertHashesAgree(c, 'three of five');
    await leader.restart();
    await other.restart();
    console.log('# both restarted');
    for (let i = 0; i < 600; i++) {
      if (new Set((await c.hashes()).map((h) => h.revision)).size === 1) break;
      await sleep(100);
    }
    console.log(`# revisions after the catch-up: ${(await c.hashes()).map((h) => `${h.name}=${h.revision}`).join(' ')}`);
    for (const [name, missing] of Object.entries(await missingKeys(c, 'five/', w.acked))) assert.deepEqual(missing, [], `${name} lacks acknowledged writes`);
    await assertHashesAgree(c, 'all five again');
  } finally {
    await w.stop();
    await c.destroy();
  }
});
