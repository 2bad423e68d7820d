// concordutl snapshot status/restore with a snapshot saved from REAL etcd:
// - `concordutl snapshot status` prints what real `etcdctl snapshot status` prints (simple,
//   table, json, fields), for a saved snapshot and for etcd's own member/snap/db;
// - `concordutl snapshot restore` makes a Concord data dir; Concord boots from it with every
//   key, value, create/mod revision and version, history included, as a new cluster;
// - a Concord snapshot of that member restores too (both kinds of file are etcd's format);
// - a damaged file (sha256 mismatch) or one without a hash is refused and nothing is written.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createHash } from 'node:crypto';
import { Server, startServer, etcdctl, freePort, runConcord, runEtcd, b, type EtcdClient } from './harness.js';
import { concordutl } from './concordutl-cli.js';
import type { KeyValue } from '../src/proto/index.js';

const servers: Server[] = [];
after(async () => { for (const s of servers) await s.destroy(); });


async function fill(c: EtcdClient): Promise<void> {
  const big = Buffer.alloc(25_000, 'q');
  for (let i = 0; i < 800; i++) await c.put({ key: b(`r/${String(i).padStart(4, '0')}`), value: i % 50 === 0 ? big : b(`v${i}`) });
  for (let i = 0; i < 800; i += 3) await c.put({ key: b(`r/${String(i).padStart(4, '0')}`), value: b(`w${i}`) });
  await c.deleteRange({ key: b('r/01'), rangeEnd: b('r/02') });
  const r = await c.put({ key: b('z'), value: b('end') });
  await c.compact({ revision: Number(r.header!.revision) - 60 });
}

const all = { key: b('\0'), rangeEnd: b('\0') };
const view = (kvs: KeyValue[]) => kvs.map((kv) => [Buffer.from(kv.key).toString(), Buffer.from(kv.value).toString('base64'), Number(kv.createRevision), Number(kv.modRevision), Number(kv.version)]);

/** A Concord member named `name` on fresh ports, not started (its data dir is restored into). */
async function newMember(name: string): Promise<Server> {
  const s = new Server({ target: 'concord', name });
  servers.push(s);
  s.clientPort = await freePort();
  s.peerPort = await freePort();
  return s;
}

const restoreArgs = (file: string, s: Server) => ['snapshot', 'restore', file, '--data-dir', s.dataDir, '--name', s.name,
  '--initial-cluster', `${s.name}=${s.peerUrl}`, '--initial-advertise-peer-urls', s.peerUrl, '--initial-cluster-token', `tok-${s.name}`];

test('concordutl: status as etcdctl prints it; restore of a real etcd snapshot boots Concord with every key and revision',
  { skip: !(runEtcd() && runConcord()) && 'needs real etcd and Concord' }, async () => {
    const e = await startServer({ target: 'etcd' });
    servers.push(e);
    const ec = e.client();
    await fill(ec);
    const live = await ec.range(all);
    const oldRev = Number(live.header!.revision) - 30;
    const old = await ec.range({ ...all, revision: oldRev });
    const etcdMember = (await ec.memberList()).members[0]!.ID;
    ec.close();
    const file = e.scratch('etcd.db');
    assert.equal((await e.etcdctl(['snapshot', 'save', file])).code, 0);

    for (const w of ['simple', 'table', 'json', 'fields']) {
      const want = await etcdctl(e.endpoint, ['snapshot', 'status', file, '-w', w]);
      const got = await concordutl(['snapshot', 'status', file, '-w', w]);
      assert.equal(want.code, 0, want.stderr);
      assert.deepEqual({ code: got.code, stdout: got.stdout }, { code: 0, stdout: want.stdout }, `-w ${w}: ${got.stderr}`);
    }

    // Refused files leave nothing behind.
    const bad = Buffer.from(readFileSync(file));
    bad[5000] ^= 0xff;
    writeFileSync(e.scratch('bad.db'), bad);
    const m0 = await newMember('c0');
    const refused = await concordutl(restoreArgs(e.scratch('bad.db'), m0));
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^Error: expected sha256 \[[\d ]+\], got \[[\d ]+\]\n$/m);
    writeFileSync(e.scratch('nohash.db'), readFileSync(file).subarray(0, bad.length - 32));
    const noHash = await concordutl(restoreArgs(e.scratch('nohash.db'), m0));
    assert.match(noHash.stderr, /Error: snapshot missing hash but --skip-hash-check=false/);
    // A sound hash over a damaged bbolt file (pages cut off): the reader's error, nothing written.
    const pages = readFileSync(file).subarray(0, bad.length - 32 - 8 * 4096);
    writeFileSync(e.scratch('cut.db'), Buffer.concat([pages, createHash('sha256').update(pages).digest()]));
    const cut = await concordutl(restoreArgs(e.scratch('cut.db'), m0));
    assert.equal(cut.code, 1);
    assert.match(cut.stderr, /Error: file is truncated: its meta page counts \d+ pages/);
    assert.ok(!existsSync(m0.dataDir), 'nothing written');
    assert.deepEqual(readdirSync(dirname(m0.dataDir)).filter((n) => n.includes('.restoring-')), [], 'no temporary dir left');

    const restored = await concordutl(restoreArgs(file, m0));
    assert.equal(restored.code, 0, restored.stderr);
    assert.match(restored.stderr, /"msg":"restored snapshot"/);
    const again = await concordutl(restoreArgs(file, m0));
    assert.match(again.stderr, /Error: data-dir ".*" exists/);
    await m0.restart();
    const c = m0.client();
    const got = await c.range(all);
    assert.ok(got.kvs.length > 500);
    assert.deepEqual(view(got.kvs), view(live.kvs), 'every key, value, create/mod revision and version');
    assert.equal(Number(got.header!.revision), Number(live.header!.revision));
    assert.deepEqual(view((await c.range({ ...all, revision: oldRev })).kvs), view(old.kvs), 'history after the compaction');
    const members = (await c.memberList()).members;
    assert.equal(members.length, 1);
    assert.notEqual(members[0]!.ID, etcdMember, 'a new member of a new cluster');
    const put = await c.put({ key: b('new'), value: b('x') });
    assert.equal(Number(put.header!.revision), Number(live.header!.revision) + 1);
    const after1 = await c.range(all);
    c.close();

    // Concord's own snapshot restores the same way.
    const cfile = m0.scratch('concord.db');
    assert.equal((await m0.etcdctl(['snapshot', 'save', cfile])).code, 0);
    const m1 = await newMember('c1');
    assert.equal((await concordutl(restoreArgs(cfile, m1))).code, 0);
    await m1.restart();
    const c1 = m1.client();
    assert.deepEqual(view((await c1.range(all)).kvs), view(after1.kvs));
    c1.close();

    // etcd's own data file (no trailer): status reads it as etcdctl does.
    await e.stop();
    const dbCopy = e.scratch('member.db');
    copyFileSync(join(e.dataDir, 'member', 'snap', 'db'), dbCopy);
    const want = await etcdctl(e.endpoint, ['snapshot', 'status', dbCopy, '-w', 'json']);
    const gotStatus = await concordutl(['snapshot', 'status', dbCopy, '-w', 'json']);
    assert.equal(gotStatus.stdout, want.stdout);
  });
