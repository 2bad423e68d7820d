// A damaged snapshot, backup or etcd data dir is refused, with nothing left behind, by every
// tool that reads one. The damage: a branch page of a Concord snapshot (our bbolt
// writer: every page is reached) whose second child points at the first child's page, with
// the sha256 trailer made to match (a sound transfer of an unsound file), so only bbolt's
// integrity check finds it; and a flipped byte in a continuous-backup segment.
// - concordutl and concordctl snapshot restore: bbolt's check, made along the import (the file
//   is read once), fails it and the half-built data dir is removed;
// - Concord booting an etcd data dir (concordutl export's) whose member/snap/db is damaged:
//   refused, and no half-imported backend left beside it;
// - concordutl backup restore with a damaged segment: refused before the restore starts.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Server, startServer, freePort, runConcord, sleep, track, b, REPO_ROOT } from './harness.js';
import { concordutl } from './concordutl-cli.js';
import { runTool } from './ctl-tools.js';
import { listChains, listSegments } from '../src/backup/index.js';

const servers: Server[] = [];
const children: ChildProcess[] = [];
after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const s of servers) await s.destroy();
});
const skip = { skip: !runConcord() && 'needs Concord' };
const pageSize = 4096;
const branchPageFlag = 0x01;

/** bbolt pages with a branch page's second child pointed at its first child's page (sha256 trailer stripped). */
function damageBranch(pages: Buffer): Buffer {
  const out = Buffer.from(pages);
  for (let off = 2 * pageSize; off + pageSize <= out.length; off += pageSize) {
    if (out.readUInt16LE(off + 8) !== branchPageFlag || out.readUInt16LE(off + 10) < 2) continue;
    // branchPageElement: pos u32, ksize u32, pgid u64, after the 16-byte page header.
    out.writeBigUInt64LE(out.readBigUInt64LE(off + 16 + 8), off + 16 + 16 + 8);
    return out;
  }
  throw new Error('no branch page with two children');
}

const withSha = (pages: Buffer): Buffer => Buffer.concat([pages, createHash('sha256').update(pages).digest()]);

/** A Concord member's fresh ports and member flags, not started. */
async function newMember(name: string): Promise<{ m: Server; flags: string[] }> {
  const m = new Server({ target: 'concord', name });
  servers.push(m);
  m.clientPort = await freePort();
  m.peerPort = await freePort();
  return { m, flags: ['--data-dir', m.dataDir, '--name', name, '--initial-cluster', `${name}=${m.peerUrl}`, '--initial-advertise-peer-urls', m.peerUrl] };
}

const noTemporaries = (dataDir: string): string[] => readdirSync(dirname(dataDir)).filter((n) => n.includes('.restoring-'));

test('a damaged snapshot is refused by restore and by the boot import, and nothing is left behind', skip, async () => {
  const s = await startServer({ target: 'concord' });
  servers.push(s);
  const c = s.client();
  for (let i = 0; i < 600; i++) await c.put({ key: b(`k/${String(i).padStart(4, '0')}`), value: Buffer.alloc(500, i) });
  c.close();
  const file = s.scratch('good.db');
  assert.equal((await s.etcdctl(['snapshot', 'save', file])).code, 0);
  const good = readFileSync(file);
  const damaged = damageBranch(good.subarray(0, good.length - 32));
  writeFileSync(s.scratch('bad.db'), withSha(damaged));
  writeFileSync(s.scratch('bad-nohash.db'), damaged);

  const { m, flags } = await newMember('r0');
  for (const [tool, args] of [
    ['concordutl', ['snapshot', 'restore', s.scratch('bad.db'), ...flags]],
    ['concordutl', ['snapshot', 'restore', s.scratch('bad-nohash.db'), '--skip-hash-check', ...flags]],
    ['concordctl', ['snapshot', 'restore', s.scratch('bad.db'), ...flags]],
  ] as const) {
    const r = tool === 'concordutl' ? await concordutl([...args]) : await runTool('concordctl', [...args], { cwd: s.scratch('.') });
    assert.equal(r.code, 1, `${tool} ${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /Error: (snapshot file integrity check failed\. \d+ errors found\.|page \d+)/);
    assert.ok(!existsSync(m.dataDir));
    assert.deepEqual(noTemporaries(m.dataDir), []);
  }
  const status = await concordutl(['snapshot', 'status', s.scratch('bad.db')]);
  assert.equal(status.code, 1);

  // The sound file restores; its export is an etcd data dir; damaged, Concord refuses to boot it.
  assert.equal((await concordutl(['snapshot', 'restore', file, ...flags])).code, 0);
  await m.start();
  await m.stop();
  const { m: e } = await newMember('r0');
  const exported = await concordutl(['export', '--data-dir', m.dataDir, '--out', e.dataDir]);
  assert.equal(exported.code, 0, exported.stderr);
  const db = join(e.dataDir, 'member', 'snap', 'db');
  writeFileSync(db, damageBranch(readFileSync(db)));
  await assert.rejects(e.start(), /database file .*member\/snap\/db: (snapshot file integrity check failed|page \d+)/);
  assert.deepEqual(readdirSync(join(e.dataDir, 'member', 'snap')).filter((n) => n !== 'db' && !n.endsWith('.snap')), [], 'nothing written beside the etcd files');
  assert.doesNotMatch(e.log, /imported the etcd data dir|ready to serve client requests/);
});

test('a damaged backup segment is refused before the restore starts', skip, async () => {
  const s = await startServer({ target: 'concord' });
  servers.push(s);
  const c = s.client();
  const dir = s.scratch('backup');
  const backup = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'concordutl.js'), 'backup', 'start', '--endpoints', s.endpoint, '--dir', dir, '--segment-interval', '300ms'], { stdio: 'ignore' });
  track(backup);
  children.push(backup);
  for (const deadline = Date.now() + 60_000; listChains(dir).length === 0; await sleep(50)) if (Date.now() > deadline) throw new Error('no backup chain');
  let rev = 0;
  for (let i = 0; i < 50; i++) rev = Number((await c.put({ key: b(`s/${i % 9}`), value: Buffer.alloc(200, i) })).header!.revision);
  c.close();
  const chain = () => listChains(dir).at(-1)!;
  for (const deadline = Date.now() + 60_000; (listSegments(chain().dir).at(-1)?.last ?? 0) < rev; await sleep(50)) if (Date.now() > deadline) throw new Error('segments not written');
  backup.kill('SIGTERM');
  const seg = listSegments(chain().dir)[0]!.file;
  const bytes = readFileSync(seg);
  bytes[Math.floor(bytes.length / 2)] ^= 0xff;
  writeFileSync(seg, bytes);

  const { m, flags } = await newMember('b0');
  const r = await concordutl(['backup', 'restore', '--from', dir, '--to-revision', String(rev), ...flags]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /Error: .*segment/i);
  assert.doesNotMatch(r.stderr, /"msg":"restoring snapshot"/, 'refused before the restore began');
  assert.ok(!existsSync(m.dataDir));
  assert.deepEqual(noTemporaries(m.dataDir), []);
});
