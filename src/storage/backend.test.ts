import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Backend, backendPath } from './backend.js';

function tempPath(): { dir: string; file: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'concord-backend-'));
  return { dir, file: backendPath(dir) };
}

const k = (i: number) => Buffer.from(`key-${String(i).padStart(6, '0')}`);
/** Puts keys k(from) .. k(to - 1) with the value 'v' into the `key` bucket. */
function putKeys(be: Backend, from: number, to: number): void {
  for (let i = from; i < to; i++) be.put('key', k(i), Buffer.from('v'));
}
/** Lets a flush the backend scheduled with setImmediate start. */
const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

test('the environment lives at member/snap/concord.lmdb, beside etcd\'s member/snap/db', async () => {
  const { dir, file } = tempPath();
  assert.equal(file, path.join(dir, 'member', 'snap', 'concord.lmdb'));
  const be = Backend.open({ path: file });
  await be.close();
  assert.ok(fs.statSync(file).isFile());
  assert.ok(!fs.existsSync(path.join(dir, 'member', 'snap', 'db')));
  fs.rmSync(dir, { recursive: true, force: true });
});

test('buffered writes are readable at once and committed by forceCommit', async () => {
  const { dir, file } = tempPath();
  const be = Backend.open({ path: file, batchIntervalMs: 60_000 });
  be.put('key', k(1), Buffer.from('one'));
  be.put('meta', k(1), Buffer.from('meta-one'));
  assert.equal(be.get('key', k(1))?.toString(), 'one');
  assert.equal(be.get('meta', k(1))?.toString(), 'meta-one', 'databases are separate');
  assert.equal(be.get('lease', k(1)), undefined);
  assert.equal(be.pendingWrites, 2);
  await be.forceCommit();
  assert.equal(be.pendingWrites, 0);
  assert.equal(be.get('key', k(1))?.toString(), 'one');
  be.del('key', k(1));
  assert.equal(be.get('key', k(1)), undefined, 'a buffered delete hides the committed value');
  await be.close();
  const again = Backend.open({ path: file });
  assert.equal(again.get('key', k(1)), undefined);
  assert.equal(again.get('meta', k(1))?.toString(), 'meta-one');
  await again.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('loseUncommitted (a simulated power cut) drops unforced writes and the commit hooks, keeps forced ones', async () => {
  const { dir, file } = tempPath();
  const be = Backend.open({ path: file, batchIntervalMs: 60_000 });
  let hookRuns = 0;
  be.onBeforeCommit(() => { hookRuns++; });
  be.put('key', k(1), Buffer.from('forced'));
  const forced = be.forceCommit(); // handed to LMDB now: durable from this call
  be.put('key', k(2), Buffer.from('unforced'));
  be.del('key', k(1));
  be.loseUncommitted();
  assert.equal(be.pendingWrites, 0);
  assert.equal(be.get('key', k(1))?.toString(), 'forced', 'the delete was never forced');
  assert.equal(be.get('key', k(2)), undefined);
  await forced;
  be.put('key', k(3), Buffer.from('after'));
  await be.forceCommit();
  assert.equal(hookRuns, 1, 'hooks registered before the cut do not run again');
  await be.close();
  const again = Backend.open({ path: file });
  assert.deepEqual([...again.scan('key')].map(([key, v]) => `${key.toString()}=${v.toString()}`), ['key-000001=forced', 'key-000003=after']);
  await again.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('Backend.scanTransient reads committed values in place, and with writes buffered gives what scan gives', async () => {
  const { dir, file } = tempPath();
  const be = Backend.open({ path: file, batchIntervalMs: 60_000 });
  try {
    for (let i = 0; i < 200; i++) be.put('key', k(i), Buffer.alloc(100 + (i % 7), i));
    await be.forceCommit();
    const buffers = new Set<ArrayBufferLike>();
    let i = 10;
    for (const [key, value] of be.scanTransient('key', { start: k(10), end: k(150), limit: 100 })) {
      assert.ok(key.equals(k(i)));
      assert.ok(Buffer.from(value).equals(Buffer.alloc(100 + (i % 7), i)), `value ${i} as written`);
      buffers.add(value.buffer);
      i++;
    }
    assert.equal(i, 110);
    assert.ok(buffers.size <= 2, `values came in ${buffers.size} buffers`);
    be.put('key', k(3), Buffer.from('p3'));
    be.del('key', k(4));
    const seen = (it: Iterable<readonly [Buffer, Uint8Array]>) => [...it].map(([key, v]) => `${key.toString()}=${Buffer.from(v).toString('hex')}`);
    assert.deepEqual(seen(be.scanTransient('key', { end: k(6) })), seen(be.scan('key', { end: k(6) })));
    assert.match(seen(be.scanTransient('key', { end: k(6) })).join(), /key-000003=7033,key-000005=/);
  } finally {
    await be.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('scan merges uncommitted puts and deletes with committed data in key order', async () => {
  const { dir, file } = tempPath();
  const be = Backend.open({ path: file, batchIntervalMs: 60_000 });
  for (const i of [1, 3, 5, 7]) be.put('key', k(i), Buffer.from(`c${i}`));
  await be.forceCommit();
  be.put('key', k(2), Buffer.from('p2'));
  be.put('key', k(5), Buffer.from('p5'));
  be.del('key', k(3));
  be.put('key', k(9), Buffer.from('p9'));
  const all = [...be.scan('key')].map(([key, v]) => `${key.toString().slice(-1)}=${v}`);
  assert.deepEqual(all, ['1=c1', '2=p2', '5=p5', '7=c7', '9=p9']);
  const some = [...be.scan('key', { start: k(2), end: k(7), limit: 2 })].map(([key]) => key.toString().slice(-1));
  assert.deepEqual(some, ['2', '5']);
  await be.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('reaching batchLimit commits without waiting for the interval', async () => {
  const { dir, file } = tempPath();
  const be = Backend.open({ path: file, batchIntervalMs: 60_000, batchLimit: 10 });
  let hooks = 0;
  be.onBeforeCommit(() => hooks++);
  for (let i = 0; i < 10; i++) be.put('key', k(i), Buffer.from('v'));
  assert.equal(be.pendingWrites, 10, 'never flushed synchronously, mid-apply');
  await new Promise((r) => setImmediate(r));
  assert.equal(be.pendingWrites, 0);
  assert.equal(hooks, 1);
  await be.forceCommit();
  await be.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('by default a flush is started at 250 buffered writes that came within 50 ms, bounding its main-thread pause and how long a fast writer\'s objects live', async () => {
  const { dir, file } = tempPath();
  const be = Backend.open({ path: file, batchIntervalMs: 60_000, clockMs: () => 0 });
  putKeys(be, 0, 249);
  await nextTurn();
  assert.equal(be.pendingWrites, 249, 'below the limit the interval decides');
  putKeys(be, 249, 250);
  await nextTurn();
  assert.equal(be.pendingWrites, 0, 'the 250th write starts a flush on the next turn');
  await be.forceCommit();
  assert.equal(be.get('key', k(249))?.toString(), 'v');
  await be.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a batch that took longer than 50 ms to reach 250 writes grows to 1,000 before a flush (fewer LMDB syncs beside the WAL\'s)', async () => {
  const { dir, file } = tempPath();
  let now = 0;
  const be = Backend.open({ path: file, batchIntervalMs: 60_000, clockMs: () => now });
  putKeys(be, 0, 1);
  now = 51;
  putKeys(be, 1, 999);
  await nextTurn();
  assert.equal(be.pendingWrites, 999, 'a slow batch passes 250 writes without a flush');
  putKeys(be, 999, 1000);
  await nextTurn();
  assert.equal(be.pendingWrites, 0, 'the 1,000th write starts a flush whatever the pace');
  // The next batch is judged by its own start: 250 writes within 50 ms of its first flush again.
  putKeys(be, 1000, 1250);
  await nextTurn();
  assert.equal(be.pendingWrites, 0);
  await be.forceCommit();
  assert.equal(be.get('key', k(999))?.toString(), 'v');
  await be.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a batch limit given (etcd\'s --backend-batch-limit) is the only count: fast writes do not commit at 250', async () => {
  const { dir, file } = tempPath();
  const be = Backend.open({ path: file, batchIntervalMs: 60_000, batchLimit: 1000, clockMs: () => 0 });
  putKeys(be, 0, 999);
  await nextTurn();
  assert.equal(be.pendingWrites, 999);
  putKeys(be, 999, 1000);
  await nextTurn();
  assert.equal(be.pendingWrites, 0);
  await be.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('by default a lone write waits up to 500 ms for its commit (etcd: 100 ms), then commits without more writes', async () => {
  const { dir, file } = tempPath();
  const be = Backend.open({ path: file });
  be.put('key', k(1), Buffer.from('v'));
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(be.pendingWrites, 1, 'a 500 ms timer cannot have fired yet');
  const pending = (): number => be.pendingWrites;
  const deadline = Date.now() + 10_000;
  while (pending() !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.equal(pending(), 0);
  await be.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('the onBeforeCommit hook writes land in the same commit as the data', async () => {
  const { dir, file } = tempPath();
  const be = Backend.open({ path: file, batchIntervalMs: 60_000 });
  let n = 0;
  be.onBeforeCommit(() => be.put('meta', Buffer.from('ci'), Buffer.from(String(n))));
  n = 1;
  be.put('key', k(1), Buffer.from('a'));
  await be.forceCommit();
  assert.equal(be.get('meta', Buffer.from('ci'))?.toString(), '1');
  await be.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('defrag shrinks the file after a big delete, keeps every write, including writes made during it', async () => {
  const { dir, file } = tempPath();
  const be = Backend.open({ path: file });
  const v = Buffer.alloc(256, 1);
  for (let i = 0; i < 20_000; i++) be.put('key', k(i), v);
  await be.forceCommit();
  for (let i = 0; i < 19_000; i++) be.del('key', k(i));
  be.put('meta', Buffer.from('before'), Buffer.from('x')); // applied right before defrag, not yet committed
  await be.forceCommit();
  const sizeBefore = be.size();
  const inUseBefore = be.sizeInUse();
  assert.ok(inUseBefore < sizeBefore / 2, `in use ${inUseBefore} of ${sizeBefore}`);
  be.put('meta', Buffer.from('just-before'), Buffer.from('y'));
  const d = be.defrag();
  be.put('meta', Buffer.from('during'), Buffer.from('z')); // a write arriving while defrag copies
  assert.equal(be.get('meta', Buffer.from('during'))?.toString(), 'z');
  await d;
  const sizeAfter = be.size();
  assert.ok(sizeAfter < sizeBefore / 4, `size ${sizeBefore} -> ${sizeAfter}`);
  assert.equal([...be.scan('key')].length, 1000);
  for (const key of ['before', 'just-before', 'during']) assert.ok(be.get('meta', Buffer.from(key)), key);
  be.put('key', k(1), v);
  await be.close();
  const again = Backend.open({ path: file });
  assert.equal([...again.scan('key')].length, 1001);
  for (const key of ['before', 'just-before', 'during']) assert.ok(again.get('meta', Buffer.from(key)), `${key} after reopen`);
  await again.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('copy and snapshot are point-in-time copies that include uncommitted writes and open as environments', async () => {
  const { dir, file } = tempPath();
  const be = Backend.open({ path: file, batchIntervalMs: 60_000 });
  be.put('key', k(1), Buffer.from('one'));
  const dest = path.join(dir, 'copy.lmdb');
  await be.copy(dest);
  be.put('key', k(2), Buffer.from('two'));
  const snap = await be.snapshot();
  be.put('key', k(3), Buffer.from('three')); // after the snapshot: not in it
  let bytes = 0;
  const parts: Buffer[] = [];
  for await (const c of snap.chunks()) {
    bytes += c.length;
    parts.push(Buffer.from(c));
  }
  assert.equal(bytes, snap.size);
  const snapFile = path.join(dir, 'snap.lmdb');
  fs.writeFileSync(snapFile, Buffer.concat(parts));
  await snap.close();
  assert.ok(!fs.existsSync(snap.path), 'the temporary copy is removed on close');
  await be.close();

  const c1 = Backend.open({ path: dest });
  assert.deepEqual([...c1.scan('key')].map(([key]) => key.toString()), [k(1).toString()]);
  await c1.close();
  const c2 = Backend.open({ path: snapFile });
  assert.deepEqual([...c2.scan('key')].map(([key]) => key.toString()), [k(1).toString(), k(2).toString()]);
  await c2.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('forceCommit resolves only once LMDB reports the commit synced to disk, not merely committed', async () => {
  const { dir, file } = tempPath();
  const be = Backend.open({ path: file, batchIntervalMs: 60_000 });
  // lmdb-js's env.flushed settles when the last commit is fsynced (overlappingSync commits
  // become visible first). Hold it back to see that forceCommit waits for it.
  const env = (be as unknown as { env: { flushed: PromiseLike<boolean>; committed: PromiseLike<boolean> } }).env;
  const realFlushed = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(env), 'flushed') ?? Object.getOwnPropertyDescriptor(env, 'flushed');
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let asked = false;
  Object.defineProperty(env, 'flushed', {
    configurable: true,
    get: () => {
      asked = true;
      return held.then(() => (realFlushed?.get ? realFlushed.get.call(env) : realFlushed?.value) as PromiseLike<boolean>);
    },
  });
  try {
    be.put('key', k(1), Buffer.from('one'));
    let done = false;
    const forced = be.forceCommit().then(() => (done = true));
    await new Promise<void>((r) => setImmediate(r));
    await env.committed; // the transaction is committed and visible...
    await new Promise<void>((r) => setImmediate(r));
    assert.ok(asked, 'forceCommit never asked whether the commit is on disk');
    assert.equal(done, false, '...but forceCommit must still wait for the sync');
    release();
    await forced;
    assert.equal(done, true);
  } finally {
    release();
    delete (env as { flushed?: unknown }).flushed;
    await be.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a read view scans values without a copy each (scanTransient): views of one read buffer, right while current', async () => {
  const { dir, file } = tempPath();
  const be = Backend.open({ path: file, batchIntervalMs: 60_000 });
  for (let i = 0; i < 200; i++) be.put('key', k(i), Buffer.alloc(100 + (i % 7), i));
  const view = await be.readView();
  be.put('key', k(5), Buffer.from('later')); // after the view: not seen
  await be.forceCommit();
  try {
    const buffers = new Set<ArrayBufferLike>();
    let i = 0;
    for (const [key, value] of view.scanTransient('key')) {
      assert.ok(key.equals(k(i)));
      assert.ok(Buffer.from(value).equals(Buffer.alloc(100 + (i % 7), i)), `value ${i} as written`);
      buffers.add(value.buffer);
      i++;
    }
    assert.equal(i, 200);
    // A copy per value would give 200 buffers (or slices of node's 8 KiB pools: dozens).
    assert.ok(buffers.size <= 2, `values came in ${buffers.size} buffers`);
  } finally {
    view.close();
    await be.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a read view is one point in time: later writes and deletes do not show, and a defrag waits for it', async () => {
  const { dir, file } = tempPath();
  const be = Backend.open({ path: file, batchIntervalMs: 60_000 });
  for (let i = 0; i < 100; i++) be.put('key', k(i), Buffer.from(`v${i}`));
  const view = await be.readView(); // commits the buffered puts first
  for (let i = 0; i < 50; i++) be.del('key', k(i));
  be.put('key', k(500), Buffer.from('later'));
  await be.forceCommit();
  let defragged = false;
  const defrag = be.defrag().then(() => { defragged = true; });
  const seen = [...view.scan('key')].map(([key, v]) => `${key.toString()}=${v.toString()}`);
  assert.equal(seen.length, 100);
  assert.equal(seen[0], 'key-000000=v0');
  assert.ok(!seen.some((s) => s.includes('later')));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(defragged, false, 'the defrag waits for the open view');
  view.close();
  await defrag;
  assert.equal([...be.scan('key')].length, 51);
  assert.throws(() => [...view.scan('key')], /after close/);
  await be.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('bulkLoad (imports) writes straight into LMDB; with deferSync only forceCommit and close sync, and forceCommit waits for it', async () => {
  const { dir, file } = tempPath();
  const be = Backend.open({ path: file, deferSync: true });
  // lmdb-js's env.sync(cb) is mdb_env_sync: count the calls and hold the callback back.
  const env = be as unknown as { env: { sync(cb: (err?: Error) => void): void } };
  const realSync = env.env.sync.bind(env.env);
  let syncs = 0;
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  env.env.sync = (cb) => {
    syncs++;
    void held.then(() => realSync(cb));
  };
  try {
    const view = Buffer.from('xxvalue-1xx');
    assert.equal(be.bulkLoad('key', [[k(1), view.subarray(2, 9)], [k(2), Buffer.from('value-2')]]), 2);
    view.fill(0); // LMDB copied the bytes during the put: the caller may reuse its buffers
    assert.equal(be.bulkLoad('lease', (function* () { for (let i = 0; i < 1000; i++) yield [k(i), Buffer.from(`lease-${i}`)] as const; })()), 1000);
    assert.equal(be.get('key', k(1))?.toString(), 'value-1', 'readable at once, from LMDB');
    assert.equal(be.get('lease', k(999))?.toString(), 'lease-999');
    assert.equal(syncs, 0, 'a bulk transaction must not sync on its own with deferSync');
    let done = false;
    const forced = be.forceCommit().then(() => (done = true));
    for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
    assert.equal(syncs, 1, 'forceCommit syncs the file once');
    assert.equal(done, false, 'forceCommit must wait for the sync');
    release();
    await forced;
    be.put('meta', k(1), Buffer.from('buffered'));
    assert.throws(() => be.bulkLoad('key', [[k(3), Buffer.from('x')]]), /bulkLoad while buffered writes are pending/);
  } finally {
    release();
    await be.close();
  }
  assert.equal(syncs, 2, 'close syncs too');
  const again = Backend.open({ path: file });
  assert.equal(again.get('key', k(2))?.toString(), 'value-2');
  assert.equal(again.get('lease', k(500))?.toString(), 'lease-500');
  assert.equal(again.get('meta', k(1))?.toString(), 'buffered');
  await again.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('readView waits for the commit to be visible, not for its fsync (the server holds applies meanwhile)', async () => {
  const { dir, file } = tempPath();
  const be = Backend.open({ path: file, batchIntervalMs: 60_000 });
  const env = (be as unknown as { env: { flushed: PromiseLike<boolean> } }).env;
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  Object.defineProperty(env, 'flushed', { configurable: true, get: () => held.then(() => true) }); // the fsync never ends
  try {
    be.put('key', k(1), Buffer.from('one'));
    const view = await Promise.race([be.readView(), held.then(() => undefined), new Promise<undefined>((r) => setTimeout(r, 60_000, undefined))]);
    assert.ok(view !== undefined, 'readView waited for the fsync');
    assert.deepEqual([...view.scan('key')].map(([key, v]) => [key.toString(), v.toString()]), [[k(1).toString(), 'one']]);
    view.close();
  } finally {
    release();
    delete (env as { flushed?: unknown }).flushed;
    await be.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** KiB of `file` this process has resident through its memory maps (/proc/self/smaps). */
function mappedResidentKiB(file: string): number {
  let kib = 0;
  let inFile = false;
  for (const line of fs.readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) inFile = line.endsWith(file);
    else if (inFile && line.startsWith('Rss:')) kib += Number(line.split(/\s+/)[1]);
  }
  return kib;
}

test('releaseMappedPages gives back the file pages a full scan mapped, and every write stays readable', async () => {
  const { dir, file } = tempPath();
  const be = Backend.open({ path: file });
  const value = Buffer.alloc(1024, 7);
  for (let i = 0; i < 8000; i++) be.put('key', k(i), value);
  await be.forceCommit();
  let n = 0;
  for (const [, v] of be.scan('key')) n += v.length === 1024 ? 1 : 0; // what the key-index rebuild does
  assert.equal(n, 8000);
  const before = mappedResidentKiB(file);
  assert.ok(before > 4096, `the scan maps the file's pages (${before} KiB resident)`);
  be.put('key', k(8000), value); // buffered: committed first
  await be.releaseMappedPages();
  const after = mappedResidentKiB(file);
  assert.ok(after < before / 4, `resident ${before} KiB -> ${after} KiB`);
  assert.equal(be.get('key', k(8000))?.length, 1024);
  assert.equal([...be.scan('key')].length, 8001);
  await be.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('writebackSoFar (deferSync) syncs off the main thread and close() waits for it; without deferSync it is refused', async () => {
  const { dir, file } = tempPath();
  const be = Backend.open({ path: file, deferSync: true });
  const env = be as unknown as { env: { sync(cb: (err?: Error) => void): void } };
  const realSync = env.env.sync.bind(env.env);
  const held: (() => void)[] = [];
  env.env.sync = (cb) => void held.push(() => realSync(cb));
  be.bulkLoad('key', [[k(1), Buffer.from('v')]]);
  let written = false;
  const wb = be.writebackSoFar().then(() => (written = true));
  let closed = false;
  const closing = be.close().then(() => (closed = true));
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
  assert.equal(held.length, 2, "the writeback's sync and close's own");
  held.splice(1, 1)[0]!(); // close's sync done; the writeback still running
  await Promise.race([closing, new Promise<void>((r) => setTimeout(r, 500))]); // bounds the wait only: passing never depends on it
  assert.equal(closed, false, 'close must wait for a running writeback (its worker uses the environment)');
  held.shift()!();
  await Promise.all([wb, closing]);
  assert.equal(written && closed, true);
  const plain = Backend.open({ path: path.join(dir, 'plain.lmdb') });
  assert.throws(() => plain.writebackSoFar(), /needs deferSync/);
  await plain.close();
  fs.rmSync(dir, { recursive: true, force: true });
});
