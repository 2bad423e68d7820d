// Multi-member clusters of real processes driven by real etcdctl: three Concord members
// beside three etcd members (same etcdctl transcript once ids, ports and timings are masked),
// failover under a writer, and mixed clusters where Concord and etcd members share one raft
// group through etcd's own peer protocol.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sleep, runEtcd, runConcord, type TargetName } from './harness.js';
import { startCluster, startWriter, missingKeys, hashesAtCommonRevision, type ClusterMember, type Cluster } from './cluster-harness.js';

/** etcdctl against one member. */
const ctlAt = (m: ClusterMember, args: string[]) => m.etcdctl(args);

function ok(r: { code: number | null; stdout: string; stderr: string }, what: string): string {
  assert.equal(r.code, 0, `${what}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/**
 * `endpoint health --cluster` (its verdicts go to stderr): the healthy members, counted. On a
 * loaded machine a check can outlast etcdctl's own timeout: asked again, a few times.
 */
async function healthyMembers(c: Cluster, transcript: string[] = []): Promise<number> {
  let healthy = 0;
  for (let attempt = 0; attempt < 5 && healthy < c.members.length; attempt++) {
    const r = await c.ctl(['endpoint', 'health', '--cluster']);
    transcript.push(r.stdout + r.stderr);
    healthy = (r.stdout + r.stderr).split('\n').filter((l) => / is healthy: successfully committed proposal: took = /.test(l)).length;
  }
  return healthy;
}

/** The member's name without a target suffix (j2-concord -> j2). */
const bare = (name: string) => name.replace(/-(etcd|concord)$/, '');

/**
 * The etcdctl session the cluster tests compare: writes through every member, reads from
 * every member (linearizable, then serializable), member list, endpoint status/health over
 * the cluster, move-leader. Returns a transcript with ids, ports and timings masked.
 */
async function etcdctlSession(c: Cluster): Promise<string[]> {
  const out: string[] = [];
  const ms = c.members;
  for (const [i, m] of ms.entries()) out.push(`put via ${bare(m.name)}: ${ok(await ctlAt(m, ['put', `k${i}`, `v${i}`]), 'put').trim()}`);
  for (const m of ms) {
    const lin = ok(await ctlAt(m, ['get', '--prefix', 'k', '--print-value-only']), 'get');
    const ser = ok(await ctlAt(m, ['get', '--prefix', 'k', '--print-value-only', '--consistency=s']), 'get -s');
    out.push(`get from ${bare(m.name)}: ${lin.trim().split('\n').join(' ')} | serializable: ${ser.trim().split('\n').join(' ')}`);
  }

  out.push(...await leaseSession(ms));

  // A member's name appears once its publish has applied where etcdctl asked (not before).
  type Listed = { members: Array<{ ID: number; name?: string; peerURLs: string[]; clientURLs?: string[] }> };
  let list: Listed = { members: [] };
  for (let i = 0; i < 100; i++) {
    list = JSON.parse(ok(await c.ctl(['member', 'list', '-w', 'json']), 'member list')) as Listed;
    if (list.members.every((m) => m.name)) break;
    await sleep(100);
  }
  const byName = new Map(ms.map((m) => [m.name, m]));
  for (const lm of [...list.members].sort((x, y) => (x.name ?? '').localeCompare(y.name ?? ''))) {
    const m = byName.get(lm.name ?? '');
    out.push(`member ${bare(lm.name ?? '?')}: peer ${lm.peerURLs.join(',') === m?.peerUrl} client ${lm.clientURLs?.join(',') === m?.endpoint}`);
  }

  const table = ok(await c.ctl(['endpoint', 'status', '--cluster', '-w', 'table']), 'endpoint status');
  const rows = table.split('\n').filter((l) => l.startsWith('| ') && !l.includes('ENDPOINT')).map((l) => l.split('|').map((x) => x.trim()));
  out.push(`status header: ${table.split('\n')[1]}`);
  out.push(`status rows: ${rows.length}, leaders: ${rows.filter((r) => r[5] === 'true').length}, terms agree: ${new Set(rows.map((r) => r[7])).size === 1}`);

  out.push(`healthy: ${await healthyMembers(c)}`);

  const leader = await c.leader();
  const target = ms.find((m) => m !== leader)!;
  const targetId = (await c.withClients(async (cs) => cs.find((x) => x.member === target)!.client.status())).header!.memberId;
  const moved = ok(await c.ctl(['move-leader', targetId.toString(16)]), 'move-leader');
  out.push(`move-leader: ${/^Leadership transferred from [0-9a-f]+ to [0-9a-f]+$/.test(moved.trim())} ${moved.includes(`to ${targetId.toString(16)}`)}`);
  out.push(`new leader is the target: ${(await c.leader()) === target}`);
  out.push(`put after move: ${ok(await ctlAt(ms[0]!, ['put', 'after-move', 'x']), 'put').trim()}`);
  for (const m of ms) out.push(`read after move from ${bare(m.name)}: ${ok(await ctlAt(m, ['get', 'after-move', '--print-value-only']), 'get').trim()}`);

  // A member that is not the leader refuses to move leadership (etcdctl asks the leader only;
  // the RPC itself answers "etcdserver: not leader").
  const follower = ms.find((m) => m !== target)!;
  const refused = await ctlAt(follower, ['move-leader', targetId.toString(16)]);
  out.push(`move-leader via a follower only: exit ${refused.code} ${refused.stderr.includes('no leader endpoint given at')}`);
  return out;
}

/**
 * Lease renewals and TTL queries through every member: a follower forwards them to the
 * leader over the peer URLs (etcd's /leases and /leases/internal). Ids and remaining
 * seconds are masked.
 */
async function leaseSession(ms: readonly ClusterMember[]): Promise<string[]> {
  const out: string[] = [];
  const granted = ok(await ctlAt(ms[0]!, ['lease', 'grant', '60']), 'lease grant');
  const id = /^lease ([0-9a-f]+) granted/.exec(granted)![1]!;
  ok(await ctlAt(ms[0]!, ['put', '--lease', id, 'leased', 'x']), 'put --lease');
  const mask = (text: string) => text.trim().replaceAll(id, 'ID').replace(/remaining\(\d+s\)/, 'remaining(Ns)');
  for (const m of ms) {
    out.push(`keep-alive via ${bare(m.name)}: ${mask(ok(await ctlAt(m, ['lease', 'keep-alive', '--once', id]), 'keep-alive'))}`);
    out.push(`timetolive via ${bare(m.name)}: ${mask(ok(await ctlAt(m, ['lease', 'timetolive', '--keys', id]), 'timetolive'))}`);
    const missing = await ctlAt(m, ['lease', 'timetolive', '1234']);
    out.push(`timetolive of an unknown lease via ${bare(m.name)}: exit ${missing.code} ${(missing.stdout + missing.stderr).trim()}`);
  }
  return out;
}

async function withCluster<T>(kinds: TargetName[], fn: (c: Cluster) => Promise<T>, extraArgs: string[] = []): Promise<T> {
  const c = await startCluster({ targets: kinds, flags: extraArgs });
  try {
    return await fn(c);
  } finally {
    await c.destroy();
  }
}

test('3 Concord members: etcdctl put/get on every member, member list, endpoint status/health --cluster, move-leader; as a 3-member etcd', { skip: !runConcord(), timeout: 180_000 }, async () => {
  const concord = await withCluster(['concord', 'concord', 'concord'], etcdctlSession);
  for (const line of [
    'get from m0: v0 v1 v2 | serializable: v0 v1 v2',
    'status rows: 3, leaders: 1, terms agree: true',
    'healthy: 3',
    'keep-alive via m1: lease ID keepalived with TTL(60)',
    'timetolive via m2: lease ID granted with TTL(60s), remaining(Ns), attached keys([leased])',
    'timetolive of an unknown lease via m1: exit 0 lease 0000000000001234 already expired',
    'move-leader: true true',
    'new leader is the target: true',
    'read after move from m2: x',
  ]) assert.ok(concord.includes(line), `${line}\n${concord.join('\n')}`);
  if (!runEtcd()) return;
  const etcd = await withCluster(['etcd', 'etcd', 'etcd'], etcdctlSession);
  assert.deepEqual(concord, etcd);
});

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Every key in `keys` is readable (linearizably) from every running member. */
async function assertAllReadable(c: Cluster, prefix: string, keys: readonly string[]): Promise<void> {
  for (const [name, missing] of Object.entries(await missingKeys(c, prefix, keys))) assert.deepEqual(missing, [], `${name} lacks acknowledged writes`);
}

/** HashKV agrees across the running members at the cluster's current revision. */
async function assertHashesAgree(c: Cluster): Promise<void> {
  const { revision, hashes } = await hashesAtCommonRevision(c);
  assert.equal(new Set(hashes.map((h) => h.hash)).size, 1, `HashKV differs at revision ${revision}: ${JSON.stringify(hashes)}`);
}

test('failover: SIGKILL the leader under a writer; a new leader takes writes; every acknowledged write on every member; the old leader rejoins and catches up', { skip: !runConcord(), timeout: 180_000 }, async () => {
  await withCluster(['concord', 'concord', 'concord'], async (c) => {
    const w = startWriter(c, 'fo/');
    await until('writes before the kill', () => w.acked.length >= 100);
    const old = await c.leader();
    await old.kill();
    const killedAt = w.acked.length;
    await until('writes after the kill', () => w.acked.length >= killedAt + 100);
    await w.stop();
    const next = await c.leader();
    assert.notEqual(next, old);
    await assertAllReadable(c, 'fo/', w.acked);
    await assertHashesAgree(c);

    await old.restart();
    await until('the old leader has caught up', async () => {
      const hs = await c.hashes();
      return new Set(hs.map((h) => h.revision)).size === 1;
    });
    await assertAllReadable(c, 'fo/', w.acked);
    await assertHashesAgree(c);
  }, ['--heartbeat-interval', '50', '--election-timeout', '500']);
});

/** Writes through every member, reads every write from every member, leadership on each member in turn. */
async function mixedSession(c: Cluster): Promise<void> {
  const ids = await c.withClients(async (cs) => Promise.all(cs.map(async ({ member, client }) => ({ member, id: (await client.status()).header!.memberId }))));
  for (const { member: leaderWanted, id } of ids) {
    const leader = await c.leader();
    if (leader !== leaderWanted) ok(await c.ctl(['move-leader', id.toString(16)]), 'move-leader');
    assert.equal(await c.leader(), leaderWanted);
    const round = bare(leaderWanted.name);
    for (const m of c.members) ok(await ctlAt(m, ['put', `mixed/${round}/${bare(m.name)}`, `written through ${m.target} while ${leaderWanted.target} leads`]), 'put');
    for (const line of await leaseSession(c.members)) {
      assert.match(line, /: lease ID keepalived with TTL\(60\)$|: lease ID granted with TTL\(60s\), remaining\(Ns\), attached keys\(\[leased\]\)$|: exit 0 lease 0000000000001234 already expired$/, `while ${leaderWanted.name} leads`);
    }
  }
  const expected = ids.flatMap(({ member: l }) => c.members.map((m) => `mixed/${bare(l.name)}/${bare(m.name)}`)).sort();
  for (const m of c.members) {
    for (const consistency of ['l', 's']) {
      const keys = ok(await ctlAt(m, ['get', '--prefix', 'mixed/', '--keys-only', `--consistency=${consistency}`]), 'get').split('\n').filter((l) => l !== '');
      assert.deepEqual(keys, expected, `${m.name} (${consistency})`);
    }
  }
  await assertHashesAgree(c);
  const transcript: string[] = [];
  assert.equal(await healthyMembers(c, transcript), 3, transcript.join('\n'));
}

test('mixed cluster: 2 Concord + 1 etcd, each member leading in turn, writes through every member, every member reads every write', { skip: !runConcord() || !runEtcd(), timeout: 180_000 }, async () => {
  await withCluster(['concord', 'concord', 'etcd'], mixedSession);
});

test('mixed cluster: 1 Concord + 2 etcd, each member leading in turn, writes through every member, every member reads every write', { skip: !runConcord() || !runEtcd(), timeout: 180_000 }, async () => {
  await withCluster(['concord', 'etcd', 'etcd'], mixedSession);
});

/** Retries an etcdctl command etcd refuses for a while (member add right after start: "unhealthy cluster"; promote before the learner caught up). */
async function ctlRetrying(m: ClusterMember[], args: string[], timeoutMs = 30_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await m[0]!.etcdctl(args.concat(['--endpoints', m.map((x) => x.endpoint).join(',')]));
    if (r.code === 0) return r.stdout;
    // An earlier attempt that timed out on the client may have been applied.
    if (args[1] === 'add' && r.stderr.includes('Peer URLs already exists')) return r.stdout;
    if (Date.now() > deadline) return ok(r, args.join(' '));
    await sleep(500);
  }
}

test('join: Concord members join a running etcd cluster (etcdctl member add, then as a learner promoted by etcd), an etcd member is removed; every member reads every write', { skip: !runConcord() || !runEtcd(), timeout: 240_000 }, async () => {
  await withCluster(['etcd', 'etcd'], async (c) => {
    const etcds = [...c.members];
    ok(await ctlAt(etcds[0]!, ['put', 'before-join', '1']), 'put');

    const voter = await c.addMember('concord', 'j2-concord');
    await ctlRetrying(etcds, ['member', 'add', voter.name, `--peer-urls=${voter.peerUrl}`]);
    await voter.start();
    assert.equal(ok(await ctlAt(voter, ['get', 'before-join', '--print-value-only']), 'get').trim(), '1');

    const learner = await c.addMember('concord', 'j3-concord');
    await ctlRetrying(etcds, ['member', 'add', learner.name, '--learner', `--peer-urls=${learner.peerUrl}`]);
    // By its peer URL (a retried add answers "Peer URLs already exists", not the id).
    // Ids pass 2^53: read textually, not through JSON.parse.
    const listed = ok(await ctlAt(etcds[0]!, ['member', 'list', '-w', 'json']), 'member list');
    const entry = [...listed.matchAll(/\{"ID":(\d+)[^{}]*\}/g)].find((x) => x[0].includes(`"${learner.peerUrl}"`))!;
    const learnerId = BigInt(entry[1]!).toString(16);
    await learner.start();
    await ctlRetrying(etcds, ['member', 'promote', learnerId]);

    // The first etcd member leaves; the cluster is 1 etcd + 2 Concord from here.
    const leaving = etcds[0]!;
    const leavingId = (await c.withClients(async (cs) => cs.find((x) => x.member === leaving)!.client.status())).header!.memberId;
    ok(await ctlAt(etcds[1]!, ['member', 'remove', leavingId.toString(16)]), 'member remove');
    await leaving.stop();
    c.members.splice(c.members.indexOf(leaving), 1);
    await c.leader();
    for (const m of c.members) ok(await ctlAt(m, ['put', `after/${bare(m.name)}`, m.target]), 'put');
    for (const m of c.members) {
      const keys = ok(await ctlAt(m, ['get', '--prefix', '', '--keys-only']), 'get').split('\n').filter((l) => l !== '');
      assert.deepEqual(keys, ['after/j2', 'after/j3', 'after/m1', 'before-join'], m.name);
    }
    const list = ok(await c.ctl(['member', 'list']), 'member list');
    assert.equal(list.trim().split('\n').length, 3, list);
    assert.ok(!list.includes(', true'), `no learner left: ${list}`);
    await assertHashesAgree(c);
  });
});

/**
 * etcd's Stop: a leader stopped with SIGTERM first hands its leadership to the voter connected
 * longest, so the others take writes without waiting out an election timeout. What the stopped
 * leader logged of it, and whether the member it named leads afterwards.
 */
async function stopLeaderSession(c: Cluster, first: ClusterMember): Promise<string[]> {
  const ids = new Map((await c.statuses()).map((s, i) => [c.member(i), s!.header!.memberId.toString(16)]));
  let leader = await c.leader();
  if (leader !== first) ok(await c.ctl(['move-leader', ids.get(first)!]), 'move-leader');
  leader = await c.leader();
  assert.equal(leader, first);
  await leader.stop();
  const after = await c.leader(60_000);
  const logged = leader.target === 'etcd'
    ? /finished leadership transfer from ([0-9a-f]+) to ([0-9a-f]+)/.exec(leader.log)
    : /"msg":"leadership transfer finished"[^\n]*"old-leader-member-id":"([0-9a-f]+)","new-leader-member-id":"([0-9a-f]+)"/.exec(leader.log);
  return [
    `transfer logged: ${logged !== null}`,
    `from the stopped leader: ${logged?.[1] === ids.get(leader)}`,
    `to the member leading now: ${logged?.[2] === ids.get(after)}`,
    `skipped as single voter: ${leader.log.includes('skipped leadership transfer for single voting member cluster')}`,
  ];
}

test('a leader stopped with SIGTERM hands its leadership over first (Concord leading etcd followers), as etcd does', { skip: !runConcord(), timeout: 180_000 }, async () => {
  const expected = ['transfer logged: true', 'from the stopped leader: true', 'to the member leading now: true', 'skipped as single voter: false'];
  const kinds: TargetName[] = runEtcd() ? ['concord', 'etcd', 'etcd'] : ['concord', 'concord', 'concord'];
  assert.deepEqual(await withCluster(kinds, (c) => stopLeaderSession(c, c.member(0))), expected);
  if (runEtcd()) assert.deepEqual(await withCluster(['etcd', 'etcd', 'etcd'], (c) => stopLeaderSession(c, c.member(0))), expected);
});

test('a single voting member moves its leadership to itself as etcd does (logged, nothing changes), and stops without a transfer and says so', { skip: !runConcord(), timeout: 60_000 }, async () => {
  const single = async (c: Cluster): Promise<string[]> => {
    const m = await c.leader();
    const id = (await c.statuses())[0]!.header!.memberId.toString(16);
    const moved = ok(await c.ctl(['move-leader', id]), 'move-leader to itself').trim();
    await m.stop();
    const finished = m.target === 'etcd' ? `finished leadership transfer from ${id} to ${id}` : `"old-leader-member-id":"${id}","new-leader-member-id":"${id}"`;
    return [
      `move-leader: ${moved === `Leadership transferred from ${id} to ${id}`}`,
      `transfer to itself logged: ${m.log.includes(finished)}`,
      `skipped as single voter: ${m.log.includes('skipped leadership transfer for single voting member cluster')}`,
    ];
  };
  const expected = ['move-leader: true', 'transfer to itself logged: true', 'skipped as single voter: true'];
  assert.deepEqual(await withCluster(['concord'], single), expected);
  if (runEtcd()) assert.deepEqual(await withCluster(['etcd'], single), expected);
});
