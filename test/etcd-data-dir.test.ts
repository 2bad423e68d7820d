// Concord boots from an etcd data dir (member/snap/db is imported into LMDB on the first start):
// - a real etcd member's data dir (stopped; snapshots taken, WAL entries past the newest snap
//   file, compaction, deletes, leases with keys, users and roles): every key and revision,
//   history after the compaction, HashKV, leases, users/roles, the member and cluster ids;
// - what real `etcdctl snapshot restore` wrote from a real etcd snapshot: real etcd and Concord
//   boot two copies of it and agree on keys, revisions, HashKV, members and cluster id;
// - a backend that does not match the WAL and snap files (ahead of the WAL, behind the newest
//   snapshot) is refused with a clear error and nothing is written.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, copyFileSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Server, startServer, freePort, runConcord, runEtcd, b, type EtcdClient } from './harness.js';
import { concordutl } from './concordutl-cli.js';
import type { KeyValue } from '../src/proto/index.js';

const servers: Server[] = [];
after(async () => { for (const s of servers) await s.destroy(); });
const needBoth = { skip: !(runEtcd() && runConcord()) && 'needs real etcd and Concord' };

const all = { key: b('\0'), rangeEnd: b('\0') };
const view = (kvs: KeyValue[]) => kvs.map((kv) => [Buffer.from(kv.key).toString(), Buffer.from(kv.value).toString('base64'), Number(kv.createRevision), Number(kv.modRevision), Number(kv.version), String(kv.lease)]);

async function fill(c: EtcdClient, n: number, tag: string): Promise<void> {
  const big = Buffer.alloc(9000, tag);
  for (let i = 0; i < n; i++) await c.put({ key: b(`${tag}/${String(i).padStart(4, '0')}`), value: i % 25 === 0 ? big : b(`v${i}`) });
  for (let i = 0; i < n; i += 4) await c.put({ key: b(`${tag}/${String(i).padStart(4, '0')}`), value: b(`w${i}`) });
}

/** What a client sees of a member, compared between etcd and Concord. */
async function observe(s: Server, oldRev: number) {
  const c = s.client();
  try {
    const live = await c.range(all);
    const rev = Number(live.header!.revision);
    const hash = await c.hashKV(rev);
    const members = (await c.memberList()).members.map((m) => [m.ID.toString(16), m.peerURLs]);
    const leases = (await s.etcdctl(['lease', 'list'])).stdout.split('\n').slice(1).filter(Boolean).sort();
    const leaseKeys = [];
    for (const id of leases) {
      const ttl = JSON.parse((await s.etcdctl(['lease', 'timetolive', id, '--keys', '-w', 'json'])).stdout) as { grantedTTL: number; keys?: string[] };
      leaseKeys.push([id, ttl.grantedTTL, (ttl.keys ?? []).map((k) => Buffer.from(k, 'base64').toString()).sort()]);
    }
    return {
      kvs: view(live.kvs), rev, old: view((await c.range({ ...all, revision: oldRev })).kvs),
      hash: hash.hash, compactRevision: Number(hash.compactRevision),
      clusterId: live.header!.clusterId.toString(16), members, leaseKeys,
      users: (await s.etcdctl(['user', 'list'])).stdout, role: (await s.etcdctl(['role', 'get', 'reader'])).stdout,
    };
  } finally {
    c.close();
  }
}

/** A server that is not started yet, on fresh ports (its data dir gets written first). */
async function unstarted(target: 'etcd' | 'concord', name: string): Promise<Server> {
  const s = new Server({ target, name });
  servers.push(s);
  s.clientPort = await freePort();
  s.peerPort = await freePort();
  return s;
}

test('a stopped etcd member\'s data dir starts as Concord with every key, revision, lease, user and member', needBoth, async () => {
  const e = await startServer({ target: 'etcd', extraArgs: ['--snapshot-count', '60'] });
  servers.push(e);
  const ec = e.client();
  const lease = await ec.leaseGrant({ TTL: 3000 });
  const other = await ec.leaseGrant({ TTL: 2000 });
  await fill(ec, 200, 'a');
  await ec.put({ key: b('leased/1'), value: b('x'), lease: lease.ID });
  await ec.put({ key: b('leased/2'), value: b('y'), lease: lease.ID });
  await ec.put({ key: b('leased/3'), value: b('z'), lease: other.ID });
  await ec.deleteRange({ key: b('a/01'), rangeEnd: b('a/02') });
  const mid = await ec.put({ key: b('mid'), value: b('m') });
  await ec.compact({ revision: Number(mid.header!.revision) - 40 });
  const oldRev = Number(mid.header!.revision) - 20;
  await fill(ec, 30, 'b'); // entries after the newest snapshot, replayed from the WAL
  ec.close();
  for (const args of [['user', 'add', 'alice', '--new-user-password', 'pw'], ['role', 'add', 'reader'],
    ['role', 'grant-permission', 'reader', 'read', 'a/', 'a0'], ['user', 'grant-role', 'alice', 'reader']]) {
    assert.equal((await e.etcdctl(args)).code, 0, args.join(' '));
  }
  const want = await observe(e, oldRev);
  await e.stop();
  const snaps = readdirSync(join(e.dataDir, 'member', 'snap')).filter((n) => n.endsWith('.snap'));
  assert.ok(snaps.length > 0, 'etcd took snapshots (Concord reads their v2 store as membership)');

  const c = await unstarted('concord', e.name);
  cpSync(e.dataDir, c.dataDir, { recursive: true });
  await c.start();
  assert.match(c.log, /"msg":"importing bbolt database"/);
  assert.match(c.log, /"msg":"imported the etcd data dir"/);
  const got = await observe(c, oldRev);
  assert.ok(got.kvs.length > 100 && got.leaseKeys.length === 2, `${got.kvs.length} keys, ${got.leaseKeys.length} leases`);
  // Concord's own published client URL differs, which the member list does not show here (peer URLs only).
  assert.deepEqual(got, want);
  for (const name of snaps) assert.deepEqual(readFileSync(join(c.dataDir, 'member', 'snap', name)), readFileSync(join(e.dataDir, 'member', 'snap', name)), `${name} kept as etcd wrote it`);

  // It serves writes, and a restart opens Concord's backend (no second import).
  const cc = c.client();
  const put = await cc.put({ key: b('after'), value: b('1') });
  assert.equal(Number(put.header!.revision), want.rev + 1);
  cc.close();
  await c.stop();
  await c.restart();
  assert.doesNotMatch(c.log, /importing/);
  const c2 = c.client();
  assert.equal(Number((await c2.range({ key: b('after') })).kvs[0]!.modRevision), want.rev + 1);
  assert.equal((await c2.range(all)).kvs.length, want.kvs.length + 1);
  c2.close();
});

test('etcdctl snapshot restore\'s data dir boots as Concord as it boots as etcd', needBoth, async () => {
  const e = await startServer({ target: 'etcd' });
  servers.push(e);
  const ec = e.client();
  const lease = await ec.leaseGrant({ TTL: 3000 });
  await fill(ec, 150, 'r');
  await ec.put({ key: b('leased'), value: b('x'), lease: lease.ID });
  const r = await ec.put({ key: b('z'), value: b('end') });
  await ec.compact({ revision: Number(r.header!.revision) - 30 });
  ec.close();
  assert.equal((await e.etcdctl(['role', 'add', 'reader'])).code, 0);
  const file = e.scratch('snap.db');
  assert.equal((await e.etcdctl(['snapshot', 'save', file])).code, 0);
  const oldRev = Number(r.header!.revision) - 10;

  // Two copies restored with the same flags: same member and cluster ids.
  const asEtcd = await unstarted('etcd', 'm0');
  const asConcord = new Server({ target: 'concord', name: 'm0' });
  servers.push(asConcord);
  asConcord.clientPort = asEtcd.clientPort;
  asConcord.peerPort = asEtcd.peerPort;
  for (const s of [asEtcd, asConcord]) {
    const res = await s.etcdctl(['snapshot', 'restore', file, '--data-dir', s.dataDir, '--name', 'm0',
      '--initial-cluster', `m0=${s.peerUrl}`, '--initial-advertise-peer-urls', s.peerUrl, '--initial-cluster-token', 'tok-m0']);
    assert.equal(res.code, 0, res.stderr);
  }
  await asEtcd.start();
  const want = await observe(asEtcd, oldRev);
  await asEtcd.stop();
  await asConcord.start();
  assert.match(asConcord.log, /"msg":"imported the etcd data dir"/);
  const got = await observe(asConcord, oldRev);
  assert.ok(got.kvs.length > 150);
  assert.deepEqual(got, want);
});

test('killed mid-import, the next start imports again from the start and serves every key and revision', needBoth, async () => {
  const e = await startServer({ target: 'etcd' });
  servers.push(e);
  const ec = e.client();
  // ~24 MB of values: the import takes long enough to be caught while it writes.
  const big = Buffer.alloc(16 * 1024, 'k');
  for (let i = 0; i < 1500; i += 50) {
    await Promise.all(Array.from({ length: 50 }, (_, j) => ec.put({ key: b(`k/${String(i + j).padStart(4, '0')}`), value: big })));
  }
  const last = await ec.put({ key: b('last'), value: b('1') });
  ec.close();
  const want = await observe(e, Number(last.header!.revision) - 100);
  await e.stop();

  const c = await unstarted('concord', e.name);
  cpSync(e.dataDir, c.dataDir, { recursive: true });
  const backend = join(c.dataDir, 'member', 'snap', 'concord.lmdb');
  c.launch();
  // Kill it once the half-written backend exists, before the rename that completes the import.
  const deadline = Date.now() + 60_000;
  while (!existsSync(`${backend}.importing`) && !existsSync(backend) && c.running && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
  await c.kill();
  assert.match(c.log, /"msg":"found an etcd data dir; importing its backend"/);
  assert.ok(existsSync(`${backend}.importing`) && !existsSync(backend), `killed mid-import (log: ${c.log.slice(-2000)})`);

  await c.restart();
  assert.match(c.log, /"msg":"imported the etcd data dir"/, 'the second start imported again');
  assert.ok(!existsSync(`${backend}.importing`), 'the half-written file is gone');
  const got = await observe(c, Number(last.header!.revision) - 100);
  assert.equal(got.kvs.length, 1501);
  assert.deepEqual(got, want);
});

test('an etcd backend that does not match the WAL and snap files is refused and nothing is written', needBoth, async () => {
  const e = await startServer({ target: 'etcd', extraArgs: ['--snapshot-count', '30'] });
  servers.push(e);
  let ec = e.client();
  await fill(ec, 20, 'p');
  ec.close();
  await e.stop();
  const early = e.scratch('early');
  cpSync(e.dataDir, early, { recursive: true });
  await e.restart();
  ec = e.client();
  await fill(ec, 120, 'q'); // snapshots past everything the early backend holds
  ec.close();
  await e.stop();

  // The later backend with the early WAL: ahead of the log.
  const ahead = await unstarted('concord', e.name);
  cpSync(early, ahead.dataDir, { recursive: true });
  copyFileSync(join(e.dataDir, 'member', 'snap', 'db'), join(ahead.dataDir, 'member', 'snap', 'db'));
  await assert.rejects(ahead.start(), /database file \(.*member\/snap\/db index \d+\) is ahead of the WAL \(last index \d+\): it is not this member's backend/);
  assert.deepEqual(readdirSync(join(ahead.dataDir, 'member', 'snap')).filter((n) => n.includes('concord')), [], 'no Concord backend written');

  // The early backend with the later WAL and snap files: behind the newest snapshot (etcd's message).
  const behind = await unstarted('concord', e.name);
  cpSync(e.dataDir, behind.dataDir, { recursive: true });
  copyFileSync(join(early, 'member', 'snap', 'db'), join(behind.dataDir, 'member', 'snap', 'db'));
  await assert.rejects(behind.start(), /database file \(.*member\/snap\/db index \d+\) does not match with snapshot \(index \d+\)/);
  assert.deepEqual(readdirSync(join(behind.dataDir, 'member', 'snap')).filter((n) => n.includes('concord') || n.endsWith('.etcd')), []);
  rmSync(early, { recursive: true, force: true });
});

test('round trip etcd -> Concord -> etcd: concordutl export writes a data dir real etcd boots with every key, revision, lease and member', needBoth, async () => {
  const e = await startServer({ target: 'etcd', extraArgs: ['--snapshot-count', '50'] });
  servers.push(e);
  const ec = e.client();
  const lease = await ec.leaseGrant({ TTL: 3000 });
  await fill(ec, 120, 'x');
  await ec.put({ key: b('leased/1'), value: b('l'), lease: lease.ID });
  const r = await ec.put({ key: b('x/0000'), value: b('again') });
  await ec.compact({ revision: Number(r.header!.revision) - 25 });
  ec.close();
  assert.equal((await e.etcdctl(['role', 'add', 'reader'])).code, 0);
  const oldRev = Number(r.header!.revision) - 10;
  await e.stop();

  // Concord adopts the data dir and writes on top of it (with snapshots of its own).
  const c = new Server({ target: 'concord', name: e.name, extraArgs: ['--snapshot-count', '40'] });
  servers.push(c);
  cpSync(e.dataDir, c.dataDir, { recursive: true });
  await c.start();
  const cc = c.client();
  await fill(cc, 60, 'y');
  await cc.deleteRange({ key: b('x/005'), rangeEnd: b('x/006') });
  cc.close();
  const want = await observe(c, oldRev);
  await c.stop();

  const back = new Server({ target: 'etcd', name: e.name });
  servers.push(back);
  rmSync(back.dataDir, { recursive: true, force: true });
  const res = await concordutl(['export', '--data-dir', c.dataDir, '--out', back.dataDir]);
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stderr, /"msg":"exported an etcd data dir"/);
  assert.match((await concordutl(['export', '--data-dir', c.dataDir, '--out', back.dataDir])).stderr, /Error: out dir ".*" exists/);
  await back.start();
  const got = await observe(back, oldRev);
  assert.ok(got.kvs.length > 150);
  assert.deepEqual(got, want, 'real etcd serves what Concord served: keys, revisions, HashKV, leases, roles, members, cluster id');
});
