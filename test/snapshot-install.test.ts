// Applier.restore: a member's whole state replaced by a leader's snapshot, whose backend waits
// as etcd's bbolt file at <snap dir>/%016x.snap.db (the transport's job). Checked with a file
// streamed by another Concord member and with a real etcd member's backend and snap file:
// keys, revisions, HashKV, compaction, leases with their keys, auth, membership and alarms
// become the leader's; the consistent index is the file's; the member applies on from there.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Backend } from '../src/storage/index.js';
import { WatchableStore, storedConsistentIndex, type MvccStore } from '../src/mvcc/index.js';
import { Lessor } from '../src/lease/index.js';
import { testApplier, encodeRaftRequest, memberToJson, recoverSnapshotBackend, type Applier } from '../src/server/index.js';
import { v2StoreOfMembership } from '../src/server/v2-store.js';
import { nopLogger } from '../src/log/index.js';
import { etcdSnapshot } from '../src/snapshot/index.js';
import { readSnapFile } from '../src/wal/index.js';
import { AlarmMember, AlarmType, AlarmRequest_AlarmAction, EntryType, type Snapshot } from '../src/proto/index.js';
import { startServer, runEtcd, b, type Server } from './harness.js';

const dirs: string[] = [];
const servers: Server[] = [];
after(async () => {
  for (const s of servers) await s.destroy();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Member { dir: string; backend: Backend; store: MvccStore; lessor: Lessor; applier: Applier; membership: ReturnType<typeof testApplier>['membership']; next: number }

/** A member over a fresh LMDB in its own snap dir, with the server's real applier. */
function member(id: bigint): Member {
  const dir = mkdtempSync(join(tmpdir(), 'concord-install-'));
  dirs.push(dir);
  const backend = Backend.open({ path: join(dir, 'concord.lmdb') });
  const lessor = new Lessor({ backend, minTtlSeconds: 2, expiredRetryMs: 7000 });
  const store = WatchableStore.open({ backend, leaseExists: (l) => lessor.has(l), onKeyLease: (k, l) => lessor.attachKey(k, l) }).kv;
  const { applier, membership } = testApplier(id, store, 100, lessor);
  return { dir, backend, store, lessor, applier, membership, next: 1 };
}

type Req = Parameters<typeof encodeRaftRequest>[1];
function apply(m: Member, ...reqs: Req[]): void {
  for (const r of reqs) m.applier.apply({ term: 2, index: m.next++, type: EntryType.EntryNormal, data: encodeRaftRequest(0n, r) });
}
const put = (key: string, value: string, lease = 0n): Req => ({ kind: 'put', req: { key: b(key), value: b(value), lease, prevKv: false, ignoreValue: false, ignoreLease: false } });
const all = { key: b('\0'), rangeEnd: b('\0'), limit: 0, revision: 0, sortOrder: 0, sortTarget: 0, serializable: false, keysOnly: false, countOnly: false, minModRevision: 0, maxModRevision: 0, minCreateRevision: 0, maxCreateRevision: 0 };
const view = (s: MvccStore, revision = 0) => s.range({ ...all, revision }).kvs.map((kv) => [kv.key.toString(), kv.value.toString(), kv.createRevision, kv.modRevision, kv.version, kv.lease]);
const snapName = (index: number) => `${index.toString(16).padStart(16, '0')}.snap.db`;

test('a member takes a Concord leader\'s snapshot: every key, revision, lease, auth record, member and alarm', async () => {
  const leader = member(1n);
  apply(leader,
    { kind: 'leaseGrant', req: { TTL: 600, ID: 77n } }, { kind: 'leaseGrant', req: { TTL: 900, ID: 78n } },
    ...Array.from({ length: 300 }, (_, i) => put(`k/${String(i).padStart(3, '0')}`, `v${i}`.repeat(1 + (i % 40)), i % 10 === 0 ? 77n : 0n)),
    { kind: 'deleteRange', req: { key: b('k/05'), rangeEnd: b('k/06'), prevKv: false } },
    { kind: 'compaction', req: { revision: 250, physical: false } },
    put('k/000', 'again'),
    { kind: 'auth', req: { op: 'userAdd', req: { name: 'alice', password: '', options: { noPassword: true } }, hashedPassword: '' } },
    { kind: 'alarm', req: { action: AlarmRequest_AlarmAction.ACTIVATE, memberID: 1n, alarm: AlarmType.NOSPACE } },
  );
  leader.membership.add({ id: 1n, name: 'one', peerURLs: ['http://127.0.0.1:1'], clientURLs: [], isLearner: false });
  leader.membership.add({ id: 2n, name: 'two', peerURLs: ['http://127.0.0.1:2'], clientURLs: [], isLearner: false });
  await leader.store.forceCommit();
  const index = leader.next - 1;
  assert.equal(leader.store.consistentIndex(), index);

  const follower = member(2n);
  apply(follower, { kind: 'leaseGrant', req: { TTL: 600, ID: 5n } }, put('stale', 'x', 5n), put('k/000', 'old'));
  const watchBefore = follower.store.currentRevision;
  // The leader's backend as etcd's bbolt file, where the transport would have saved it.
  const file = await etcdSnapshot(await leader.backend.readView(), {
    members: leader.membership.list().map((m) => [Buffer.from(m.id.toString(16)), Buffer.from(memberToJson(m))]),
    alarm: [[Buffer.from(AlarmMember.encode({ memberID: 1n, alarm: AlarmType.NOSPACE }).finish()), Buffer.alloc(0)]],
  });
  const pages: Buffer[] = [];
  for await (const p of file.chunks()) pages.push(Buffer.from(p));
  await file.close();
  writeFileSync(join(follower.dir, snapName(index)), Buffer.concat(pages));

  const snap: Snapshot = { data: Buffer.from(leader.membership.toJson()), metadata: { index, term: 2, confState: { voters: [1n, 2n], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false } } };
  await follower.applier.restore(snap);

  assert.ok(follower.store.currentRevision > watchBefore);
  assert.deepEqual(view(follower.store), view(leader.store), 'every key with its revisions');
  assert.deepEqual(view(follower.store, 260), view(leader.store, 260), 'history after the compaction');
  assert.equal(follower.store.compactRevision, leader.store.compactRevision);
  assert.deepEqual(follower.store.hashKV(0), leader.store.hashKV(0));
  assert.equal(follower.store.consistentIndex(), index);
  assert.ok(follower.lessor.has(77n) && follower.lessor.has(78n) && !follower.lessor.has(5n), 'the leader\'s leases only');
  const leased = leader.lessor.lookup(77n)!.keys.size;
  assert.ok(leased > 20);
  assert.deepEqual([...follower.lessor.lookup(77n)!.keys].sort(), [...leader.lessor.lookup(77n)!.keys].sort());
  assert.deepEqual(follower.membership.list().map((m) => m.name), ['one', 'two']);
  assert.deepEqual([...follower.backend.scan('authUsers')].map(([k]) => k.toString()), ['alice']);
  assert.ok(!existsSync(join(follower.dir, snapName(index))), 'the imported file is consumed');
  assert.deepEqual(readdirSync(follower.dir).filter((n) => n.includes('restoring')), []);

  // It applies on from the snapshot: the leader's NOSPACE alarm refuses a put until disarmed.
  follower.next = index + 1;
  const one = (key: string) => follower.store.range({ ...all, key: b(key), rangeEnd: Buffer.alloc(0) }).kvs;
  apply(follower, put('blocked', '1'));
  assert.deepEqual(one('blocked'), [], 'the alarm came with the snapshot');
  apply(follower, { kind: 'alarm', req: { action: AlarmRequest_AlarmAction.DEACTIVATE, memberID: 1n, alarm: AlarmType.NOSPACE } }, put('after', '1'));
  assert.equal(one('after')[0]!.modRevision, leader.store.currentRevision + 1);
  // A revoke of the leader's lease deletes the keys it had (the lessor re-attached them).
  apply(follower, { kind: 'leaseRevoke', req: { ID: 77n } });
  assert.equal(view(follower.store).filter(([k]) => String(k).startsWith('k/')).length, view(leader.store).filter(([k]) => String(k).startsWith('k/')).length - leased);

  // The same backend reopened (a restart) holds the snapshot's state durably.
  await follower.store.close();
  const reopened = Backend.open({ path: join(follower.dir, 'concord.lmdb') });
  assert.equal([...reopened.scan('lease')].length, 1);
  await reopened.close();
  await leader.store.close();
});

test('a snapshot whose backend is behind it, or missing, is refused and the member keeps its state', async () => {
  const leader = member(1n);
  apply(leader, put('a', '1'), put('b', '2'));
  const file = await etcdSnapshot(await leader.backend.readView());
  const pages: Buffer[] = [];
  for await (const p of file.chunks()) pages.push(Buffer.from(p));
  await file.close();
  const follower = member(2n);
  apply(follower, put('mine', 'x'));
  const snap = (index: number): Snapshot => ({ data: Buffer.from(leader.membership.toJson()), metadata: { index, term: 2, confState: { voters: [1n], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false } } });
  await assert.rejects(follower.applier.restore(snap(9)), /failed to find database snapshot file/);
  writeFileSync(join(follower.dir, snapName(9)), Buffer.concat(pages));
  await assert.rejects(follower.applier.restore(snap(9)), /holds consistent index 2, behind its snapshot's index 9/);
  assert.deepEqual(view(follower.store).map(([k]) => k), ['mine']);
  await follower.store.close();
  await leader.store.close();
});

test('a member stopped after saving a leader\'s snapshot but before taking its file takes it at start-up (etcd\'s recoverSnapshotBackend)', async () => {
  const leader = member(1n);
  apply(leader, ...Array.from({ length: 40 }, (_, i) => put(`r/${i}`, `v${i}`)));
  leader.membership.add({ id: 1n, name: 'one', peerURLs: ['http://127.0.0.1:1'], clientURLs: [], isLearner: false });
  const index = leader.next - 1;
  const file = await etcdSnapshot(await leader.backend.readView());
  const pages: Buffer[] = [];
  for await (const p of file.chunks()) pages.push(Buffer.from(p));
  await file.close();
  const follower = member(2n);
  apply(follower, put('mine', 'x'));
  await follower.store.close();
  writeFileSync(join(follower.dir, snapName(index)), Buffer.concat(pages));
  const snap: Snapshot = { data: Buffer.from(v2StoreOfMembership(leader.membership, undefined, index)), metadata: { index, term: 2, confState: { voters: [1n], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false } } };

  // What startMember opens before anything reads the backend.
  const backend = Backend.open({ path: join(follower.dir, 'concord.lmdb') });
  try {
    assert.equal(await recoverSnapshotBackend(backend, snap, 7n, nopLogger()), true);
    assert.equal(storedConsistentIndex(backend), index);
    assert.equal([...backend.scan('key')].length, 40, 'the leader\'s keys, not the member\'s own');
    assert.ok(!existsSync(join(follower.dir, snapName(index))), 'the imported file is consumed');
    assert.equal(await recoverSnapshotBackend(backend, snap, 7n, nopLogger()), false, 'nothing to do once the backend holds the snapshot');
  } finally {
    await backend.close();
    await leader.store.close();
  }
});

test('a member takes a real etcd leader\'s snapshot (its bbolt backend and v2 store snap file)', { skip: !runEtcd() && 'needs real etcd' }, async () => {
  const e = await startServer({ target: 'etcd', extraArgs: ['--snapshot-count', '40'] });
  servers.push(e);
  const c = e.client();
  const lease = await c.leaseGrant({ TTL: 3000 });
  for (let i = 0; i < 120; i++) await c.put({ key: b(`e/${String(i).padStart(3, '0')}`), value: b(`v${i}`), lease: i % 7 === 0 ? lease.ID : 0n });
  await c.deleteRange({ key: b('e/01'), rangeEnd: b('e/02') });
  const last = await c.put({ key: b('z'), value: b('end') });
  await c.compact({ revision: Number(last.header!.revision) - 20 });
  const rev = Number(last.header!.revision);
  const hash = await c.hashKV(rev);
  const live = (await c.range({ key: b('\0'), rangeEnd: b('\0') })).kvs.map((kv) => [Buffer.from(kv.key).toString(), Buffer.from(kv.value).toString(), Number(kv.createRevision), Number(kv.modRevision), Number(kv.version), kv.lease]);
  const etcdMember = (await c.memberList()).members[0]!;
  c.close();
  await e.stop();

  const snapDir = join(e.dataDir, 'member', 'snap');
  const newest = readdirSync(snapDir).filter((n) => n.endsWith('.snap')).sort().at(-1)!;
  const snap = await readSnapFile(join(snapDir, newest)); // data: etcd's v2 store
  const follower = member(etcdMember.ID);
  apply(follower, put('stale', 'x'));
  copyFileSync(join(snapDir, 'db'), join(follower.dir, snapName(snap.metadata.index)));
  // The cluster id is the follower's own (membership comes from the v2 store, in the same cluster).
  await follower.applier.restore(snap);
  assert.deepEqual(view(follower.store).map((r) => [r[0], r[1], r[2], r[3], r[4], r[5]]), live);
  assert.equal(follower.store.currentRevision, rev);
  assert.equal(follower.store.hashKV(rev).hash, hash.hash, 'HashKV as etcd computes it');
  assert.ok(follower.lessor.has(lease.ID));
  assert.equal(follower.lessor.lookup(lease.ID)!.keys.size, live.filter((r) => r[5] === lease.ID).length);
  assert.deepEqual(follower.membership.list().map((m) => [m.id, m.peerURLs]), [[etcdMember.ID, etcdMember.peerURLs]]);
  assert.ok(follower.store.consistentIndex() >= snap.metadata.index);
  await follower.store.close();
});
