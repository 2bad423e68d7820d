import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyIndex } from './key_index.js';
import { TreeIndex } from './tree_index.js';
import { revId } from './revision.js';
import { inChildNode } from '../testkit/index.js';

const b = (s: string) => Buffer.from(s);

/** etcd's example: put(1.0); put(2.0); tombstone(3.0); put(4.0); tombstone(5.0). */
function example(): KeyIndex {
  const ki = new KeyIndex('foo');
  ki.put(1, 0);
  ki.put(2, 0);
  ki.tombstone(3, 0);
  ki.put(4, 0);
  ki.tombstone(5, 0);
  return ki;
}

function gens(ki: KeyIndex): number[][] {
  return ki.generations.map((g) => g.revs.filter((_, i) => i % 2 === 0));
}

test('tombstone closes a generation and opens an empty one', () => {
  assert.deepEqual(gens(example()), [[1, 2, 3], [4, 5], []]);
});

test('get finds the revision, creation and version at a revision, nothing across a tombstone gap', () => {
  const ki = example();
  assert.equal(ki.get(0), undefined);
  assert.deepEqual(ki.get(1), { modMain: 1, modSub: 0, createdMain: 1, createdSub: 0, version: 1 });
  assert.deepEqual(ki.get(2), { modMain: 2, modSub: 0, createdMain: 1, createdSub: 0, version: 2 });
  assert.equal(ki.get(3), undefined); // deleted at 3
  assert.deepEqual(ki.get(4), { modMain: 4, modSub: 0, createdMain: 4, createdSub: 0, version: 1 });
  assert.equal(ki.get(5), undefined);
  assert.equal(ki.get(100), undefined);
});

test('tombstone on a key already deleted reports false', () => {
  const ki = example();
  assert.equal(ki.tombstone(6, 0), false);
});

test('put with a smaller revision is an invariant violation', () => {
  const ki = example();
  assert.throws(() => ki.put(5, 0));
  assert.throws(() => ki.put(4, 9));
});

test('compaction keeps the largest revision at or below the compact revision, as etcd documents', () => {
  const ki = example();
  let avail = new Set<string>();
  ki.compact(2, avail);
  assert.deepEqual(gens(ki), [[2, 3], [4, 5], []]);
  assert.deepEqual([...avail], [revId(2, 0)]);

  avail = new Set();
  ki.compact(4, avail);
  assert.deepEqual(gens(ki), [[4, 5], []]);
  assert.deepEqual([...avail], [revId(4, 0)]);

  avail = new Set();
  ki.compact(5, avail);
  assert.ok(ki.isEmpty(), 'a key whose last generation was closed is removed at its tombstone');
  assert.equal(avail.size, 0);
});

test('compaction at a tombstone drops the whole generation including the tombstone', () => {
  const ki = example();
  const avail = new Set<string>();
  ki.compact(3, avail);
  assert.deepEqual(gens(ki), [[4, 5], []]);
  assert.equal(avail.size, 0);
});

test('keep reports what compact would keep without changing the index', () => {
  for (const at of [1, 2, 3, 4, 5, 6]) {
    const ki = example();
    const kept = new Set<string>();
    ki.keep(at, kept);
    assert.deepEqual(gens(ki), [[1, 2, 3], [4, 5], []]);
    const compacted = new Set<string>();
    ki.compact(at, compacted);
    assert.deepEqual([...kept].sort(), [...compacted].sort(), `at ${at}`);
  }
});

test('versions keep counting after compaction removed earlier revisions', () => {
  const ki = new KeyIndex('k');
  for (let r = 2; r <= 6; r++) ki.put(r, 0);
  ki.compact(5, new Set());
  assert.deepEqual(ki.get(6), { modMain: 6, modSub: 0, createdMain: 2, createdSub: 0, version: 5 });
  assert.deepEqual(ki.get(5)?.version, 4);
  assert.equal(ki.get(4), undefined, 'history below the kept revision is gone');
});

test('a key goes on after compaction trimmed its current generation: puts, tombstones, lookups', () => {
  const ki = new KeyIndex('k');
  for (let r = 2; r <= 5; r++) ki.put(r, 0);
  ki.compact(4, new Set());
  assert.deepEqual(gens(ki), [[4, 5]]);
  ki.put(6, 0);
  ki.tombstone(7, 0);
  ki.put(8, 0);
  assert.deepEqual(gens(ki), [[4, 5, 6, 7], [8]]);
  assert.deepEqual(ki.get(6), { modMain: 6, modSub: 0, createdMain: 2, createdSub: 0, version: 5 });
  assert.equal(ki.get(7), undefined);
  assert.deepEqual(ki.get(8), { modMain: 8, modSub: 0, createdMain: 8, createdSub: 0, version: 1 });
  ki.compact(7, new Set());
  assert.deepEqual(gens(ki), [[8]]);
  ki.put(9, 1);
  assert.deepEqual(ki.generations, [{ ver: 2, createdMain: 8, createdSub: 0, revs: [8, 0, 9, 1] }]);
  assert.deepEqual([ki.modMain, ki.modSub], [9, 1]);
});

test('a key restored from a compacted record keeps its creation and version', () => {
  const ki = new KeyIndex('k');
  ki.restore(3, 7, 1, 4);
  assert.deepEqual(ki.get(7), { modMain: 7, modSub: 1, createdMain: 3, createdSub: 0, version: 4 });
  assert.equal(ki.get(6), undefined);
  ki.put(8, 0);
  assert.deepEqual(ki.get(8)?.version, 5);
  assert.throws(() => ki.restore(1, 1, 0, 1), /restore on a non-empty keyIndex/);
});

test('a key with one revision answers as the full history does, before and after more changes', () => {
  // Put once, restored (creation before the revision; and at it, in a sub over 0), put in a txn.
  const cases: Array<[string, (ki: KeyIndex) => void, { createdMain: number; createdSub: number; version: number }]> = [
    ['put', (ki) => ki.put(7, 2), { createdMain: 7, createdSub: 2, version: 1 }],
    ['restored', (ki) => ki.restore(3, 7, 2, 4), { createdMain: 3, createdSub: 0, version: 4 }],
    ['restored at its creation', (ki) => ki.restore(7, 7, 2, 1), { createdMain: 7, createdSub: 0, version: 1 }],
  ];
  for (const [name, make, created] of cases) {
    const ki = new KeyIndex('k');
    assert.equal(ki.hasHistory(), false);
    make(ki);
    assert.equal(ki.hasHistory(), true, name);
    assert.equal(ki.isEmpty(), false, name);
    assert.equal(ki.modMain, 7);
    assert.equal(ki.modSub, 2);
    assert.equal(ki.get(6), undefined, name);
    assert.deepEqual(ki.get(7), { modMain: 7, modSub: 2, ...created }, name);
    assert.deepEqual(ki.get(100), { modMain: 7, modSub: 2, ...created }, name);
    assert.deepEqual(ki.generations, [{ ver: created.version, createdMain: created.createdMain, createdSub: created.createdSub, revs: [7, 2] }], name);
    assert.deepEqual(ki.since(7), [7, 2]);
    assert.deepEqual(ki.since(8), []);
    const kept = new Set<string>();
    ki.keep(6, kept);
    assert.deepEqual([...kept], []);
    ki.keep(7, kept);
    assert.deepEqual([...kept], [revId(7, 2)]);
    const compacted = new Set<string>();
    ki.compact(50, compacted);
    assert.deepEqual([...compacted], [revId(7, 2)], name);
    assert.deepEqual(ki.get(7)?.version, created.version, name);
    assert.throws(() => ki.put(7, 1), /unexpected smaller revision/);
    // More changes leave the one-revision form: the history goes on from it.
    ki.put(9, 0);
    assert.deepEqual(ki.get(8), { modMain: 7, modSub: 2, ...created }, name);
    assert.deepEqual(ki.get(9), { modMain: 9, modSub: 0, createdMain: created.createdMain, createdSub: created.createdSub, version: created.version + 1 }, name);
    assert.equal(ki.tombstone(10, 0), true);
    assert.equal(ki.get(10), undefined);
    assert.deepEqual(gens(ki), [[7, 9, 10], []], name);
  }
  const deleted = new KeyIndex('d');
  deleted.put(4, 0);
  assert.equal(deleted.tombstone(5, 0), true);
  assert.deepEqual(gens(deleted), [[4, 5], []]);
  assert.equal(deleted.tombstone(6, 0), false);
});

/** Old-space bytes a tree index of `n` keys put once holds, measured in a child (gc exposed). */
function heapBytesPerKey(n: number): number {
  const script = `
    const { TreeIndex } = await import(${JSON.stringify(new URL('./tree_index.js', import.meta.url).href)});
    const used = () => { gc(); gc(); return process.memoryUsage().heapUsed; };
    const index = new TreeIndex();
    const before = used();
    // Each key's Buffer is garbage once put, as a request's is: only what the index keeps counts.
    for (let i = 0; i < ${n}; i++) index.put(Buffer.from('key-' + String(i).padStart(8, '0')), i + 2, 0);
    process.stdout.write(String((used() - before) / ${n}));
    if (index.size !== ${n}) process.exit(3);
  `;
  return Number(inChildNode(['--expose-gc'], script));
}

test('the key index holds a key put once in ~130 bytes of heap (was ~220 with its history array)', () => {
  // A 12-byte key: its string 32 B, KeyIndex 64 B, its slot in the B-tree and its share of
  // the tree's nodes ~35 B.
  const perKey = heapBytesPerKey(100_000);
  assert.ok(perKey < 170, `${perKey.toFixed(0)} B per key`);
});

test('since returns one revision per main revision, the largest sub', () => {
  const ki = new KeyIndex('k');
  ki.put(2, 0);
  ki.put(3, 0);
  ki.put(3, 1);
  ki.tombstone(4, 0);
  ki.put(5, 0);
  assert.deepEqual(ki.since(3), [3, 1, 4, 0, 5, 0]);
  assert.deepEqual(ki.since(1), [2, 0, 3, 1, 4, 0, 5, 0]);
});

test('tree index ranges over [key, end), from-key with an empty end, and single keys', () => {
  const t = new TreeIndex();
  let rev = 2;
  for (const k of ['a', 'b', 'ba', 'c', 'd']) t.put(b(k), rev++, 0);
  const keys = (key: string, end: Buffer | undefined) => t.range(b(key), end, 100).keys.map((ki) => ki.key);
  assert.deepEqual(keys('b', b('c')), ['b', 'ba']);
  assert.deepEqual(keys('b', Buffer.alloc(0)), ['b', 'ba', 'c', 'd']);
  assert.deepEqual(keys('ba', undefined), ['ba']);
  assert.deepEqual(keys('zz', Buffer.alloc(0)), []);
  assert.deepEqual(keys('c', b('a')), [], 'an end before the key is an empty range');
  t.tombstone(b('ba'), rev++, 0);
  assert.deepEqual(keys('b', b('c')), ['b']);
});

test('tree index compaction in chunks removes emptied keys and reports kept revisions', () => {
  const t = new TreeIndex();
  let rev = 2;
  for (let i = 0; i < 25; i++) t.put(b(`k${String(i).padStart(2, '0')}`), rev++, 0);
  for (let i = 0; i < 10; i++) t.tombstone(b(`k${String(i).padStart(2, '0')}`), rev++, 0);
  const kept = new Set<string>();
  let from: string | undefined;
  let chunks = 0;
  do {
    from = t.compactChunk(rev, from, 7, kept);
    chunks++;
  } while (from);
  assert.equal(chunks, 4);
  assert.equal(t.size, 15);
  assert.equal(kept.size, 15);
});

test('tree index orders keys by bytes, high bytes and NUL included, and gives the bytes back', () => {
  const t = new TreeIndex();
  const keys = [[0x00], [0x61], [0x61, 0x00], [0x7f], [0x80], [0xc3, 0xa9], [0xff], [0xff, 0xff]].map((k) => Buffer.from(k));
  let rev = 2;
  for (const k of [...keys].reverse()) t.put(k, rev++, 0);
  const got = t.range(Buffer.from([0x00]), Buffer.alloc(0), 100).keys.map((ki) => ki.keyBytes());
  assert.deepEqual(got, keys);
  assert.deepEqual(t.range(Buffer.from([0x7f]), Buffer.from([0xff]), 100).keys.map((ki) => ki.keyBytes()), keys.slice(3, 6));
  assert.equal(t.keyIndex(Buffer.from([0xc3, 0xa9]))?.keyBytes().equals(Buffer.from([0xc3, 0xa9])), true, 'UTF-8 bytes are kept as bytes');
});

test('a version-0 record (etcdutl --bump-revision\'s empty KeyValue) restores and compacts as before', () => {
  const ki = new KeyIndex('');
  ki.restore(0, 9, 0, 0);
  const avail = new Set<string>();
  assert.doesNotThrow(() => ki.compact(10, avail));
  assert.ok(avail.has(revId(9, 0)), 'its revision stays available, as in the array form');
});

test('a key\'s history is an array of unboxed doubles, which the garbage collector does not walk, in every form it takes', () => {
  // V8's elements kind is visible only through a natives-syntax intrinsic, hence a child process.
  const script = `
    const { KeyIndex } = await import(${JSON.stringify(new URL('./key_index.js', import.meta.url).href)});
    const kinds = {};
    const ki = new KeyIndex('a');
    ki.put(1, 0); ki.put(2, 0);
    kinds.expanded = %HasDoubleElements(ki.r);
    for (let rev = 3; rev < 40; rev++) ki.put(rev, 1);
    kinds.grown = %HasDoubleElements(ki.r);
    ki.tombstone(40, 0); ki.put(41, 0);
    kinds.tombstoned = %HasDoubleElements(ki.r);
    ki.compact(20, new Set());
    kinds.compacted = %HasDoubleElements(ki.r);
    const restored = new KeyIndex('b');
    restored.restore(0, 9, 0, 0);
    kinds.restored = %HasDoubleElements(restored.r);
    console.log(JSON.stringify(kinds));`;
  const out = inChildNode(['--allow-natives-syntax'], script);
  assert.deepEqual(JSON.parse(out), { expanded: true, grown: true, tombstoned: true, compacted: true, restored: true });
});
