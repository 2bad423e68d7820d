// The cluster harness on real etcd clusters of 3 and 5 members: bootstrap with etcd's flags,
// leader discovery, kill/restart, pause/resume, and cleanup by pid and temp dir. Runs against
// real etcd only: it tests the harness, not a target. (Concord clusters: CONCORD_CLUSTER_TARGET=concord.)

import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { startCluster, type Cluster } from './cluster-harness.js';
import { etcdMemberId } from './net-proxy.js';
import { b, mk, sleep, GrpcError, type TargetName } from './harness.js';
import { PutRequest, PutResponse } from '../src/proto/gen/etcdserverpb/rpc.js';

const target = (process.env.CONCORD_CLUSTER_TARGET ?? 'etcd') as TargetName;
const clusters: Cluster[] = [];
after(async () => { for (const c of clusters) await c.destroy(); });

/** Put through member `via` until it succeeds (a just-changed leader may refuse for a moment). */
async function putEventually(c: Cluster, via: number, key: string, value: string): Promise<number> {
  for (let i = 0; ; i++) {
    try { return (await c.member(via).rpc.put({ key: b(key), value: b(value) })).header!.revision; } catch (e) {
      if (i >= 50 || !(e instanceof GrpcError)) throw e;
      await sleep(200);
    }
  }
}

async function valueAt(c: Cluster, i: number, key: string, serializable = false): Promise<string | undefined> {
  const r = await c.member(i).rpc.range({ key: b(key), serializable });
  return r.kvs[0]?.value ? Buffer.from(r.kvs[0].value).toString() : undefined;
}

/** Wait until member i serves `value` for `key` from its own store (serializable read). */
async function waitValue(c: Cluster, i: number, key: string, value: string): Promise<void> {
  for (let n = 0; n < 100; n++) {
    if (await valueAt(c, i, key, true).catch(() => undefined) === value) return;
    await sleep(100);
  }
  assert.equal(await valueAt(c, i, key, true), value, `member ${i} never caught up on ${key}`);
}

describe(`cluster harness (${target})`, () => {
  test('3 members: ids as etcd derives them, a write through one member is read through every member', async () => {
    const c = await startCluster({ target, size: 3 });
    clusters.push(c);
    assert.equal(c.endpoints().length, 3);
    assert.equal(new Set(c.endpoints()).size, 3);
    const list = await c.member(0).rpc.memberList();
    assert.equal(list.members.length, 3);
    for (const m of c.members) {
      const listed = list.members.find((x) => x.name === m.name);
      assert.ok(listed, `${m.name} listed`);
      assert.deepEqual(listed.peerURLs, [m.advertisedPeerUrl]);
      assert.equal(listed.ID, etcdMemberId([m.advertisedPeerUrl], m.clusterToken), `${m.name}'s id as the proxy computes it`);
    }
    await putEventually(c, 1, 'h/k', 'v1');
    for (let i = 0; i < 3; i++) assert.equal(await valueAt(c, i, 'h/k'), 'v1');
    assert.ok((await c.leaderIndex()) >= 0);
  });

  test('3 members: kill -9 the leader, a new leader takes writes, the old one restarts and catches up', async () => {
    const c = await startCluster({ target, size: 3 });
    clusters.push(c);
    const old = await c.waitForLeader();
    const pid = c.member(old).pid!;
    await c.kill(old);
    assert.throws(() => process.kill(pid, 0), 'the killed pid is gone');
    assert.deepEqual(c.live().length, 2);
    const now = await c.waitForLeader();
    assert.notEqual(now, old);
    const other = c.live().find((i) => i !== now)!;
    await putEventually(c, other, 'h/after-kill', 'x');
    await c.restart(old);
    assert.notEqual(c.member(old).pid, pid);
    await waitValue(c, old, 'h/after-kill', 'x');
    assert.equal(await valueAt(c, old, 'h/after-kill'), 'x', 'linearizable read on the restarted member');
  });

  test('3 members: a paused follower misses writes and catches up on resume; stop() ends a paused member', async () => {
    const c = await startCluster({ target, size: 3 });
    clusters.push(c);
    const leader = await c.waitForLeader();
    const f = [0, 1, 2].find((i) => i !== leader)!;
    c.pause(f);
    assert.deepEqual(c.live().sort(), [0, 1, 2].filter((i) => i !== f));
    await putEventually(c, leader, 'h/paused', 'p');
    c.resume(f);
    await waitValue(c, f, 'h/paused', 'p');
    c.pause(f);
    const how = await c.stop(f);
    assert.equal(how.killed, false, 'SIGTERM reached the paused member (SIGCONT first)');
    assert.equal(c.member(f).running, false);
  });

  test('5 members: survives 2 killed members, loses quorum at 3, recovers on restart; destroy removes pids and dirs', async () => {
    const c = await startCluster({ target, size: 5 });
    const leader = await c.waitForLeader();
    const victims = [0, 1, 2, 3, 4].filter((i) => i !== leader).slice(0, 3);
    await c.kill(victims[0]!);
    await c.kill(victims[1]!);
    await putEventually(c, leader, 'h/five', 'two-down');
    await c.kill(victims[2]!);
    // Two of five left: no quorum, a write cannot commit (it fails once its deadline passes).
    await assert.rejects(c.member(leader).rpc.unary('/etcdserverpb.KV/Put', PutRequest, PutResponse,
      mk.put({ key: b('h/five'), value: b('no-quorum') }), 3000));
    await Promise.all(victims.map((i) => c.restart(i)));
    await c.waitForLeader();
    await putEventually(c, victims[0]!, 'h/five', 'all-back');
    for (let i = 0; i < 5; i++) await waitValue(c, i, 'h/five', 'all-back');
    const pids = c.members.map((m) => m.pid!);
    const dirs = c.members.map((m) => m.dataDir);
    await c.destroy();
    for (const pid of pids) assert.throws(() => process.kill(pid, 0), `pid ${pid} gone`);
    for (const d of dirs) assert.equal(existsSync(d), false, `${d} removed`);
  });
});
