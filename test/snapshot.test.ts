// Maintenance.Snapshot streams etcd's bbolt file: real `etcdctl snapshot save` from Concord,
// real `etcdctl snapshot status` reads it (hash, revision, total keys, size), real `etcdctl
// snapshot restore` makes a data dir, and real etcd boots from it with every key, value,
// revision, create/mod revision and version (history too). The stream is one point in time:
// a put made while it is paused mid-file succeeds and is not in the file.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { crc32c } from '@node-rs/crc32';
import { Server, startServer, etcdctl, freePort, runConcord, b, type EtcdClient } from './harness.js';
import { BoltReader, bufferSource } from '../src/bbolt/index.js';
import { etcdserverpb, KeyValue } from '../src/proto/index.js';

const servers: Server[] = [];
after(async () => { for (const s of servers) await s.destroy(); });

const skip = !runConcord() && 'Concord not selected';

/** Puts, overwrites, deletes, values spanning pages, and a compaction. */
async function fill(c: EtcdClient, n: number): Promise<void> {
  const big = Buffer.alloc(30_000, 'y');
  for (let i = 0; i < n; i++) await c.put({ key: b(`k/${String(i).padStart(5, '0')}`), value: i % 97 === 0 ? big : b(`value-${i}`) });
  for (let i = 0; i < n; i += 5) await c.put({ key: b(`k/${String(i).padStart(5, '0')}`), value: b(`second-${i}`) });
  await c.deleteRange({ key: b('k/002'), rangeEnd: b('k/003') });
  const r = await c.put({ key: b('marker'), value: b('before-compact') });
  await c.compact({ revision: Number(r.header!.revision) - 100 });
  for (let i = 0; i < 30; i++) await c.put({ key: b(`after/${i}`), value: b(`a${i}`) });
}

const all = { key: b('\0'), rangeEnd: b('\0') };
const view = (kvs: KeyValue[]) => kvs.map((kv) => [Buffer.from(kv.key).toString(), Buffer.from(kv.value).toString('base64'), Number(kv.createRevision), Number(kv.modRevision), Number(kv.version)]);

/** etcd's snapshot status hash: crc32c over bucket names, keys and values, buckets in order. */
function statusOf(file: Buffer): { hash: number; revision: number; totalKey: number; totalSize: number } {
  const r = BoltReader.open(bufferSource(file.subarray(0, file.length - 32)));
  let hash = 0;
  let revision = 0;
  let totalKey = 0;
  for (const name of r.bucketNames()) {
    hash = crc32c(name, hash);
    for (const e of r.bucket(name)!) {
      hash = crc32c(e.key, hash);
      hash = crc32c(e.value, hash);
      if (name.toString() === 'key') revision = Number(e.key.readBigUInt64BE(0));
      totalKey++;
    }
  }
  return { hash, revision, totalKey, totalSize: r.size };
}

test('concord: etcdctl snapshot save → status → restore, and real etcd boots the restored dir with every key and revision', { skip }, async () => {
  const s = await startServer({ target: 'concord' });
  servers.push(s);
  const c = s.client();
  await fill(c, 1200);
  const live = await c.range(all);
  assert.ok(live.kvs.length > 900, 'a store worth restoring');
  const oldRev = Number(live.header!.revision) - 20;
  const old = await c.range({ ...all, revision: oldRev });
  c.close();

  const file = s.scratch('concord.db');
  const saved = await s.etcdctl(['snapshot', 'save', file]);
  assert.equal(saved.code, 0, saved.stderr);
  const bytes = readFileSync(file);
  assert.deepEqual(bytes.subarray(bytes.length - 32), createHash('sha256').update(bytes.subarray(0, bytes.length - 32)).digest(), 'sha256 trailer');
  const st = await s.etcdctl(['snapshot', 'status', file, '-w', 'json']);
  assert.equal(st.code, 0, st.stderr);
  const status = JSON.parse(st.stdout) as { hash: number; revision: number; totalKey: number; totalSize: number };
  assert.deepEqual(status, statusOf(bytes), 'etcdctl reads what our reader reads');
  assert.equal(status.revision, Number(live.header!.revision));
  const table = await s.etcdctl(['snapshot', 'status', file, '-w', 'table']);
  assert.match(table.stdout, /\| +HASH +\| +REVISION +\| +TOTAL KEYS +\| +TOTAL SIZE +\|/);

  // Restore into a data dir for a new member, then boot real etcd on it.
  const r = new Server({ target: 'etcd', name: 'r0' });
  servers.push(r);
  r.clientPort = await freePort();
  r.peerPort = await freePort();
  const restored = await etcdctl(r.endpoint, ['snapshot', 'restore', file, '--data-dir', r.dataDir, '--name', 'r0',
    '--initial-cluster', `r0=${r.peerUrl}`, '--initial-advertise-peer-urls', r.peerUrl, '--initial-cluster-token', 'restored']);
  assert.equal(restored.code, 0, restored.stderr);
  await r.restart();
  const rc = r.client();
  const got = await rc.range(all);
  assert.deepEqual(view(got.kvs), view(live.kvs), 'every key, value, create/mod revision and version');
  assert.equal(Number(got.header!.revision), Number(live.header!.revision));
  const gotOld = await rc.range({ ...all, revision: oldRev });
  assert.deepEqual(view(gotOld.kvs), view(old.kvs), 'history after the compaction too');
  const put = await rc.put({ key: b('new'), value: b('write after restore') });
  assert.equal(Number(put.header!.revision), Number(live.header!.revision) + 1, 'etcd writes on at the next revision');
  rc.close();
});

test('concord: the snapshot is one point in time; a put while the stream is paused succeeds and is not in the file', { skip }, async () => {
  const s = await startServer({ target: 'concord' });
  servers.push(s);
  const c = s.client();
  const big = Buffer.alloc(100_000, 'z');
  for (let i = 0; i < 60; i++) await c.put({ key: b(`big/${i}`), value: big }); // ~6 MB: many messages
  const before = await c.put({ key: b('probe'), value: b('before') });

  const call = c.raw.makeServerStreamRequest('/etcdserverpb.Maintenance/Snapshot',
    (m: etcdserverpb.SnapshotRequest) => Buffer.from(etcdserverpb.SnapshotRequest.encode(m).finish()),
    (d: Buffer) => etcdserverpb.SnapshotResponse.decode(d), {}, new grpc.Metadata());
  const blobs: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => { call.on('end', resolve); call.on('error', reject); });
  const first = await new Promise<etcdserverpb.SnapshotResponse>((resolve) => call.once('data', resolve));
  call.pause();
  blobs.push(Buffer.from(first.blob));
  assert.ok(first.remainingBytes > 0, 'the stream is mid-file');
  // Writes go on while the snapshot is open.
  const during = await c.put({ key: b('probe'), value: b('during') });
  assert.equal(Number(during.header!.revision), Number(before.header!.revision) + 1);
  call.on('data', (m: etcdserverpb.SnapshotResponse) => blobs.push(Buffer.from(m.blob)));
  call.resume();
  await done;
  c.close();
  const file = Buffer.concat(blobs);
  writeFileSync(s.scratch('paused.db'), file);
  const r = BoltReader.open(bufferSource(file.subarray(0, file.length - 32)));
  const probes = [...r.bucket(b('key'))!].map((e) => KeyValue.decode(e.value)).filter((kv) => Buffer.from(kv.key).toString() === 'probe');
  assert.deepEqual(probes.map((kv) => Buffer.from(kv.value).toString()), ['before'], 'the file is the store as of the snapshot');
  const st = await s.etcdctl(['snapshot', 'status', s.scratch('paused.db'), '-w', 'json']);
  assert.equal(st.code, 0, st.stderr);
  assert.equal(JSON.parse(st.stdout).revision, Number(before.header!.revision));
});
