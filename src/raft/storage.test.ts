import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Entry } from '../proto/index.js';
import { MemoryStorage } from './storage.js';
import { RaftError } from './errors.js';
import { inChildNode } from '../testkit/index.js';
import { PayloadArena, chunkBytes, smallChunkBytes, smallChunkCount } from './payload-arena.js';

function entry(index: number, bytes = 300): Entry {
  return { term: 1, index, type: 0, data: new Uint8Array(bytes).fill(index & 0xff) };
}

function gc(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

test('MemoryStorage keeps copies: the caller may reuse the buffers it appended', () => {
  const s = new MemoryStorage();
  const shared = new Uint8Array(8192);
  const ents: Entry[] = [];
  for (let i = 1; i <= 10; i++) {
    shared.fill(i, i * 100, i * 100 + 100);
    ents.push({ term: 1, index: i, type: 0, data: shared.subarray(i * 100, i * 100 + 100) });
  }
  s.append(ents);
  shared.fill(0);
  const got = s.entries(1, 11, Infinity);
  assert.equal(got.length, 10);
  for (const e of got) {
    assert.deepEqual([...e.data!], new Array(100).fill(e.index));
    assert.notEqual(e.data!.buffer, shared.buffer, 'a stored entry is a view of the caller\'s buffer');
  }
});

test('MemoryStorage keeps nil and empty payloads apart (Go nil vs [])', () => {
  const s = new MemoryStorage();
  s.append([{ term: 1, index: 1, type: 0 }, { term: 1, index: 2, type: 0, data: new Uint8Array(0) }]);
  const [a, b] = s.entries(1, 3, Infinity);
  assert.deepStrictEqual(a, { term: 1, index: 1, type: 0 });
  assert.equal(b!.data!.length, 0);
});

test('PayloadArena: small chunks first, then 1 MiB ones; a payload larger than a chunk gets its own', () => {
  const a = new PayloadArena();
  const data = new Uint8Array(1000).fill(7);
  const perSmall = Math.floor(smallChunkBytes / 1000);
  const views: Uint8Array[] = [];
  for (let i = 0; i < perSmall * smallChunkCount + 1; i++) views.push(a.copy(data));
  assert.equal(a.chunkCount, smallChunkCount + 1);
  assert.equal(views[0]!.buffer.byteLength, smallChunkBytes);
  assert.equal(views.at(-1)!.buffer.byteLength, chunkBytes);
  assert.ok(views.every((v) => v.length === 1000 && v[0] === 7 && v[999] === 7));
  const big = a.copy(new Uint8Array(chunkBytes + 1).fill(9));
  assert.equal(big.buffer.byteLength, chunkBytes + 1);
  assert.equal(big[chunkBytes], 9);
});

test('PayloadArena.releaseBefore drops the chunks before a handle and renumbers the rest; small chunks do not start again', () => {
  const a = new PayloadArena();
  const handles: number[] = [];
  for (let i = 0; i < 3000; i++) handles.push(a.store(new Uint8Array(1000).fill(i & 0xff)));
  const held = a.chunkCount;
  const keepFrom = 2500;
  const keptChunk = a.view(handles[keepFrom]!, 1000).buffer;
  const shift = a.releaseBefore(handles[keepFrom]);
  assert.ok(a.chunkCount < held && a.chunkCount >= 1);
  assert.equal(a.view(handles[keepFrom]! - shift, 1000).buffer, keptChunk, 'the kept chunk is the same, renumbered');
  for (let i = keepFrom; i < 3000; i++) assert.deepEqual(a.view(handles[i]! - shift, 1000), new Uint8Array(1000).fill(i & 0xff));
  const next = a.copy(new Uint8Array(chunkBytes).fill(1)); // does not fit what is left: a new chunk
  assert.equal(next.buffer.byteLength, chunkBytes);
  assert.equal(a.releaseBefore(undefined), 0);
  assert.equal(a.chunkCount, 0);
  assert.equal(a.copy(new Uint8Array(10)).buffer.byteLength, chunkBytes, 'past the small ones for good');
  assert.throws(() => a.releaseBefore(5 * 2 ** 32), RangeError);
});

test('MemoryStorage.compact frees the chunks before the kept tail and copies no payload', async () => {
  const s = new MemoryStorage();
  // Past the small chunks, so the log takes several 1 MiB ones.
  const n = Math.ceil((smallChunkBytes * smallChunkCount + 4 * chunkBytes) / 300);
  for (let i = 1; i <= n; i += 1000) {
    const batch: Entry[] = [];
    for (let j = i; j < Math.min(i + 1000, n + 1); j++) batch.push(entry(j));
    s.append(batch);
  }
  const chunkOf = (i: number): ArrayBufferLike => s.entries(i, i + 1, Infinity)[0]!.data!.buffer;
  const tailChunk = chunkOf(n - 99);
  let oldChunks = new Set<ArrayBufferLike>(s.entries(1, n + 1, Infinity).map((e) => e.data!.buffer));
  assert.ok(oldChunks.size >= smallChunkCount + 4);
  oldChunks.delete(tailChunk);
  if (chunkOf(n) !== tailChunk) oldChunks.delete(chunkOf(n));
  const refs = [...oldChunks].map((b) => new WeakRef(b));
  oldChunks = new Set();

  s.compact(n - 100);
  const kept = s.entries(n - 99, n + 1, Infinity);
  assert.equal(kept.length, 100);
  assert.equal(kept[0]!.index, n - 99);
  assert.equal(kept[0]!.data!.buffer, tailChunk, 'the kept tail was copied');
  for (const e of kept) assert.deepEqual(e.data, new Uint8Array(300).fill(e.index & 0xff));
  // A WeakRef's target stays alive until the job that made it ends.
  await new Promise((resolve) => setImmediate(resolve));
  gc();
  const alive = refs.filter((r) => r.deref() !== undefined).length;
  assert.equal(alive, 0, `${alive} chunks of the compacted log still reachable`);
  assert.equal(s.firstIndex(), n - 99);
  assert.equal(s.term(n - 100), 1);
  // Compacted to the last entry: no payload kept, every chunk dropped; the log goes on.
  s.compact(n);
  s.append([entry(n + 1)]);
  assert.deepEqual(s.entries(n + 1, n + 2, Infinity)[0]!.data, new Uint8Array(300).fill((n + 1) & 0xff));
});

/**
 * Run in a child with the server's young generation (cli/small-heap.ts keeps it near 1 MiB at
 * start): a test runner's 16 MiB semi-spaces would hold the whole log's payload buffers at
 * once and measure V8's young generation, not what glibc keeps.
 */
const compactionRssScript = `
  const { MemoryStorage } = await import(${JSON.stringify(new URL('./storage.js', import.meta.url).href)});
  const rss = () => process.memoryUsage.rss() / 1048576;
  const s = new MemoryStorage();
  gc();
  const before = rss();
  const rounds = [];
  let index = 1;
  for (let round = 0; round < 3; round++) {
    // As the server: each payload its own buffer, appended once persisted, a batch at a time.
    for (let b = 0; b < 1000; b++) {
      const batch = [];
      for (let j = 0; j < 100; j++, index++) batch.push({ term: 1, index, type: 0, data: new Uint8Array(300).fill(index & 0xff) });
      s.append(batch);
    }
    const peak = rss();
    s.compact(index - 5001);
    await new Promise((r) => setImmediate(r));
    gc();
    await new Promise((r) => setTimeout(r, 100)); // V8 frees backing stores on a helper thread
    gc();
    rounds.push({ peak, after: rss() });
  }
  process.stdout.write(JSON.stringify({ before, rounds, first: s.firstIndex() }));
`;

/** glibc's setting as bin/concord.js makes it for the server (see there why). */
const launcherTunables = `glibc.malloc.mmap_threshold=${chunkBytes}`;

test('a log of 100k entries compacted to 5,000 gives its memory back, round after round, with the launcher\'s glibc setting (RSS, not timed)', () => {
  const out = inChildNode(['--expose-gc', '--max-semi-space-size=1'], compactionRssScript, { ...process.env, GLIBC_TUNABLES: launcherTunables });
  const { before, rounds, first } = JSON.parse(out) as { before: number; rounds: { peak: number; after: number }[]; first: number };
  assert.equal(first, 300_000 - 5_000 + 1);
  // 100k payloads of 300 bytes are ~29 MiB; kept: 5,000 (1.4 MiB). As one malloc'd ArrayBuffer
  // each, glibc kept 48 MiB of them after the compaction. With the chunks in glibc's main heap
  // (its default threshold, which rises past 1 MiB once a chunk is freed), the first round gave
  // 24 MiB back and the next ones none: 83.7 -> 59.5, 87.6 -> 87.0, 90.6 -> 90.6 MiB.
  const text = rounds.map((r) => `${r.peak.toFixed(1)} -> ${r.after.toFixed(1)}`).join(', ');
  for (const r of rounds) assert.ok(r.after - before < 16, `RSS from ${before.toFixed(1)} MiB, per round peak -> after compaction: ${text}`);
});

test('MemoryStorage: a conflicting append, a compaction and a snapshot keep every entry as appended', () => {
  const s = new MemoryStorage();
  const empty = new Uint8Array(0);
  s.append([
    { term: 1, index: 1, type: 0, data: empty },
    { term: 1, index: 2, type: 0, data: new Uint8Array([2, 2]) },
    { term: 1, index: 3, type: 1, data: empty },
    { term: 1, index: 4, type: 0 },
  ]);
  // A new leader's entries from index 3 on replace the old suffix, its empty payload too.
  s.append([{ term: 2, index: 3, type: 0 }, { term: 2, index: 4, type: 0, data: new Uint8Array([4]) }, { term: 2, index: 5, type: 0, data: empty }]);
  const want: Entry[] = [
    { term: 1, index: 1, type: 0, data: empty },
    { term: 1, index: 2, type: 0, data: new Uint8Array([2, 2]) },
    { term: 2, index: 3, type: 0 },
    { term: 2, index: 4, type: 0, data: new Uint8Array([4]) },
    { term: 2, index: 5, type: 0, data: empty },
  ];
  assert.deepStrictEqual(s.entries(1, 6, Infinity), want);
  assert.deepStrictEqual([s.firstIndex(), s.lastIndex(), s.term(2), s.term(3)], [1, 5, 1, 2]);
  // maxSize: at least one entry, then as many as fit (limitSize's rule).
  assert.equal(s.entries(1, 6, 0).length, 1);
  s.compact(2);
  assert.throws(() => s.entries(2, 3, Infinity), (e: unknown) => e instanceof RaftError && e.code === 'Compacted');
  assert.deepStrictEqual(s.entries(3, 6, Infinity), want.slice(2));
  assert.deepStrictEqual([s.firstIndex(), s.lastIndex(), s.term(2)], [3, 5, 1]);
  s.applySnapshot({ data: new Uint8Array(0), metadata: { index: 7, term: 3, confState: { voters: [1n], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false } } });
  assert.deepStrictEqual([s.firstIndex(), s.lastIndex(), s.term(7)], [8, 7, 3]);
  s.append([{ term: 3, index: 8, type: 0, data: new Uint8Array([8]) }]);
  assert.deepStrictEqual(s.entries(8, 9, Infinity), [{ term: 3, index: 8, type: 0, data: new Uint8Array([8]) }]);
});

test('MemoryStorage across many column blocks and chunks: appends of payloads of many sizes, a conflicting suffix over a block edge, two compactions with appends between them; every entry and term as a model has them', () => {
  const s = new MemoryStorage();
  const model = new Map<number, Entry>();
  const put = (from: number, to: number, term: number): void => {
    const ents: Entry[] = [];
    for (let i = from; i <= to; i++) ents.push({ term, index: i, type: i % 11 === 0 ? 1 : 0, data: i % 13 === 0 ? undefined : new Uint8Array(1 + ((i * 37) % 997)).fill(i & 0xff) });
    s.append(ents);
    for (const e of ents) model.set(e.index, e);
    for (const k of [...model.keys()]) if (k > to) model.delete(k);
  };
  for (let i = 1; i <= 12_000; i += 100) put(i, i + 99, 1);
  put(8_000, 8_300, 2); // replaces 8,000.. (the suffix past 8,300 goes): across the block edge at 8,192
  assert.equal(s.lastIndex(), 8_300);
  put(8_301, 10_000, 2);
  s.compact(5_000);
  assert.equal(s.firstIndex(), 5_001);
  const got = s.entries(5_001, 10_001, Infinity);
  assert.equal(got.length, 5_000);
  for (const e of got) {
    const want = model.get(e.index)!;
    assert.equal(e.term, want.term, `term of ${e.index}`);
    assert.equal(e.type, want.type, `type of ${e.index}`);
    assert.deepEqual(e.data === undefined ? undefined : Buffer.from(e.data), want.data === undefined ? undefined : Buffer.from(want.data), `data of ${e.index}`);
    assert.equal(s.term(e.index), want.term);
  }
  assert.equal(s.term(5_000), model.get(5_000)!.term, 'the compaction point keeps its term');
  // The kept handles were renumbered: appends after it and a second compaction find every payload.
  for (let i = 10_001; i <= 20_000; i += 100) put(i, i + 99, 3);
  put(15_000, 15_500, 4);
  s.compact(12_345);
  const again = s.entries(12_346, 15_501, Infinity);
  assert.equal(again.length, 15_500 - 12_345);
  for (const e of again) {
    const want = model.get(e.index)!;
    assert.equal(e.term, want.term, `term of ${e.index}`);
    assert.deepEqual(e.data === undefined ? undefined : Buffer.from(e.data), want.data === undefined ? undefined : Buffer.from(want.data), `data of ${e.index}`);
  }
});
