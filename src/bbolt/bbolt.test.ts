// Round trips through the streaming writer and the reader, byte-level checks of the layout,
// and a fuzz of the reader with damaged files. (A file written by real etcd is read in
// test/snapshot-bbolt.test.ts; files written here are read by real etcdctl in test/snapshot.test.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { rng } from '../testkit/index.js';
import {
  planBoltFile, planBoltFileAsync, BoltReader, BoltFormatError, BoltSourceChangedError, bufferSource, fileSource, fnv64a,
  type BoltBucketSource, type BoltCursor, type ByteSource,
} from './index.js';

type Entries = [Buffer, Buffer][];

function source(name: string, entries: Entries): BoltBucketSource {
  return { name: Buffer.from(name), entries: () => entries };
}

function write(buckets: BoltBucketSource[], pageSize?: number): Buffer {
  const plan = planBoltFile(buckets, { pageSize });
  const parts: Buffer[] = [];
  for (const p of plan.pages()) parts.push(Buffer.from(p)); // pages may be reused: copy
  const file = Buffer.concat(parts);
  assert.equal(file.length, plan.size);
  return file;
}

/**
 * The strictest transient source: every readTransient copies into one shared buffer, so a
 * walk that used a page after reading another would see the wrong bytes.
 */
function reusingSource(file: Buffer): ByteSource {
  let shared = Buffer.alloc(0);
  return {
    size: file.length,
    read: (offset, length) => file.subarray(offset, offset + length),
    readTransient: (offset, length) => {
      if (shared.length < length) shared = Buffer.alloc(length);
      shared.fill(0xee);
      file.copy(shared, 0, offset, offset + length);
      return shared.subarray(0, length);
    },
  };
}

/** Every bucket read with scan (keys and values copied as they pass). */
function scanAll(src: ByteSource): Map<string, Entries> {
  const r = BoltReader.open(src);
  const out = new Map<string, Entries>();
  for (const name of r.bucketNames()) {
    const entries: Entries = [];
    for (const c = r.scan(name)!; c.next();) entries.push([Buffer.from(c.key), Buffer.from(c.value)]);
    out.set(name.toString('latin1'), entries);
  }
  return out;
}

function readAll(file: Buffer): Map<string, Entries> {
  const r = BoltReader.open(bufferSource(file));
  const out = new Map<string, Entries>();
  for (const name of r.bucketNames()) {
    out.set(name.toString('latin1'), [...r.bucket(name)!].map((e) => [Buffer.from(e.key), Buffer.from(e.value)]));
  }
  return out;
}

function randomEntries(rand: () => number, n: number, maxValue: number): Entries {
  const keys = new Map<string, Buffer>();
  while (keys.size < n) {
    const k = Buffer.alloc(1 + Math.floor(rand() * 40));
    for (let i = 0; i < k.length; i++) k[i] = Math.floor(rand() * 256);
    keys.set(k.toString('latin1'), k);
  }
  return [...keys.values()].sort(Buffer.compare).map((k) => {
    const v = Buffer.alloc(Math.floor(rand() * maxValue));
    for (let i = 0; i < v.length; i++) v[i] = Math.floor(rand() * 256);
    return [k, v];
  });
}

test('round trip: empty, inline, multi-level and overflowing buckets come back entry for entry', () => {
  const rand = rng(7);
  const data = new Map<string, Entries>([
    ['alarm', []],
    ['meta', [[Buffer.from('consistent_index'), Buffer.from([0, 0, 0, 0, 0, 0, 0, 9])]]],
    ['key', randomEntries(rand, 20_000, 300)],
    ['big', randomEntries(rand, 40, 20_000)], // values spanning several pages
    ['lease', randomEntries(rand, 3, 10)],
  ]);
  for (const pageSize of [4096, 512, 16384]) {
    const file = write([...data].map(([n, e]) => source(n, e)), pageSize);
    const got = readAll(file);
    assert.deepEqual([...got.keys()], [...data.keys()].sort());
    for (const [name, entries] of data) assert.deepEqual(got.get(name), entries, `bucket ${name}, page size ${pageSize}`);
    assert.deepEqual(scanAll(reusingSource(file)), got, `scan over transient pages, page size ${pageSize}`);
    const r = BoltReader.open(bufferSource(file));
    assert.deepEqual(r.check(), [], 'every page reachable once (bbolt tx.Check)');
    assert.equal(r.size, file.length);
  }
});

test('layout: meta pages, freelist, inline buckets and page headers as bbolt writes them', () => {
  const file = write([source('a', [[Buffer.from('k'), Buffer.from('v')]]), source('b', randomEntries(rng(1), 500, 50))]);
  const meta = (n: number) => file.subarray(n * 4096, n * 4096 + 80);
  for (const n of [0, 1]) {
    const m = meta(n);
    assert.equal(m.readBigUInt64LE(0), BigInt(n), 'page id');
    assert.equal(m.readUInt16LE(8), 0x04, 'meta flag');
    assert.equal(m.readUInt32LE(16), 0xed0cdaed, 'magic');
    assert.equal(m.readUInt32LE(20), 2, 'version');
    assert.equal(m.readUInt32LE(24), 4096, 'page size');
    assert.equal(m.readBigUInt64LE(48), 2n, 'freelist page');
    assert.equal(m.readBigUInt64LE(56), BigInt(file.length / 4096), 'high-water mark');
    assert.equal(m.readBigUInt64LE(72), fnv64a(m.subarray(16, 72)), 'checksum');
  }
  assert.equal(meta(0).readBigUInt64LE(64), meta(1).readBigUInt64LE(64) + 1n, 'meta 0 is the newer one');
  assert.equal(file.readUInt16LE(2 * 4096 + 8), 0x10, 'page 2 is the freelist');
  assert.equal(file.readUInt16LE(2 * 4096 + 10), 0, 'and it is empty');
  const r = BoltReader.open(bufferSource(file));
  const root = [...r.rootEntries()];
  assert.deepEqual(root.map((e) => [e.key.toString(), e.isBucket]), [['a', true], ['b', true]]);
  assert.equal(root[0].value.readBigUInt64LE(0), 0n, 'bucket a is inline (root 0)');
  assert.equal(root[0].value.length, 16 + 16 + 16 + 2, 'bucket header + page header + one element + "kv"');
  assert.notEqual(root[1].value.readBigUInt64LE(0), 0n, 'bucket b has its own pages');
  assert.equal(root[1].value.length, 16);
  // FNV-64a of the empty string and of "a" (Go's hash/fnv).
  assert.equal(fnv64a(Buffer.alloc(0)), 0xcbf29ce484222325n);
  assert.equal(fnv64a(Buffer.from('a')), 0xaf63dc4c8601ec8cn);
});

test('the writer refuses unsorted or empty keys and notices a source that changed between passes', () => {
  assert.throws(() => planBoltFile([source('x', [[Buffer.from('b'), Buffer.alloc(0)], [Buffer.from('a'), Buffer.alloc(0)]])]), /order/);
  assert.throws(() => planBoltFile([source('x', [[Buffer.alloc(0), Buffer.alloc(0)]])]), /empty key/);
  const entries = randomEntries(rng(3), 2000, 20);
  let pass = 0;
  const changing: BoltBucketSource = { name: Buffer.from('k'), entries: () => (pass++ === 0 ? entries : entries.slice(0, 1500)) };
  const plan = planBoltFile([changing]);
  assert.throws(() => { for (const _ of plan.pages()); }, BoltSourceChangedError);
});

test('fuzz: damaged files give BoltFormatError or read through, never another error or a hang', () => {
  const rand = rng(11);
  const good = write([source('key', randomEntries(rand, 3000, 100)), source('meta', randomEntries(rand, 5, 8)), source('big', randomEntries(rand, 5, 9000))]);
  let formatErrors = 0;
  for (let round = 0; round < 600; round++) {
    const bad = Buffer.from(good);
    const kind = round % 3;
    if (kind === 0) {
      for (let i = 0, n = 1 + Math.floor(rand() * 8); i < n; i++) bad[Math.floor(rand() * bad.length)] = Math.floor(rand() * 256);
    } else if (kind === 1) {
      // Damage the page headers and element tables, where offsets live.
      const page = Math.floor(rand() * (bad.length / 4096));
      for (let i = 0; i < 4; i++) bad[page * 4096 + Math.floor(rand() * 64)] = Math.floor(rand() * 256);
    }
    const file = kind === 2 ? bad.subarray(0, Math.floor(rand() * bad.length)) : bad;
    try {
      const r = BoltReader.open(round % 2 === 0 ? bufferSource(file) : reusingSource(file));
      for (const name of r.bucketNames()) for (const _ of r.bucket(name) ?? []);
      for (const name of r.bucketNames()) for (const c = r.scan(name); c?.next(););
      r.check();
    } catch (e) {
      if (!(e instanceof BoltFormatError)) throw new Error(`round ${round}: ${String(e)}`);
      formatErrors++;
    }
  }
  assert.ok(formatErrors > 100, `most damage is noticed (${formatErrors} of 600)`);
});

test('the reader names what is wrong: truncated file, bad checksum, page out of range, a cycle', () => {
  const file = write([source('key', randomEntries(rng(5), 2000, 30))]);
  assert.throws(() => BoltReader.open(bufferSource(file.subarray(0, file.length - 4096))), /truncated/);
  const both = Buffer.from(file);
  both[16 + 30] ^= 1;
  both[4096 + 16 + 30] ^= 1;
  assert.throws(() => BoltReader.open(bufferSource(both)), /checksum error/);
  // One meta page damaged: bbolt falls back to the other, so do we.
  const one = Buffer.from(file);
  one[16 + 30] ^= 1;
  assert.equal([...BoltReader.open(bufferSource(one)).bucket(Buffer.from('key'))!].length, 2000);
  // Point the first branch element of the key bucket's root at itself.
  const r = BoltReader.open(bufferSource(file));
  const root = r.bucketNames().length && [...r.rootEntries()][0].value.readUInt32LE(0);
  const cyc = Buffer.from(file);
  assert.equal(cyc.readUInt16LE(root * 4096 + 8), 0x01, 'a 2000-key bucket has a branch root');
  cyc.writeBigUInt64LE(BigInt(root), root * 4096 + 16 + 8);
  assert.throws(() => [...BoltReader.open(bufferSource(cyc)).bucket(Buffer.from('key'))!], (e: Error) => e instanceof BoltFormatError && /page \d+: reached twice/.test(e.message));
  const far = Buffer.from(file);
  far.writeBigUInt64LE(10n ** 9n, root * 4096 + 16 + 8);
  assert.throws(() => [...BoltReader.open(bufferSource(far)).bucket(Buffer.from('key'))!], /out of range/);
});

test('planBoltFileAsync yields to the event loop by bytes as well as by entries (big values do not hold it)', async () => {
  const big = Buffer.alloc(1024 * 1024, 1);
  const entries: Entries = Array.from({ length: 40 }, (_, i) => [Buffer.from(`k${String(i).padStart(3, '0')}`), big]);
  let turns = 0;
  let planning = true;
  const tick = (): void => { if (planning) { turns++; setImmediate(tick); } };
  setImmediate(tick);
  const plan = await planBoltFileAsync([source('key', entries)]);
  planning = false;
  assert.ok(turns >= 8, `the loop ran ${turns} times while 40 MiB were planned`);
  const pages: Buffer[] = [];
  for (const p of plan.pages()) pages.push(Buffer.from(p)); // a page buffer may be reused: copy
  assert.equal(readAll(Buffer.concat(pages)).get('key')!.length, 40);
});

test('fileSource reads in blocks: a file of many blocks reads as from memory, what bucket() returned stays valid, scan() reuses its blocks', () => {
  const rand = rng(7);
  // Values up to 600 KiB overflow across the 1 MiB read-ahead blocks; 8+ MiB in all evicts blocks.
  const big: Entries = Array.from({ length: 24 }, (_, i) => [Buffer.from(`big-${String(i).padStart(3, '0')}`), Buffer.alloc(1 + Math.floor(rand() * 600 * 1024), i)]);
  const buckets = [source('key', randomEntries(rand, 20_000, 300)), source('lease', big), source('meta', randomEntries(rand, 50, 8))];
  const file = write(buckets);
  assert.ok(file.length > 8 * 1024 * 1024, `the file (${file.length} bytes) spans more blocks than fileSource keeps`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'concord-bbolt-'));
  const p = path.join(dir, 'db');
  fs.writeFileSync(p, file);
  const src = fileSource(p);
  try {
    const r = BoltReader.open(src);
    const names = r.bucketNames(); // views of the root page's block, kept across the whole walk
    assert.deepEqual(r.check(), []);
    const fromFile = new Map<string, Entries>();
    for (const name of names) fromFile.set(name.toString('latin1'), [...r.bucket(name)!].map((e) => [Buffer.from(e.key), Buffer.from(e.value)]));
    assert.deepEqual(names.map((n) => n.toString('latin1')), ['key', 'lease', 'meta']);
    assert.deepEqual(fromFile, readAll(file));
    // scan: the same entries through a few reused blocks (and one buffer for reads across blocks).
    const buffers = new Set<ArrayBufferLike>();
    const counted: ByteSource = {
      size: src.size, read: (o, n) => src.read(o, n),
      readTransient: (o, n) => { const b = src.readTransient(o, n); buffers.add(b.buffer); return b; },
    };
    assert.deepEqual(scanAll(counted), fromFile);
    assert.ok(buffers.size <= 12, `scan read ${(file.length / 2 ** 20).toFixed(0)} MiB through ${buffers.size} buffers`);
  } finally {
    src.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

function count(c: BoltCursor): number {
  let n = 0;
  while (c.next()) n++;
  return n;
}

test('checkAlong finds what check finds, counting the buckets the caller walked through it once', () => {
  const rand = rng(3);
  const file = write([source('key', randomEntries(rand, 3000, 200)), source('lease', randomEntries(rand, 5, 10)), source('meta', randomEntries(rand, 3, 8))]);
  // The key bucket's branch root loses its last child: that subtree is unreachable, not freed.
  const r = BoltReader.open(bufferSource(file));
  const keyRoot = [...r.rootEntries()].find((e) => e.key.toString() === 'key')!.value.readUInt32LE(0);
  const damaged = Buffer.from(file);
  assert.equal(damaged.readUInt16LE(keyRoot * 4096 + 8), 0x01, 'a 3000-key bucket has a branch root');
  damaged.writeUInt16LE(damaged.readUInt16LE(keyRoot * 4096 + 10) - 1, keyRoot * 4096 + 10);
  for (const bytes of [file, damaged]) {
    const reader = BoltReader.open(bufferSource(bytes));
    const expected = reader.check();
    assert.equal(expected.length === 0, bytes === file);
    // Walked whole through checkAlong (counted), part-way (walked again), or not at all.
    for (const walk of [['key', 'lease', 'meta'], ['key'], []]) {
      const along = reader.checkAlong();
      for (const name of walk) assert.equal(count(along.scan(Buffer.from(name))!), [...reader.bucket(Buffer.from(name))!].length);
      along.scan(Buffer.from('meta'))!.next();
      assert.equal(along.scan(Buffer.from('none')), undefined);
      assert.deepEqual(along.problems(), expected, `walked ${walk.join(',')}`);
    }
  }
  const problems = BoltReader.open(bufferSource(damaged)).check();
  assert.ok(problems.length > 0 && problems.every((p) => /unreachable unfreed/.test(p)), problems.join('\n'));
});
