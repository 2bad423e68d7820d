// importBoltBuckets into a deferSync backend: the disk writes the import as it goes (background
// syncs every so many bytes), the import is durable only at its end, and a failed background
// sync fails the import.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { planBoltFile, BoltReader, bufferSource, fileSource, type BoltBucketSource, type ByteSource } from '../bbolt/index.js';
import { Backend } from '../storage/index.js';
import { createLogger } from '../log/index.js';
import { importBoltBuckets } from './import.js';

const log = createLogger({ outputs: ['/dev/null'] });
const entries = 300;
const valueBytes = 4000;

/** A bbolt file (in memory) with `n` keys of valueBytes each in the key bucket. */
function boltBytes(n = entries): Buffer {
  const key: BoltBucketSource = {
    name: Buffer.from('key'),
    *entries() {
      for (let i = 0; i < n; i++) {
        const k = Buffer.alloc(17);
        k.writeBigUInt64BE(BigInt(i + 1), 0);
        yield [k, Buffer.alloc(valueBytes, i % 251)];
      }
    },
  };
  const parts: Buffer[] = [];
  for (const p of planBoltFile([key]).pages()) parts.push(Buffer.from(p)); // pages may be reused: copy
  return Buffer.concat(parts);
}

/** A bbolt file (in memory) with `entries` keys of valueBytes each in the key bucket. */
function boltFile(): BoltReader {
  return BoltReader.open(bufferSource(boltBytes()));
}

/** A deferSync backend whose LMDB syncs are counted (and made to fail with `fail`). */
function countedBackend(fail?: Error): { backend: Backend; syncs: () => number; dir: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'import-test-'));
  const backend = Backend.open({ path: path.join(dir, 'db.lmdb'), deferSync: true });
  const env = (backend as unknown as { env: { sync(cb: (err?: Error) => void): void } }).env;
  const real = env.sync.bind(env);
  let n = 0;
  env.sync = (cb) => {
    n++;
    if (fail !== undefined && n === 1) setImmediate(() => cb(fail));
    else real(cb);
  };
  return { backend, syncs: () => n, dir };
}

test('an import into a deferSync backend syncs in the background as it goes, then once at the end', async () => {
  const { backend, syncs, dir } = countedBackend();
  try {
    const stats = await importBoltBuckets(boltFile(), backend, { log, path: 'test.db', bounds: { txnBytes: 100_000, writebackEveryBytes: 300_000 } });
    assert.equal(stats.entries, entries);
    // 1.2 MB in ~12 transactions: a background sync starts once 300 kB are in (one at a time,
    // so how many more depends on the disk), then forceCommit's own.
    assert.ok(syncs() >= 2, `expected a background sync during the import, saw ${syncs()} syncs in all`);
    const k = Buffer.alloc(17);
    k.writeBigUInt64BE(BigInt(entries), 0);
    assert.deepEqual(backend.get('key', k), Buffer.alloc(valueBytes, (entries - 1) % 251));
  } finally {
    await backend.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('an import with the default bounds leaves a small file to forceCommit alone (no background sync under 64 MiB)', async () => {
  const { backend, syncs, dir } = countedBackend();
  try {
    await importBoltBuckets(boltFile(), backend, { log, path: 'test.db' });
    assert.equal(syncs(), 1);
  } finally {
    await backend.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a background sync that fails fails the import', async () => {
  const { backend, dir } = countedBackend(new Error('EIO: i/o error, fdatasync'));
  try {
    await assert.rejects(importBoltBuckets(boltFile(), backend, { log, path: 'test.db', bounds: { txnBytes: 100_000, writebackEveryBytes: 300_000 } }), /EIO/);
    const last = Buffer.alloc(17);
    last.writeBigUInt64BE(BigInt(entries), 0);
    assert.equal(backend.get('key', last), undefined, 'the import stops at the failed background sync, not at the end');
  } finally {
    await backend.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('an import reads the file through a few reused buffers, not a new one per block (no heap growth with the file)', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'import-test-'));
  const file = path.join(dir, 'db');
  const n = 6000; // ~24 MiB of values: 24+ blocks of fileSource's 1 MiB
  fs.writeFileSync(file, boltBytes(n));
  const src = fileSource(file);
  const buffers = new Set<ArrayBufferLike>();
  const note = (b: Uint8Array): Uint8Array => { buffers.add(b.buffer); return b; };
  const counted: ByteSource = { size: src.size, read: (o, len) => note(src.read(o, len)), readTransient: (o, len) => note(src.readTransient(o, len)) };
  const backend = Backend.open({ path: path.join(dir, 'db.lmdb'), deferSync: true });
  try {
    const stats = await importBoltBuckets(BoltReader.open(counted), backend, { log, path: file });
    assert.equal(stats.entries, n);
    assert.ok(buffers.size <= 12, `the import of ${(src.size / 2 ** 20).toFixed(0)} MiB read through ${buffers.size} buffers`);
  } finally {
    await backend.close();
    src.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
