// --force-new-cluster, disaster recovery as etcd 3.4 does it: a 3-member cluster takes writes,
// every member is killed, one restarts alone with --force-new-cluster and must serve every
// acknowledged write as a one-member cluster; then `etcdctl member add` grows it again and the
// new member joins and catches up. Run against etcd and Concord; the log lines etcd writes for
// the forced restart are compared with Concord's (message and field names).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sleep, runEtcd, runConcord, type TargetName } from './harness.js';
import { startCluster, type ClusterMember } from './cluster-harness.js';

const zapFlags = ['--logger', 'zap', '--log-outputs', 'stderr'];
const keys = 20;

function ok(r: { code: number | null; stdout: string; stderr: string }, what: string): string {
  assert.equal(r.code, 0, `${what}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** The JSON log lines whose msg is `msg`. */
function logLines(log: string, msg: string): Array<Record<string, unknown>> {
  return log.split('\n').flatMap((l) => {
    if (!l.startsWith('{')) return [];
    try {
      const o = JSON.parse(l) as Record<string, unknown>;
      return o.msg === msg ? [o] : [];
    } catch { return []; }
  });
}

/** Waits until every member reports the same applied index as the highest raft index. */
async function allApplied(members: readonly ClusterMember[]): Promise<void> {
  type St = Array<{ Status: { header: { member_id: number }; raftIndex: number; raftAppliedIndex: number } }>;
  let last = '';
  for (let i = 0; i < 200; i++) {
    const r = await members[0]!.etcdctl(['endpoint', 'status', '-w', 'json', `--endpoints=${members.map((m) => m.endpoint).join(',')}`]);
    last = r.stdout + r.stderr;
    if (r.code === 0) {
      const st = JSON.parse(r.stdout) as St;
      const top = Math.max(...st.map((s) => s.Status.raftIndex));
      // (the harness's own --endpoints adds one endpoint twice)
      if (new Set(st.map((s) => s.Status.header.member_id)).size === members.length && st.every((s) => s.Status.raftAppliedIndex === top)) return;
    }
    await sleep(100);
  }
  throw new Error(`members never agreed on the applied index: ${last}`);
}

interface Outcome {
  /** Field names of "forcing restart member" (level, ts, caller dropped). */
  forcedFields: string[];
  removedLines: number;
  values: string[];
  members: number;
  joinedValues: string[];
}

async function scenario(target: TargetName): Promise<Outcome> {
  const c = await startCluster({ targets: [target, target, target], flags: zapFlags });
  let joiner: ClusterMember | undefined;
  try {
    const [m0, m1, m2] = c.members as [ClusterMember, ClusterMember, ClusterMember];
    // Acknowledged writes through every member.
    for (let i = 0; i < keys; i++) ok(await c.members[i % 3]!.etcdctl(['put', `k${String(i).padStart(2, '0')}`, `v${i}`]), 'put');
    // A follower learns the commit index a heartbeat after the leader: --force-new-cluster keeps
    // only what the survivor knew was committed, so wait until every member applied everything.
    await allApplied(c.members);
    // etcd 3.4 keeps a commit-only hard state in its encoder's buffer until the next sync
    // (wal.go Save: mustSync is false), so after a kill the survivor's WAL says the last write
    // is uncommitted and it lives only in the backend, which commits every 100 ms
    // (--backend-batch-interval). Killed inside that window, etcd's forced survivor loses the
    // write (seen in CI: v19 missing). Concord writes a deferred commit-only state to the file
    // once no write carried it for PENDING_STATE_IDLE_MS (5 ms; src/wal/wal.ts) and keeps what
    // its backend applied (force-new-cluster.ts), so its window is that 5 ms. Each run waits
    // its own window out before the kill.
    await sleep(target === 'etcd' ? 500 : 50);
    await Promise.all([m0.kill(), m1.kill(), m2.kill()]);

    m0.extraArgs.push('--force-new-cluster');
    await m0.restart();
    const forced = logLines(m0.log, 'forcing restart member');
    assert.equal(forced.length, 1, `one "forcing restart member" line:\n${m0.log.slice(-4000)}`);
    const forcedFields = Object.keys(forced[0]!).filter((k) => !['level', 'ts', 'caller'].includes(k)).sort();

    const values = ok(await m0.etcdctl(['get', '--prefix', 'k', '--print-value-only']), 'get after force').trim().split('\n');
    type Listed = { members: Array<{ ID: number; name?: string }> };
    const listed = JSON.parse(ok(await m0.etcdctl(['member', 'list', '-w', 'json']), 'member list')) as Listed;

    // Grow the cluster again: member add, then a new member joins with state existing.
    joiner = await c.addMember(target, 'm3');
    const added = ok(await m0.etcdctl(['member', 'add', 'm3', `--peer-urls=${joiner.peerUrl}`]), 'member add');
    const initial = /ETCD_INITIAL_CLUSTER="([^"]+)"/.exec(added)?.[1];
    assert.ok(initial, added);
    joiner.initialCluster = initial;
    joiner.clusterState = 'existing';
    await joiner.start();
    let joinedValues: string[] = [];
    for (let i = 0; i < 100; i++) {
      const r = await joiner.etcdctl(['get', '--prefix', 'k', '--print-value-only', '--consistency=s']);
      joinedValues = r.code === 0 ? r.stdout.trim().split('\n') : [];
      if (joinedValues.length === keys) break;
      await sleep(100);
    }
    // The two-member cluster takes writes (needs both: the joiner is a voter).
    ok(await joiner.etcdctl(['put', 'after', 'join']), 'put after join');
    return { forcedFields, removedLines: logLines(m0.log, 'removed member').length, values, members: listed.members.length, joinedValues };
  } finally {
    await joiner?.destroy();
    await c.destroy();
  }
}

const expectedValues = Array.from({ length: keys }, (_, i) => `v${i}`);

const outcomes = new Map<TargetName, Outcome>();
for (const target of ['etcd', 'concord'] as const) {
  const run = target === 'etcd' ? runEtcd() : runConcord();
  test(`--force-new-cluster keeps every acknowledged write and grows again (${target})`, { skip: !run, timeout: 240_000 }, async () => {
    const o = await scenario(target);
    outcomes.set(target, o);
    assert.deepEqual(o.values, expectedValues);
    assert.equal(o.members, 1, 'one member after the forced restart');
    assert.equal(o.removedLines, 2, 'the two other members removed by conf changes');
    if (target === 'concord') {
      assert.deepEqual(o.joinedValues, expectedValues, 'the new member caught up');
    } else {
      // etcd 3.4's new member was seen (every run on this machine) to stay one write short, the
      // last one before the forced restart: an etcd bug, recorded here, not copied.
      assert.deepEqual(o.joinedValues, expectedValues.slice(0, o.joinedValues.length));
      assert.ok(o.joinedValues.length >= keys - 1, `etcd's joiner: ${o.joinedValues.length} values`);
    }
  });
}

test('--force-new-cluster: Concord logs the forced restart as etcd does', { skip: !(runEtcd() && runConcord()) }, () => {
  const e = outcomes.get('etcd');
  const c = outcomes.get('concord');
  assert.ok(e && c, 'both scenarios ran');
  assert.deepEqual(c.forcedFields, e.forcedFields);
});
