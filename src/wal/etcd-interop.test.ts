/**
 * Differential checks against real etcd 3.4: Concord reads the WAL and snap files etcd
 * writes, and etcd starts on (and serves the data of) a WAL that Concord wrote. Skipped
 * when the `etcd` binary is not installed.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { existsSync, readdirSync, rmSync, cpSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Wal, Snapshotter, validSnapshotEntries, readSnapFile } from './index.js';
import { tempDir } from './testutil.js';
import { decodeSegment } from './decoder.js';
import { RecordType } from './frame.js';
import { decodeEntry, decodeHardState } from '../proto/index.js';
import { decodeWalSnapshot } from '../proto/index.js';

function which(bin: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const haveEtcd = which('etcd') && which('etcdctl');

/** Two free loopback ports (bound to 0, then released). */
async function freePorts(): Promise<[number, number]> {
  const one = (): Promise<number> =>
    new Promise((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => {
        const port = (s.address() as { port: number }).port;
        s.close(() => resolve(port));
      });
    });
  return [await one(), await one()];
}

interface Etcd {
  proc: ChildProcess;
  endpoint: string;
  output: () => string;
}

async function startEtcd(dataDir: string, snapshotCount: number): Promise<Etcd> {
  const [client, peer] = await freePorts();
  const endpoint = `http://127.0.0.1:${client}`;
  const peerUrl = `http://127.0.0.1:${peer}`;
  const proc = spawn(
    'etcd',
    [
      '--data-dir', dataDir,
      '--name', 'default',
      '--listen-client-urls', endpoint,
      '--advertise-client-urls', endpoint,
      '--listen-peer-urls', peerUrl,
      '--initial-advertise-peer-urls', peerUrl,
      '--initial-cluster', `default=${peerUrl}`,
      '--snapshot-count', String(snapshotCount),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  // Ready when a client request succeeds; bounded by an attempt count, not a clock.
  for (let i = 0; i < 100; i++) {
    if (proc.exitCode !== null) break;
    try {
      execFileSync('etcdctl', ['--endpoints', endpoint, '--command-timeout=2s', 'endpoint', 'health'], { stdio: 'ignore' });
      return { proc, endpoint, output: () => out };
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  proc.kill('SIGKILL');
  throw new Error(`etcd did not start:\n${out}`);
}

async function stopEtcd(e: Etcd): Promise<void> {
  if (e.proc.exitCode !== null) return;
  const done = new Promise((r) => e.proc.once('exit', r));
  e.proc.kill('SIGTERM');
  await done;
}

function etcdctl(endpoint: string, ...args: string[]): string {
  return execFileSync('etcdctl', ['--endpoints', endpoint, ...args], { encoding: 'utf8' });
}

test('reads the WAL and snap files real etcd writes, and writes both byte for byte', { skip: !haveEtcd }, async () => {
  const { dir, cleanup } = tempDir('concord-etcd-');
  const data = join(dir, 'data');
  const etcd = await startEtcd(data, 5);
  try {
    for (let i = 1; i <= 20; i++) etcdctl(etcd.endpoint, 'put', `key${i}`, `value${i}`);
  } finally {
    await stopEtcd(etcd);
  }
  try {
    const walDir = join(data, 'member', 'wal');
    const snapDir = join(data, 'member', 'snap');
    const walSnaps = await validSnapshotEntries(walDir);
    // etcd writes {0,0} at creation and a record per snapshot (every 5 applied entries + 1).
    assert.deepEqual(walSnaps[0], { index: 0, term: 0 });
    assert.ok(walSnaps.length >= 4, `snapshot records: ${JSON.stringify(walSnaps)}`);

    const snap = await new Snapshotter(snapDir).loadNewestAvailable(walSnaps);
    assert.ok(snap !== undefined);
    const newest = walSnaps[walSnaps.length - 1];
    assert.deepEqual({ index: snap.metadata.index, term: snap.metadata.term }, newest);
    assert.equal(snap.metadata.confState.voters.length, 1);

    // Concord's Snapshotter writes the very bytes etcd wrote for every snapshot.
    const again = join(dir, 'resaved');
    mkdirSync(again);
    for (const name of readdirSync(snapDir).filter((n) => n.endsWith('.snap'))) {
      await new Snapshotter(again).save(await readSnapFile(join(snapDir, name)));
      assert.deepEqual(readFileSync(join(again, name)), readFileSync(join(snapDir, name)), name);
    }

    // From the start: every entry, contiguous, holding the 20 puts.
    const w = await Wal.open(walDir, { index: 0, term: 0 });
    const all = await w.readAll();
    await w.close();
    assert.equal(all.entries[0].index, 1);
    all.entries.forEach((e, i) => assert.equal(e.index, i + 1));
    assert.equal(all.hardState.commit, all.entries[all.entries.length - 1].index);
    assert.equal(all.hardState.vote, snap.metadata.confState.voters[0]);
    const text = all.entries.map((e) => Buffer.from(e.data ?? []).toString('latin1')).join('\n');
    for (let i = 1; i <= 20; i++) assert.ok(text.includes(`key${i}`) && text.includes(`value${i}`), `key${i}`);

    // Replaying etcd's records through Concord's Wal gives the very same segment bytes.
    const etcdSeg = join(walDir, readdirSync(walDir).filter((n) => n.endsWith('.wal')).sort()[0]);
    const recs: { type: number; data: Buffer }[] = [];
    const { end } = await decodeSegment(etcdSeg, etcdSeg, true, 0, (r) => recs.push({ type: r.type, data: Buffer.from(r.data ?? []) }));
    const replayDir = join(dir, 'replay');
    const rw = await Wal.create(replayDir, all.metadata);
    for (const r of recs.slice(3)) {
      if (r.type === RecordType.entry) await rw.save(undefined, [decodeEntry(r.data)], false);
      else if (r.type === RecordType.state) await rw.save(decodeHardState(r.data), [], true); // synced: written now (a commit-only state without sync waits for the next write)
      else if (r.type === RecordType.snapshot) await rw.saveSnapshot(decodeWalSnapshot(r.data));
      else assert.fail(`unexpected record type ${r.type}`);
    }
    await rw.close();
    const ours = readFileSync(join(replayDir, '0000000000000000-0000000000000000.wal'));
    const theirs = readFileSync(etcdSeg);
    assert.equal(ours.length, theirs.length, 'same preallocated size');
    assert.ok(ours.equals(theirs), `segment bytes differ (records end at ${end})`);

    // From the newest snapshot: only the entries after it.
    const w2 = await Wal.open(walDir, newest);
    const after = await w2.readAll();
    await w2.close();
    assert.deepEqual(after.entries.map((e) => e.index), all.entries.filter((e) => e.index > newest.index).map((e) => e.index));
    assert.deepEqual(Buffer.from(after.metadata), Buffer.from(all.metadata));
  } finally {
    cleanup();
  }
});

test('real etcd restarts on a WAL Concord rewrote (small segments) and serves its data', { skip: !haveEtcd }, async () => {
  const { dir, cleanup } = tempDir('concord-etcd-');
  const data = join(dir, 'data');
  // No snapshots (high count), so the WAL alone must rebuild everything.
  let etcd = await startEtcd(data, 100000);
  try {
    for (let i = 1; i <= 30; i++) etcdctl(etcd.endpoint, 'put', `key${i}`, `value${i}-${'x'.repeat(200)}`);
  } finally {
    await stopEtcd(etcd);
  }
  try {
    const walDir = join(data, 'member', 'wal');
    const w = await Wal.open(walDir, { index: 0, term: 0 });
    const all = await w.readAll();
    await w.close();

    // Rewrite the log with Concord, in 4 KiB segments so etcd must follow our cuts, and
    // remove etcd's backend so it has to replay every entry from our WAL.
    const ours = join(dir, 'concord-wal');
    const cw = await Wal.create(ours, all.metadata, { segmentSizeBytes: 4096 });
    for (let i = 0; i < all.entries.length; i += 3) {
      await cw.save(undefined, all.entries.slice(i, i + 3), false);
    }
    await cw.save(all.hardState, [], true);
    await cw.close();
    assert.ok(readdirSync(ours).filter((n) => n.endsWith('.wal')).length > 2, 'several segments');
    rmSync(walDir, { recursive: true });
    cpSync(ours, walDir, { recursive: true });
    rmSync(join(data, 'member', 'snap', 'db'));

    etcd = await startEtcd(data, 100000);
    try {
      const got = etcdctl(etcd.endpoint, 'get', 'key', '--prefix', '--keys-only').split('\n').filter((l) => l !== '');
      assert.equal(got.length, 30, etcd.output());
      assert.equal(etcdctl(etcd.endpoint, 'get', 'key17', '--print-value-only').trim(), `value17-${'x'.repeat(200)}`);
      // And etcd keeps appending to our tail segment; Concord reads the result back.
      etcdctl(etcd.endpoint, 'put', 'after', 'restart');
    } finally {
      await stopEtcd(etcd);
    }
    const w3 = await Wal.open(walDir, { index: 0, term: 0 });
    const again = await w3.readAll();
    await w3.close();
    assert.ok(again.entries.length > all.entries.length);
    assert.ok(
      again.entries.some((e) => Buffer.from(e.data ?? []).includes('restart')),
      'the put etcd made after restarting is in the WAL',
    );
    assert.ok(existsSync(walDir));
  } finally {
    cleanup();
  }
});
