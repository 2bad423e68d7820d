// Membership changes on a running 3-member cluster through real etcdctl, every step sent to a
// member that is NOT the leader, differential against a 3-member etcd cluster:
//
// - `member add --learner` through a follower: with --strict-reconfig-check (the default) the
//   leader's side refuses with "unhealthy cluster" until every voter's peer connection has been
//   active for etcd's HealthInterval (5 s); the member's transport must say which peers are
//   connected (rafthttp's ActiveSince), or the add is refused for ever.
// - `member promote` through a follower: only the leader knows whether the learner is in sync,
//   so the follower forwards it over the peer API (POST /members/promote/<id>); the refusals
//   that come back (a voter, an unknown id) carry etcd's messages.
// - A member removed while it was down, started again: its peers answer its stream dials with
//   410 "removed member", and it stops with etcd's log lines ("server error": "the member has
//   been permanently removed from the cluster"; "data-dir used by this member must be removed").

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { selectedTargets, sleep, type TargetName, type CmdResult } from './harness.js';
import { startCluster, type Cluster, type ClusterMember } from './cluster-harness.js';

const clusters: Cluster[] = [];
/** Members taken out of their cluster's list (removed ones), destroyed at the end too. */
const strays: ClusterMember[] = [];
after(async () => {
  for (const c of clusters) await c.destroy();
  for (const m of strays) await m.destroy();
});

/** etcdctl through one member only (no other endpoint it could fail over to). */
const ctlVia = (m: ClusterMember, args: string[]): Promise<CmdResult> => m.etcdctl(args, { timeoutMs: 60_000 });

/** Repeats `args` through `m` while etcd's guard answers `retryOn` (bounded); the last answer. */
async function retrying(m: ClusterMember, args: string[], retryOn: RegExp, timeoutMs = 45_000): Promise<CmdResult> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await ctlVia(m, args);
    if (r.code === 0 || !retryOn.test(r.stderr) || Date.now() > deadline) return r;
    await sleep(500);
  }
}

/** A step's exit code and output with ids masked: what must match between etcd and Concord. */
function line(what: string, r: CmdResult, ids: Record<string, string>): string {
  let text = `${r.stdout}${r.stderr}`.trim();
  for (const [name, hex] of Object.entries(ids)) text = text.replaceAll(hex, `<${name}>`);
  // etcdctl pads ids to 16 columns (%16x): compare words, not padding.
  text = text.replace(/^\{"level".*$/gm, '').replace(/ +/g, ' ').replace(/cluster [0-9a-f]+/g, 'cluster <cluster>').trim();
  return `${what}: exit ${r.code} ${text}`;
}

async function memberId(m: ClusterMember): Promise<string> {
  return (await m.rpc.status()).header!.memberId.toString(16);
}

/** Waits (bounded) for the process to exit on its own; its exit code, or 'running'. */
async function exitOf(m: ClusterMember, timeoutMs: number): Promise<number | string> {
  const deadline = Date.now() + timeoutMs;
  while (m.running && Date.now() < deadline) await sleep(100);
  return m.running ? 'running' : (m.child!.exitCode ?? String(m.child!.signalCode));
}

async function session(target: TargetName): Promise<string[]> {
  const out: string[] = [];
  const c = await startCluster({ target, size: 3 });
  clusters.push(c);
  const leader = await c.leader();
  const follower = c.members.find((m) => m !== leader)!;
  const ids: Record<string, string> = {};
  for (const m of c.members) ids[m.name] = await memberId(m);

  // A learner added through a follower: refused as "unhealthy" only until the peers have been
  // connected for 5 s.
  const learner = await c.addMember(target, 'l3');
  const add = await retrying(follower, ['member', 'add', learner.name, '--learner', `--peer-urls=${learner.advertisedPeerUrl}`], /unhealthy cluster/);
  const added = /Member +([0-9a-f]+) added/.exec(add.stdout);
  assert.ok(added, `member add through a follower (${target}): ${add.stdout}${add.stderr}`);
  ids.l3 = added[1]!;
  out.push(line('add learner via follower', { ...add, stdout: add.stdout.split('\n')[0]! }, ids));
  await learner.start();

  // Promoted through the follower once in sync (the leader decides; the follower forwards).
  const promote = await retrying(follower, ['member', 'promote', ids.l3], /in sync with leader/);
  out.push(line('promote learner via follower', promote, ids));
  out.push(line('promote it again via follower', await ctlVia(follower, ['member', 'promote', ids.l3]), ids));
  out.push(line('promote an unknown id via follower', await ctlVia(follower, ['member', 'promote', '1234']), ids));
  const list = await ctlVia(follower, ['member', 'list']);
  out.push(`member list: ${list.stdout.trim().split('\n').length} members, learners: ${list.stdout.split('\n').filter((l) => l.endsWith(', true')).length}`);

  // Removed while it is down, then started again: told by its peers (410), it stops.
  await learner.kill();
  out.push(line('remove the stopped member', await retrying(follower, ['member', 'remove', ids.l3], /unhealthy cluster/), ids));
  c.members.splice(c.members.indexOf(learner), 1);
  strays.push(learner);
  learner.launch();
  out.push(`removed member started again: exit ${await exitOf(learner, 60_000)}`);
  // etcd's words (its default capnslog lines, Concord's zap JSON: the same texts).
  out.push(`it logged: ${/the member has been permanently removed from the cluster/.test(learner.log)} ${/data-dir used by this member must be removed/.test(learner.log)}`);
  if (learner.running) console.log(`# the removed member's log:\n${learner.log.slice(-3000)}`);
  const put = await ctlVia(follower, ['put', 'after-removal', 'x']);
  out.push(line('the others take writes', put, ids));
  return out;
}

const results = new Map<TargetName, string[]>();
for (const target of selectedTargets()) {
  test(`${target}: add and promote a learner through a follower; a member removed while down stops when restarted`, { timeout: 300_000 }, async () => {
    const out = await session(target);
    console.log(out.map((l) => `# ${l}`).join('\n'));
    for (const expected of [
      'add learner via follower: exit 0 Member <l3> added to cluster <cluster>',
      'promote learner via follower: exit 0 Member <l3> promoted in cluster <cluster>',
      'promote it again via follower: exit 1 Error: etcdserver: can only promote a learner member',
      'promote an unknown id via follower: exit 1 Error: etcdserver: member not found',
      'member list: 4 members, learners: 0',
      'remove the stopped member: exit 0 Member <l3> removed from cluster <cluster>',
      'removed member started again: exit 0',
      'it logged: true true',
      'the others take writes: exit 0 OK',
    ]) assert.ok(out.includes(expected), `${target}: ${expected}\n${out.join('\n')}`);
    results.set(target, out);
    const other = results.get(target === 'etcd' ? 'concord' : 'etcd');
    if (other) assert.deepEqual(out, other, 'Concord and etcd answer the same');
  });
}
