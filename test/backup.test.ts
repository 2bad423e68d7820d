// Continuous backup and point-in-time recovery (`concordutl backup start/restore`), against a
// real Concord: under a steady writer, the member is killed (-9) and restarted and the backup
// process is killed and restarted; then the store restored at several revisions (snapshot +
// replayed events, into a new data dir that Concord boots) equals, key by key with every
// revision, the original store read at that revision. A compaction past the point where a
// stopped backup would resume is reported as a gap and starts a new chain.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Server, startServer, freePort, runConcord, track, sleep, b, REPO_ROOT, type EtcdClient } from './harness.js';
import { listChains, listSegments } from '../src/backup/index.js';
import { rng } from '../src/testkit/index.js';
import type { KeyValue } from '../src/proto/index.js';

const servers: Server[] = [];
const children: ChildProcess[] = [];
after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const s of servers) await s.destroy();
});

interface Proc { child: ChildProcess; out: () => string; exited: Promise<number | null> }

function concordutl(args: string[]): Proc {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'concordutl.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  track(child);
  children.push(child);
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d) => { out += d; });
  child.stderr!.setEncoding('utf8').on('data', (d) => { out += d; });
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, out: () => out, exited };
}

async function until(what: string, cond: () => boolean, boundMs = 30_000): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await sleep(50);
  }
}

const all = { key: b('\0'), rangeEnd: b('\0') };
const view = (kvs: KeyValue[]) => kvs.map((kv) => [Buffer.from(kv.key).toString(), Buffer.from(kv.value).toString(), Number(kv.createRevision), Number(kv.modRevision), Number(kv.version)]);

/** Random puts, deletes and multi-put txns over a small key space; returns the last revision. */
async function write(c: EtcdClient, rand: () => number, n: number): Promise<number> {
  let rev = 0;
  for (let i = 0; i < n; i++) {
    const key = b(`key/${Math.floor(rand() * 40)}`);
    const r = rand();
    if (r < 0.6) rev = Number((await c.put({ key, value: b(`v${i}`) })).header!.revision);
    else if (r < 0.8) rev = Number((await c.deleteRange({ key })).header!.revision);
    else {
      const ops = [0, 1, 2].map((j) => ({ requestPut: { key: b(`txn/${Math.floor(rand() * 10)}-${j}`), value: b(`t${i}`), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } }));
      rev = Number((await c.txn({ success: ops })).header!.revision);
    }
  }
  return rev;
}

const backupDone = (dir: string, rev: number) => () => listChains(dir).some((ch) => (listSegments(ch.dir).at(-1)?.last ?? ch.revision) >= rev);

test('concord: continuous backup survives a member restart and its own restart; restores equal the store at each revision', { skip: !runConcord() && 'Concord not selected' }, async () => {
  const s = await startServer({ target: 'concord' });
  servers.push(s);
  let c = s.client();
  const rand = rng(2024);
  await write(c, rand, 50);
  const dir = s.scratch('backup');
  const start = () => concordutl(['backup', 'start', '--endpoints', s.endpoint, '--dir', dir, '--segment-interval', '300ms', '--snapshot-interval', '1h']);
  let backup = start();
  await until('the first chain', () => /started backup chain/.test(backup.out()));
  const snapRev = listChains(dir)[0]!.revision;

  const rev1 = await write(c, rand, 120);
  c.close();
  await s.kill(); // the member dies mid-stream
  await s.restart();
  c = s.client();
  const rev2 = await write(c, rand, 120);
  await until('the backup to catch up', backupDone(dir, rev2));
  assert.match(backup.out(), /"msg":"watch stream broken; resuming"/, 'the member restart broke the stream once');
  backup.child.kill('SIGKILL'); // and the backup process too: it resumes from its last segment
  const rev3 = await write(c, rand, 100);
  backup = start();
  await until('the resumed backup', () => /resuming backup chain/.test(backup.out()));
  const rev4 = await write(c, rand, 60);
  await until('the backup to catch up', backupDone(dir, rev4));
  backup.child.kill('SIGTERM');
  assert.equal(await backup.exited, 0, backup.out());
  assert.equal(listChains(dir).length, 1, 'one chain throughout');
  assert.match(backup.out(), /"msg":"resuming backup chain"/);

  const targets = [snapRev, rev1, rev1 + 1, rev2, rev3, rev4, snapRev + 1 + Math.floor(rand() * (rev4 - snapRev - 1))];
  const want = new Map<number, unknown>();
  for (const r of targets) want.set(r, view((await c.range({ ...all, revision: r })).kvs));
  c.close();
  for (const [i, r] of targets.entries()) {
    if (i % 2 === 1 && r !== rev4) continue; // each boot costs seconds: boot half of them
    const m = new Server({ target: 'concord', name: `p${i}` });
    servers.push(m);
    m.clientPort = await freePort();
    m.peerPort = await freePort();
    const restore = concordutl(['backup', 'restore', '--from', dir, '--to-revision', String(r), '--data-dir', m.dataDir, '--name', m.name,
      '--initial-cluster', `${m.name}=${m.peerUrl}`, '--initial-advertise-peer-urls', m.peerUrl]);
    assert.equal(await restore.exited, 0, restore.out());
    await m.restart();
    const mc = m.client();
    const got = await mc.range(all);
    assert.deepEqual(view(got.kvs), want.get(r), `store at revision ${r}`);
    assert.equal(Number(got.header!.revision), r);
    mc.close();
    await m.stop();
  }
});

test('concord: a compaction past where a stopped backup resumes is reported as a gap, and a new chain starts', { skip: !runConcord() && 'Concord not selected' }, async () => {
  const s = await startServer({ target: 'concord' });
  servers.push(s);
  const c = s.client();
  const rand = rng(7);
  await write(c, rand, 20);
  const dir = s.scratch('backup');
  const args = ['backup', 'start', '--endpoints', s.endpoint, '--dir', dir, '--segment-interval', '200ms', '--snapshot-interval', '1h'];
  let backup = concordutl(args);
  const rev = await write(c, rand, 30);
  await until('the backup to catch up', backupDone(dir, rev));
  backup.child.kill('SIGTERM');
  await backup.exited;
  const later = await write(c, rand, 30);
  await c.compact({ revision: later });
  c.close();
  backup = concordutl(args);
  await until('a new chain', () => listChains(dir).length === 2);
  assert.match(backup.out(), /this gap cannot be filled, starting a new chain/);
  assert.equal(listChains(dir)[1]!.revision, later);
  backup.child.kill('SIGTERM');
  assert.equal(await backup.exited, 0);
});
