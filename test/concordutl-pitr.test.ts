// concordutl backup restore --to-time T: the store as the continuous backup had it on disk at
// wall-clock time T (the newest snapshot or segment written by then), restored and booted.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Server, startServer, freePort, runConcord, sleep, track, b, REPO_ROOT } from './harness.js';
import { concordutl } from './concordutl-cli.js';
import { listChains, listSegments } from '../src/backup/index.js';
import type { KeyValue } from '../src/proto/index.js';

const servers: Server[] = [];
const children: ChildProcess[] = [];
after(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  for (const s of servers) await s.destroy();
});

const all = { key: b('\0'), rangeEnd: b('\0') };
const view = (kvs: KeyValue[]) => kvs.map((kv) => [Buffer.from(kv.key).toString(), Buffer.from(kv.value).toString(), Number(kv.createRevision), Number(kv.modRevision), Number(kv.version)]);
const saved = (dir: string, rev: number) => listChains(dir).some((ch) => (listSegments(ch.dir).at(-1)?.last ?? ch.revision) >= rev);

async function until(what: string, cond: () => boolean, boundMs = 30_000): Promise<void> {
  for (const deadline = Date.now() + boundMs; !cond();) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await sleep(50);
  }
}

test('backup restore --to-time gives the store as the backup had it at that time', { skip: !runConcord() && 'needs Concord' }, async () => {
  const s = await startServer({ target: 'concord' });
  servers.push(s);
  const c = s.client();
  for (let i = 0; i < 10; i++) await c.put({ key: b(`a${i}`), value: b('before') });
  const dir = s.scratch('backup');
  const before = new Date(Date.now() - 60_000).toISOString();
  const backup = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'concordutl.js'), 'backup', 'start', '--endpoints', s.endpoint, '--dir', dir, '--segment-interval', '300ms'], { stdio: 'ignore' });
  track(backup);
  children.push(backup);
  await until('the first chain', () => listChains(dir).length > 0);
  let revA = 0;
  for (let i = 0; i < 20; i++) revA = Number((await c.put({ key: b(`a${i % 7}`), value: b(`A${i}`) })).header!.revision);
  const wantA = view((await c.range(all)).kvs);
  await until('phase A saved', () => saved(dir, revA));
  await sleep(50);
  const atA = new Date().toISOString();
  await sleep(400); // a segment written from now on is after atA
  let revB = 0;
  for (let i = 0; i < 20; i++) revB = Number((await c.put({ key: b(`b${i % 5}`), value: b(`B${i}`) })).header!.revision);
  await until('phase B saved', () => saved(dir, revB));
  backup.kill('SIGTERM');
  c.close();

  const m = new Server({ target: 'concord', name: 'tt' });
  servers.push(m);
  m.clientPort = await freePort();
  m.peerPort = await freePort();
  const member = ['--data-dir', m.dataDir, '--name', 'tt', '--initial-cluster', `tt=${m.peerUrl}`, '--initial-advertise-peer-urls', m.peerUrl];
  const early = await concordutl(['backup', 'restore', '--from', dir, '--to-time', before, ...member]);
  assert.equal(early.code, 1);
  assert.match(early.stderr, /Error: no backup file in .* was written at or before /);
  assert.equal((await concordutl(['backup', 'restore', '--from', dir, '--to-time', 'yesterday', ...member])).code, 128);
  const res = await concordutl(['backup', 'restore', '--from', dir, '--to-time', atA, ...member]);
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stderr, new RegExp(`"msg":"restoring to revision".*"to-revision":${revA}`));
  await m.start();
  const mc = m.client();
  const got = await mc.range(all);
  assert.deepEqual(view(got.kvs), wantA, 'phase A exactly, none of phase B');
  assert.equal(Number(got.header!.revision), revA);
  mc.close();
});
