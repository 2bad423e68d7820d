import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { isEtcdError } from '../errors/index.js';
import { PutRequest, RangeRequest, RangeRequest_SortOrder as O, RangeRequest_SortTarget as S } from '../proto/index.js';
import { isOneKeyRead, type MvccStore } from './store.js';
import { decodeKeyValue } from './kvcodec.js';
import { b, delReq, keysOf, openStore, putReq, rangeReq, tempDir } from './testutil.js';

async function withStore(fn: (s: MvccStore, dir: string) => void | Promise<void>, opts = {}): Promise<void> {
  const dir = tempDir();
  const s = openStore(dir, opts);
  try {
    await fn(s, dir);
  } finally {
    await s.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const isErr = (kind: Parameters<typeof isEtcdError>[1]) => (e: unknown) => isEtcdError(e, kind);

/** a b c d e f g h i j as rev 2..11, values z..q (reverse), "b" put twice more. */
function seed(s: MvccStore): void {
  'abcdefghij'.split('').forEach((k, i) => s.put(putReq(k, String.fromCharCode(122 - i))));
  s.put(putReq('b', 'B2'));
  s.put(putReq('b', 'B3'));
}

test('a fresh store is at revision 1 and each put takes the next revision', () =>
  withStore((s) => {
    assert.equal(s.currentRevision, 1);
    assert.equal(s.compactRevision, -1);
    assert.equal(s.put(putReq('a', '1')).header!.revision, 2);
    assert.equal(s.put(putReq('a', '2')).header!.revision, 3);
    assert.equal(s.currentRevision, 3);
    assert.equal(s.range(rangeReq('a')).header!.revision, 3);
  }));

test('overwrite bumps version and keeps create revision; delete resets; re-create starts over', () =>
  withStore((s) => {
    s.put(putReq('k', 'v1'));
    s.put(putReq('k', 'v2'));
    let kv = s.range(rangeReq('k')).kvs[0];
    assert.deepEqual([kv.createRevision, kv.modRevision, kv.version, kv.value.toString()], [2, 3, 2, 'v2']);
    const d = s.deleteRange(delReq('k', { prevKv: true }));
    assert.equal(d.deleted, 1);
    assert.equal(d.header!.revision, 4);
    assert.equal(d.prevKvs[0].value.toString(), 'v2');
    assert.equal(s.range(rangeReq('k')).kvs.length, 0);
    s.put(putReq('k', 'v3'));
    kv = s.range(rangeReq('k')).kvs[0];
    assert.deepEqual([kv.createRevision, kv.modRevision, kv.version], [5, 5, 1]);
    // History stays readable.
    assert.equal(s.range(rangeReq('k', { revision: 3 })).kvs[0].value.toString(), 'v2');
    assert.equal(s.range(rangeReq('k', { revision: 4 })).kvs.length, 0);
  }));

test('deleting nothing changes nothing and keeps the revision', () =>
  withStore((s) => {
    s.put(putReq('a', '1'));
    const d = s.deleteRange(delReq('x', { rangeEnd: b('y') }));
    assert.equal(d.deleted, 0);
    assert.equal(d.header!.revision, 2);
    assert.equal(s.currentRevision, 2);
  }));

test('range: single key, [key, end), prefix end, and "\\0" from-key', () =>
  withStore((s) => {
    for (const k of ['a', 'ab', 'abc', 'b', 'c']) s.put(putReq(k, k));
    assert.deepEqual(keysOf(s.range(rangeReq('ab'))), ['ab']);
    assert.deepEqual(keysOf(s.range(rangeReq('a', { rangeEnd: b('b') }))), ['a', 'ab', 'abc']);
    assert.deepEqual(keysOf(s.range(rangeReq('ab', { rangeEnd: b('ac') }))), ['ab', 'abc']);
    assert.deepEqual(keysOf(s.range(rangeReq('ab', { rangeEnd: Buffer.from([0]) }))), ['ab', 'abc', 'b', 'c']);
    assert.deepEqual(keysOf(s.range(RangeReqAll())), ['a', 'ab', 'abc', 'b', 'c']);
    assert.deepEqual(keysOf(s.range(rangeReq('zz'))), []);
  }));

function RangeReqAll() {
  return { ...rangeReq('\0'), key: Buffer.from([0]), rangeEnd: Buffer.from([0]) };
}

test('range: limit sets more and count counts every key in range', () =>
  withStore((s) => {
    seed(s);
    const r = s.range(rangeReq('a', { rangeEnd: b('z'), limit: 3 }));
    assert.deepEqual(keysOf(r), ['a', 'b', 'c']);
    assert.equal(r.more, true);
    assert.equal(r.count, 10);
    const all = s.range(rangeReq('a', { rangeEnd: b('z'), limit: 10 }));
    assert.equal(all.more, false);
    assert.equal(all.kvs.length, 10);
  }));

test('range: count_only returns only the count; keys_only drops values', () =>
  withStore((s) => {
    seed(s);
    const c = s.range(rangeReq('a', { rangeEnd: b('e'), countOnly: true }));
    assert.equal(c.count, 4);
    assert.equal(c.kvs.length, 0);
    assert.equal(c.more, false);
    const k = s.range(rangeReq('a', { rangeEnd: b('c'), keysOnly: true }));
    assert.deepEqual(keysOf(k), ['a', 'b']);
    assert.ok(k.kvs.every((kv) => kv.value.length === 0));
    assert.equal(k.kvs[1].version, 3);
  }));

test('range: sort orders and targets as apply.go, limit applied after sorting everything', () =>
  withStore((s) => {
    seed(s); // b has version 3 and the highest mod revision
    const q = (extra: object) => keysOf(s.range(rangeReq('a', { rangeEnd: b('z'), ...extra })));
    assert.deepEqual(q({ sortOrder: O.DESCEND, limit: 3 }), ['j', 'i', 'h']);
    assert.deepEqual(q({ sortOrder: O.ASCEND, sortTarget: S.KEY, limit: 2 }), ['a', 'b']);
    // Target other than KEY with order NONE sorts ascending.
    assert.deepEqual(q({ sortTarget: S.VERSION }).slice(-1), ['b']);
    assert.deepEqual(q({ sortTarget: S.MOD, sortOrder: O.DESCEND, limit: 2 }), ['b', 'j']);
    assert.deepEqual(q({ sortTarget: S.CREATE, sortOrder: O.DESCEND, limit: 2 }), ['j', 'i']);
    assert.deepEqual(q({ sortTarget: S.VALUE, sortOrder: O.ASCEND, limit: 3 }), ['b', 'j', 'i']); // "B3" < "q" < "r"
    const r = s.range(rangeReq('a', { rangeEnd: b('z'), sortOrder: O.DESCEND, limit: 3 }));
    assert.equal(r.more, true);
    assert.equal(r.count, 10);
    // Ties keep key order (stable), as Go's insertion sort does for small results.
    assert.deepEqual(q({ sortTarget: S.VERSION, sortOrder: O.ASCEND, limit: 3 }), ['a', 'c', 'd']);
    assert.deepEqual(q({ sortTarget: S.VERSION, sortOrder: O.DESCEND, limit: 3 }), ['b', 'a', 'c']);
  }));

test('range: min/max mod and create revision filters prune after counting', () =>
  withStore((s) => {
    seed(s); // a..j created at 2..11; b modified at 12, 13
    const q = (extra: object) => s.range(rangeReq('a', { rangeEnd: b('z'), ...extra }));
    assert.deepEqual(keysOf(q({ minModRevision: 10 })), ['b', 'i', 'j']);
    assert.deepEqual(keysOf(q({ maxModRevision: 4 })), ['a', 'c']);
    assert.deepEqual(keysOf(q({ minCreateRevision: 10, maxCreateRevision: 10 })), ['i']);
    assert.deepEqual(keysOf(q({ maxCreateRevision: 3 })), ['a', 'b']);
    const r = q({ minModRevision: 10, limit: 2 });
    assert.deepEqual(keysOf(r), ['b', 'i']);
    assert.equal(r.more, true);
    assert.equal(r.count, 10, 'count is taken before the filters, as etcd does');
  }));

test('range: revision in the future is FutureRev, below the compaction Compacted, <=0 current', () =>
  withStore(async (s) => {
    seed(s);
    assert.throws(() => s.range(rangeReq('a', { revision: 14 })), isErr('FutureRev'));
    assert.equal(s.range(rangeReq('a', { revision: -3 })).kvs.length, 1);
    await s.compact(5);
    assert.throws(() => s.range(rangeReq('a', { revision: 4 })), isErr('Compacted'));
    assert.equal(s.range(rangeReq('a', { revision: 5 })).kvs[0].value.toString(), 'z');
    assert.deepEqual(keysOf(s.range(rangeReq('a', { rangeEnd: b('z'), revision: 5 }))), ['a', 'b', 'c', 'd']);
  }));

test('put prev_kv returns the previous pair; none for a new key', () =>
  withStore((s) => {
    assert.equal(s.put(putReq('a', '1', { prevKv: true })).prevKv, undefined);
    const p = s.put(putReq('a', '2', { prevKv: true })).prevKv!;
    assert.deepEqual([p.value.toString(), p.modRevision, p.version], ['1', 2, 1]);
  }));

test('put ignore_value and ignore_lease keep the stored value or lease; errors as etcd', () =>
  withStore(
    (s) => {
      assert.throws(() => s.put(putReq('a', '', { ignoreValue: true })), isErr('KeyNotFound'));
      assert.throws(() => s.put(putReq('a', 'x', { ignoreValue: true })), isErr('ValueProvided'));
      assert.throws(() => s.put(putReq('a', 'x', { ignoreLease: true, lease: 5n })), isErr('LeaseProvided'));
      assert.throws(() => s.put(putReq('a', 'x', { ignoreLease: true })), isErr('KeyNotFound'));
      assert.throws(() => s.put(putReq('a', 'x', { lease: 99n })), isErr('LeaseNotFound'));
      assert.equal(s.currentRevision, 1, 'refused puts write nothing');
      s.put(putReq('a', 'v', { lease: 7n }));
      s.put(putReq('a', 'w', { ignoreLease: true }));
      let kv = s.range(rangeReq('a')).kvs[0];
      assert.deepEqual([kv.value.toString(), kv.lease], ['w', 7n]);
      s.put(putReq('a', '', { ignoreValue: true }));
      kv = s.range(rangeReq('a')).kvs[0];
      assert.deepEqual([kv.value.toString(), kv.lease, kv.version], ['w', 0n, 3]);
    },
    { leaseExists: (id: bigint) => id === 7n },
  ));

test('without a lease hook any nonzero lease is LeaseNotFound', () =>
  withStore((s) => {
    assert.throws(() => s.put(putReq('a', '1', { lease: 1n })), isErr('LeaseNotFound'));
  }));

test('compaction: future and already-compacted revisions are refused', () =>
  withStore(async (s) => {
    seed(s);
    assert.throws(() => s.compact(14), isErr('FutureRev'));
    await s.compact(5);
    assert.throws(() => s.compact(5), isErr('Compacted'));
    assert.throws(() => s.compact(4), isErr('Compacted'));
    assert.equal(s.compactRevision, 5);
    await s.compact(13);
  }));

test('compaction removes history from index and backend in batches, keeping the latest revision', () =>
  withStore(
    async (s) => {
      for (let i = 0; i < 50; i++) s.put(putReq(`k${i % 10}`, `v${i}`)); // revs 2..51
      s.deleteRange(delReq('k0')); // 52
      const records = () => [...s.backend.scan('key')].length;
      assert.equal(records(), 51);
      await s.compact(52);
      // Nine live keys keep their latest revision; k0 is gone with its tombstone.
      assert.equal(records(), 9);
      assert.equal(s.keyCount, 9);
      assert.equal(s.range(rangeReq('k1')).kvs[0].version, 5);
      assert.deepEqual(s.range(rangeReq('k', { rangeEnd: b('l'), countOnly: true })).count, 9);
    },
    { compactionBatchLimit: 4 },
  ));

test('reopen rebuilds the index, continues revisions and keeps the compaction mark', async () => {
  const dir = tempDir();
  let s = openStore(dir);
  seed(s);
  s.deleteRange(delReq('j'));
  await s.compact(6);
  s.put(putReq('c', 'C2'));
  const before = s.range(rangeReq('a', { rangeEnd: b('z') }));
  const hashBefore = s.hashKV(0);
  await s.close();

  s = openStore(dir);
  try {
    assert.equal(s.currentRevision, 15);
    assert.equal(s.compactRevision, 6);
    assert.deepEqual(s.range(rangeReq('a', { rangeEnd: b('z') })), before);
    assert.deepEqual(s.hashKV(0), hashBefore, 'hashKV is stable across reopen');
    assert.throws(() => s.range(rangeReq('a', { revision: 5 })), isErr('Compacted'));
    assert.equal(s.put(putReq('b', 'B4')).header!.revision, 16);
    const bkv = s.range(rangeReq('b')).kvs[0];
    assert.deepEqual([bkv.createRevision, bkv.version], [3, 4]);
    assert.equal(s.put(putReq('j', 'again')).header!.revision, 17);
    assert.equal(s.range(rangeReq('j')).kvs[0].version, 1);
  } finally {
    await s.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('reopen tells the lessor each live key\'s lease as of its last record, binary keys and big values included', async () => {
  const dir = tempDir();
  const leases = new Set([5n, 7n, -3n]);
  let s = openStore(dir, { leaseExists: (id) => leases.has(id) });
  const big = 'v'.repeat(70_000); // over LMDB's page: read from overflow pages in place
  s.put(putReq('a', big, { lease: 5n }));
  s.put(putReq('b', 'x', { lease: 7n }));
  s.put(putReq('b', 'y')); // lease dropped
  s.put(putReq('c', 'x', { lease: 7n }));
  s.deleteRange(delReq('c'));
  s.put(PutRequest.fromPartial({ key: Buffer.from([0xff, 0x00, 0x80]), value: b(big), lease: -3n }));
  s.put(putReq('d', 'x', { lease: 5n }));
  await s.close();
  const told = new Map<string, bigint>();
  s = openStore(dir, { onKeyLease: (key, lease) => told.set(key.toString('hex'), lease) });
  try {
    assert.deepEqual(told, new Map([[b('a').toString('hex'), 5n], ['ff0080', -3n], [b('d').toString('hex'), 5n]]));
    assert.equal(s.range(rangeReq('a')).kvs[0].value.length, 70_000);
    const bin = s.range(RangeRequest.fromPartial({ key: Buffer.from([0xff, 0x00, 0x80]) })).kvs[0];
    assert.deepEqual([bin.createRevision, bin.version, bin.lease], [7, 1, -3n]);
    assert.equal(s.range(rangeReq('b')).kvs[0].version, 2);
  } finally {
    await s.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('reopen after a compaction that removed every record continues from the compaction revision', async () => {
  const dir = tempDir();
  let s = openStore(dir);
  s.put(putReq('a', '1'));
  s.deleteRange(delReq('a'));
  await s.compact(3);
  await s.close();
  s = openStore(dir);
  try {
    assert.equal(s.currentRevision, 3);
    assert.equal(s.put(putReq('a', '2')).header!.revision, 4);
  } finally {
    await s.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a crash after a compaction removed the head tombstone but before its finished mark keeps revisions monotonic', async () => {
  const dir = tempDir();
  let s = openStore(dir);
  s.put(putReq('a', '1'));
  s.deleteRange(delReq('a')); // rev 3, the head, a tombstone the compaction removes
  await s.compact(3);
  // The state such a crash leaves: records gone, compaction scheduled, no finished mark.
  s.backend.del('meta', b('finishedCompactRev'));
  await s.close();
  s = openStore(dir);
  try {
    assert.equal(s.compactRevision, 3);
    assert.equal(s.currentRevision, 3, 'current revision is at least the scheduled compaction (etcd #17780)');
    assert.equal(s.range(rangeReq('a')).header!.revision, 3);
    assert.equal(s.put(putReq('a', '2')).header!.revision, 4);
  } finally {
    await s.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('compaction writes its finished mark in the same backend commit as its last deletions', async () => {
  const dir = tempDir();
  // Compaction batches of 2 over exactly 2 records; a backend that commits after every write
  // (at the next setImmediate, before the compaction's own yield between batches).
  const s = openStore(dir, { compactionBatchLimit: 2 }, { batchLimit: 1 });
  try {
    s.put(putReq('a', '1'));
    s.deleteRange(delReq('a'));
    await s.forceCommit();
    const ops: string[] = [];
    const be = s.backend;
    const del = be.del.bind(be);
    const put = be.put.bind(be);
    be.del = (db, key) => (ops.push(`del ${db}`), del(db, key));
    be.put = (db, key, value) => (ops.push(`put ${db} ${key.toString()}`), put(db, key, value));
    be.onBeforeCommit(() => ops.push('commit'));
    await s.compact(3);
    const mark = ops.indexOf('put meta finishedCompactRev');
    const lastDel = ops.lastIndexOf('del key');
    assert.ok(mark > lastDel && lastDel >= 0, ops.join(', '));
    assert.ok(!ops.slice(lastDel, mark).includes('commit'), `a commit between the last deletion and the mark: ${ops.join(', ')}`);
  } finally {
    await s.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('consistent index and term are persisted in the commit that carries the data', async () => {
  const dir = tempDir();
  let s = openStore(dir, {}, { batchIntervalMs: 60_000 });
  s.setConsistentIndex(7, 2);
  s.put(putReq('a', '1'));
  assert.ok(s.backend.pendingWrites > 0);
  await s.forceCommit();
  assert.equal(s.backend.pendingWrites, 0);
  // What LMDB holds now: both the data and the index that covers it.
  assert.ok(s.backend.get('meta', Buffer.from('consistent_index'))!.equals(Buffer.from([0, 0, 0, 0, 0, 0, 0, 7])));
  s.setConsistentIndex(8, 2);
  s.put(putReq('b', '1'));
  await s.close();
  s = openStore(dir);
  try {
    assert.equal(s.consistentIndex(), 8);
    assert.equal(s.consistentTerm(), 2);
    assert.equal(s.range(rangeReq('b')).kvs.length, 1);
  } finally {
    await s.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('reads see a write at once, before the batched backend commit', async () => {
    const dir = tempDir();
    const s = openStore(dir, {}, { batchIntervalMs: 60_000 });
    try {
      s.put(putReq('a', '1'));
      s.put(putReq('a', '2'));
      assert.ok(s.backend.pendingWrites >= 2);
      assert.equal(s.range(rangeReq('a')).kvs[0].value.toString(), '2');
      assert.equal(s.range(rangeReq('a', { revision: 2 })).kvs[0].value.toString(), '1');
    } finally {
      await s.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
});

test('hashKV equals real etcd 3.4 HashKV (CRC-32C) for the same history', () =>
  withStore(async (s) => {
    // Values observed from etcd 3.4 with etcdctl for this exact sequence.
    s.put(putReq('a', '1'));
    s.put(putReq('b', '2'));
    s.put(putReq('a', '3'));
    s.deleteRange(delReq('b'));
    s.put(putReq('c', 'hello'));
    assert.deepEqual(s.hashKV(0), { hash: 3157975744, revision: 6, compactRevision: -1 });
    void s.compact(3); // hashKV must not depend on how far the physical compaction got
    assert.deepEqual(s.hashKV(0), { hash: 1083920831, revision: 6, compactRevision: 3 });
    await s.compactionsDone();
    assert.deepEqual(s.hashKV(0), { hash: 1083920831, revision: 6, compactRevision: 3 });
    s.put(putReq('a', '4'));
    assert.equal(s.hashKV(0).hash, 1179335145);
    s.write((tx) => { tx.put(putReq('x', '1')); tx.range(rangeReq('a')); tx.deleteRange(delReq('c')); });
    assert.equal(s.hashKV(0).hash, 2689409718);
    assert.equal(s.hashKV(7).hash, 1179335145);
    assert.throws(() => s.hashKV(3), isErr('Compacted'));
    assert.throws(() => s.hashKV(9), isErr('FutureRev'));
  }));

test('hash covers every bucket and is stable across reopen', async () => {
  const dir = tempDir();
  let s = openStore(dir);
  seed(s);
  s.setConsistentIndex(3, 1);
  const h1 = s.hash();
  s.setConsistentIndex(4, 1); // the consistent index is not hashed
  assert.equal(s.hash().hash, h1.hash);
  await s.close();
  s = openStore(dir);
  try {
    assert.deepEqual(s.hash(), h1);
    s.put(putReq('z', '1'));
    assert.notEqual(s.hash().hash, h1.hash);
  } finally {
    await s.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('onChanges reports each write txn once with its events in order', () => {
  const seen: string[] = [];
  return withStore(
    (s) => {
      s.put(putReq('a', '1'));
      s.write((tx) => { tx.put(putReq('b', '1')); tx.deleteRange(delReq('a')); });
      s.deleteRange(delReq('zz'));
      assert.deepEqual(seen, ['2:PUT a@2', '3:PUT b@3,DELETE a@3']);
    },
    { onChanges: (evs: { type: number; kv?: { key: Buffer; modRevision: number } }[], rev: number) => seen.push(`${rev}:${evs.map((e) => `${e.type === 0 ? 'PUT' : 'DELETE'} ${e.kv!.key}@${e.kv!.modRevision}`).join(',')}`) },
  );
});

test('wantsChanges, asked as each write begins, skips building the events of writes nobody wants', () => {
  const seen: number[] = [];
  let wanted = false;
  return withStore(
    (s) => {
      s.put(putReq('a', '1'));
      wanted = true;
      s.put(putReq('b', '1'));
      wanted = false;
      s.write((tx) => { tx.put(putReq('c', '1')); tx.deleteRange(delReq('a')); });
      assert.deepEqual(seen, [3]);
      assert.equal(s.range(rangeReq('\0', { rangeEnd: b('\0') })).kvs.length, 2, 'the writes themselves all happened');
    },
    { onChanges: (_evs: unknown[], rev: number) => seen.push(rev), wantsChanges: () => wanted },
  );
});

test('delete + compact + defrag shrinks the file and keeps every live key and the revision', async () => {
  const dir = tempDir();
  const s = openStore(dir);
  try {
    const v = '#'.repeat(256);
    for (let i = 0; i < 5000; i++) s.put(putReq(`big/${String(i).padStart(5, '0')}`, v));
    s.put(putReq('keep', 'me'));
    s.deleteRange(delReq('big/', { rangeEnd: b('big0') }));
    await s.compact(s.currentRevision);
    await s.forceCommit();
    const before = s.backend.size();
    await s.backend.defrag();
    const after = s.backend.size();
    assert.ok(after < before / 4, `size ${before} -> ${after}`);
    assert.equal(s.range(rangeReq('keep')).kvs[0].value.toString(), 'me');
    assert.equal(s.range(rangeReq('big/', { rangeEnd: b('big0'), countOnly: true })).count, 0);
    assert.equal(s.put(putReq('after', '1')).header!.revision, 5004);
  } finally {
    await s.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('liveKeys (the keys_total gauge) equals a count of every key through puts, overwrites, deletes, range deletes, compaction and reopen', async () => {
  const dir = tempDir();
  let s = openStore(dir);
  const counted = (st: MvccStore) => st.range(rangeReq('\0', { rangeEnd: b('\0'), countOnly: true })).count;
  let x = 0x9e3779b9; // xorshift32, seeded: the same sequence every run
  const rand = (n: number) => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return (x >>> 0) % n; };
  let reopened = 0;
  try {
    for (let step = 0; step < 400; step++) {
      const k = `k${rand(40)}`;
      const op = rand(10);
      if (op < 6) s.put(putReq(k, `v${step}`));
      else if (op < 8) s.deleteRange(delReq(k));
      else if (op < 9) s.deleteRange(delReq(`k${rand(4)}`, { rangeEnd: b(`k${rand(4) + 5}`) }));
      else if (step > 50 && rand(4) === 0) await s.compact(s.currentRevision - 10);
      else { await s.close(); s = openStore(dir); reopened++; }
      assert.equal(s.liveKeys(), counted(s), `after step ${step}`);
    }
    assert.ok(s.liveKeys() > 0 && reopened > 0, `${s.liveKeys()} live keys, ${reopened} reopens`);
  } finally {
    await s.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a one-key read finds the record range decodes, buffered or committed, and refuses the revisions range refuses', () =>
  withStore(async (s) => {
    seed(s);
    s.deleteRange(delReq('c'));
    await s.compact(3);
    const same = (key: string, rev: number): void => {
      const want = s.range(rangeReq(key, { revision: rev })).kvs;
      const found = s.findKey(b(key), rev);
      assert.equal(found === undefined ? 0 : 1, want.length, `${key}@${rev}: found`);
      if (found !== undefined) assert.deepEqual(decodeKeyValue(Buffer.from(s.recordOf(found))), want[0], `${key}@${rev}`);
    };
    for (const pass of ['buffered', 'committed']) {
      if (pass === 'committed') await s.backend.forceCommit();
      for (const key of ['a', 'b', 'c', 'j', 'zz']) for (const rev of [0, 3, 5, 11, 12, s.currentRevision]) same(key, rev);
      assert.throws(() => s.findKey(b('a'), s.currentRevision + 1), isErr('FutureRev'));
      assert.throws(() => s.findKey(b('a'), 2), isErr('Compacted'));
    }
    // Only a read of one key with no revision filter takes this path.
    assert.equal(isOneKeyRead(rangeReq('a', { keysOnly: true, countOnly: true, limit: 1, sortOrder: O.DESCEND, revision: 4 })), true);
    for (const extra of [{ rangeEnd: b('b') }, { rangeEnd: b('\0') }, { minModRevision: 1 }, { maxModRevision: 9 }, { minCreateRevision: 1 }, { maxCreateRevision: 9 }]) {
      assert.equal(isOneKeyRead(rangeReq('a', extra)), false, JSON.stringify(extra));
    }
  }));
