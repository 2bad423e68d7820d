// The bbolt reader against files written by real etcd: a store after many puts (some values
// spanning several pages), deletes and a compaction is saved with real `etcdctl snapshot save`,
// and every key etcd serves is found in the file's key bucket with its value, revisions and
// version; the file passes our tx.Check (every page reachable once or free).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startServer, etcdctl, runEtcd, b, type Server } from './harness.js';
import { BoltReader, bufferSource } from '../src/bbolt/index.js';
import { KeyValue } from '../src/proto/index.js';

const servers: Server[] = [];
after(async () => { for (const s of servers) await s.destroy(); });

test('etcd: a snapshot saved by real etcd reads back with every key, value and revision', { skip: !runEtcd() && 'real etcd not selected' }, async () => {
  const s = await startServer({ target: 'etcd' });
  servers.push(s);
  const c = s.client();
  const big = Buffer.alloc(20_000, 'x');
  for (let i = 0; i < 1500; i++) {
    await c.put({ key: b(`k/${String(i).padStart(5, '0')}`), value: i % 100 === 0 ? big : b(`v${i}`) });
  }
  for (let i = 0; i < 1500; i += 7) await c.put({ key: b(`k/${String(i).padStart(5, '0')}`), value: b(`again${i}`) });
  const del = await c.deleteRange({ key: b('k/0100'), rangeEnd: b('k/0200') });
  await c.compact({ revision: Number(del.header!.revision) - 50 });
  for (let i = 0; i < 50; i++) await c.put({ key: b(`after/${i}`), value: b(`a${i}`) });
  const live = await c.range({ key: b('a'), rangeEnd: b('z') });
  c.close();

  const file = s.scratch('etcd.db');
  const saved = await etcdctl(s.endpoint, ['snapshot', 'save', file]);
  assert.equal(saved.code, 0, saved.stderr);
  const bytes = readFileSync(file);
  assert.equal(bytes.length % 512, 32, 'etcd appends a sha256');
  const r = BoltReader.open(bufferSource(bytes.subarray(0, bytes.length - 32)));
  assert.deepEqual(r.check(), []);
  const names = r.bucketNames().map(String);
  for (const n of ['key', 'meta', 'lease', 'members', 'cluster', 'alarm']) assert.ok(names.includes(n), `bucket ${n} in ${names}`);

  const latest = new Map<string, KeyValue>();
  let entries = 0;
  for (const e of r.bucket(b('key'))!) {
    entries++;
    assert.ok(e.key.length === 17 || e.key.length === 18, 'a revision key');
    const kv = KeyValue.decode(e.value);
    // A tombstone's value is a KeyValue with the key only (etcd's delete writes no revisions).
    if (e.key.length === 17) assert.equal(Number(e.key.readBigUInt64BE(0)), Number(kv.modRevision), 'the key names the mod revision');
    if (e.key.length === 18) latest.delete(Buffer.from(kv.key).toString());
    else latest.set(Buffer.from(kv.key).toString(), kv);
  }
  assert.ok(entries > live.kvs.length, 'history kept after the compaction is there too');
  assert.equal(latest.size, live.kvs.length, `${live.count} ${live.more} ${entries}`);
  for (const want of live.kvs) {
    const got = latest.get(Buffer.from(want.key).toString());
    assert.ok(got, `key ${want.key} in the file`);
    assert.deepEqual(Buffer.from(got.value), Buffer.from(want.value));
    assert.deepEqual([got.createRevision, got.modRevision, got.version], [want.createRevision, want.modRevision, want.version].map(Number));
  }
  const ci = [...r.bucket(b('meta'))!].find((e) => e.key.toString() === 'consistent_index');
  assert.ok(ci && ci.value.readBigUInt64BE(0) > 0n);
});
