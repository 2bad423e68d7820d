// etcd's e2e snapshot scenario with clustering (tests/e2e/ctl_v3_snapshot_test.go TestIssue6361):
// `etcdctl snapshot save` from a one-member cluster, `snapshot status`, `snapshot restore`
// into the member's data dir, the member boots from it with every key, then `member add`
// of a second member that starts with an empty data dir, receives the first one's snapshot
// (the restored log starts past it) and serves every key. Run against etcd and Concord alike,
// and the transcript of what etcdctl printed must match.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { etcdctl, sleep, runConcord, runEtcd, type CmdResult, type TargetName } from './harness.js';
import { startCluster, type Cluster, type ClusterMember } from './cluster-harness.js';

function ok(r: CmdResult, what: string): string {
  assert.equal(r.code, 0, `${what}: ${r.stderr}`);
  return r.stdout;
}

/** Retries while etcd refuses a reconfiguration for a while after start ("unhealthy cluster"). */
async function memberAdd(c: Cluster, m: ClusterMember): Promise<string> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const r = await c.ctl(['member', 'add', m.name, `--peer-urls=${m.peerUrl}`]);
    if (r.code === 0 || Date.now() > deadline || !/unhealthy cluster/.test(r.stderr)) return ok(r, 'member add');
    await sleep(500);
  }
}

const kvs = [['foo1', 'val1'], ['foo2', 'val2'], ['foo3', 'val3']] as const;

/** The scenario on `target`; returns a transcript with ids, ports and paths left out. */
async function scenario(target: TargetName): Promise<string[]> {
  const c = await startCluster({ targets: [target] });
  const out: string[] = [];
  try {
    const first = c.members[0]!;
    for (const [k, v] of kvs) out.push(ok(await first.etcdctl(['put', k, v]), 'put'));
    // Some history past the puts, so the restored store is not only its first revisions.
    for (let i = 0; i < 50; i++) ok(await first.etcdctl(['put', 'counter', String(i)]), 'put');

    const file = first.scratch('test.snapshot');
    const saved = ok(await first.etcdctl(['snapshot', 'save', file]), 'snapshot save');
    out.push(saved.includes(`Snapshot saved at ${file}`) ? 'Snapshot saved' : saved);
    const status = JSON.parse(ok(await etcdctl('', ['snapshot', 'status', file, '-w', 'json']), 'snapshot status')) as { revision: number; totalKey: number };
    out.push(`status revision ${status.revision}`);

    await first.stop();
    rmSync(first.dataDir, { recursive: true, force: true });
    const restored = await etcdctl('', ['snapshot', 'restore', file, '--name', first.name, '--initial-cluster', first.initialCluster,
      '--initial-cluster-token', first.clusterToken, '--initial-advertise-peer-urls', first.peerUrl, '--data-dir', first.dataDir]);
    ok(restored, 'snapshot restore');
    await first.restart();
    for (const [k] of kvs) out.push(ok(await first.etcdctl(['get', k]), 'get on the restored member'));

    const second = await c.addMember(target, `infra2-${target}`);
    out.push(/ added to cluster /.test(await memberAdd(c, second)) ? 'member added' : 'member add said otherwise');
    await second.start();
    for (const [k] of kvs) out.push(ok(await second.etcdctl(['get', k]), 'get on the new member'));
    out.push(ok(await second.etcdctl(['get', 'counter', '--print-value-only']), 'get counter'));
    out.push(`members ${ok(await second.etcdctl(['member', 'list']), 'member list').trim().split('\n').length}`);
    return out;
  } finally {
    await c.destroy();
  }
}

test('snapshot save, status, restore, boot, then member add: the new member catches up (etcd e2e TestIssue6361), as etcd does', { skip: !runConcord(), timeout: 300_000 }, async () => {
  const concord = await scenario('concord');
  assert.deepEqual(concord.slice(-5), ['foo1\nval1\n', 'foo2\nval2\n', 'foo3\nval3\n', '49\n', 'members 2']);
  if (runEtcd()) assert.deepEqual(concord, await scenario('etcd'));
});
