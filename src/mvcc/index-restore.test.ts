// A key index built from the key bucket's records as an import copies them (KeyIndexRestore
// fed record by record) opens the same store as the scan at open does, and open then reads
// no record of the key bucket again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { PutRequest, RangeRequest } from '../proto/index.js';
import { Backend } from '../storage/index.js';
import { KeyIndexRestore } from './index-restore.js';
import { MvccStore } from './store.js';
import { b, delReq, openStore, putReq, rangeReq, tempDir } from './testutil.js';

/** A store with history: overwrites, deletes, leases dropped and kept, a binary key, big values, a compaction. */
async function storeWithHistory(dir: string): Promise<void> {
  const leases = new Set([5n, 7n, -3n]);
  const s = openStore(dir, { leaseExists: (id) => leases.has(id) });
  const big = 'v'.repeat(70_000);
  for (let i = 0; i < 30; i++) s.put(putReq(`k${i % 7}`, `v${i}`, i % 5 === 0 ? { lease: 5n } : {}));
  s.put(putReq('a', big, { lease: 5n }));
  s.put(putReq('b', 'x', { lease: 7n }));
  s.put(putReq('b', 'y'));
  s.put(putReq('c', 'x', { lease: 7n }));
  s.deleteRange(delReq('c'));
  s.deleteRange(delReq('k1'));
  await s.compact(12);
  s.put(PutRequest.fromPartial({ key: Buffer.from([0xff, 0x00, 0x80]), value: b(big), lease: -3n }));
  s.put(putReq('k1', 'again'));
  s.put(putReq('d', 'x', { lease: 5n }));
  await s.close();
}

/** What a reader sees of the store: revisions, every key now and at past revisions, the hash, the leases told. */
function observe(s: MvccStore, told: Map<string, bigint>) {
  const everything = (revision: number) => s.range(RangeRequest.fromPartial({ key: Buffer.from([0]), rangeEnd: Buffer.from([0]), revision }));
  return {
    revision: s.currentRevision, compacted: s.compactRevision, keys: s.keyCount, live: s.liveKeys(),
    now: everything(0), at20: everything(20), at13: everything(13), hash: s.hashKV(0), told: [...told].sort(),
  };
}

function pathOf(dir: string): string {
  return path.join(dir, 'member', 'snap', 'concord.lmdb');
}

test('a key index fed the records as an import copies them opens the store the scan at open does, without the scan', async () => {
  const dir = tempDir();
  try {
    await storeWithHistory(dir);
    const toldByScan = new Map<string, bigint>();
    const scanned = openStore(dir, { onKeyLease: (k, l) => toldByScan.set(k.toString('hex'), l) });
    const want = observe(scanned, toldByScan);
    await scanned.close();

    // The records in key order, as the bbolt import hands them over (views of a reused buffer).
    const backend = Backend.open({ path: pathOf(dir) });
    const restored = new KeyIndexRestore();
    const reused = Buffer.alloc(100_000);
    for (const [k, v] of backend.scan('key')) {
      v.copy(reused);
      restored.add(k, reused.subarray(0, v.length));
      reused.fill(0xee, 0, v.length);
    }
    const scans: string[] = [];
    const scanTransient = backend.scanTransient.bind(backend);
    backend.scanTransient = (db, opts) => { scans.push(db); return scanTransient(db, opts); };
    const toldByImport = new Map<string, bigint>();
    const given = MvccStore.open({ backend, restoredIndex: restored, onKeyLease: (k, l) => toldByImport.set(k.toString('hex'), l) });
    try {
      assert.deepEqual(scans, [], 'open read the key bucket again');
      assert.deepEqual(observe(given, toldByImport), want);
      assert.ok(want.told.length === 4 && want.keys > 5 && want.compacted === 12, `${want.told.length} leased keys, ${want.keys} keys, compacted at ${want.compacted}`);
      assert.equal(given.put(putReq('after', '1')).header!.revision, want.revision + 1);
    } finally {
      await given.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a key index built from other records than the key bucket holds is refused at open', async () => {
  const dir = tempDir();
  try {
    await storeWithHistory(dir);
    const backend = Backend.open({ path: pathOf(dir) });
    try {
      const short = new KeyIndexRestore();
      let n = 0;
      for (const [k, v] of backend.scan('key')) if (n++ % 2 === 0) short.add(k, v);
      assert.throws(() => MvccStore.open({ backend, restoredIndex: short }), /key index given to open was built from \d+ records, the key bucket holds \d+/);
    } finally {
      await backend.close();
    }
    const s = openStore(dir);
    assert.equal(s.range(rangeReq('k1')).kvs[0]!.value.toString(), 'again');
    await s.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
