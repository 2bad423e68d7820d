import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32c } from '@node-rs/crc32';
import { Snapshotter, snapName, readSnapFile } from './index.js';
import { decodeSnapFile } from '../proto/index.js';
import { encodeSnapshot, type Snapshot } from '../proto/index.js';
import { tempDir } from './testutil.js';

function snap(term: number, index: number, data = `state@${index}`): Snapshot {
  return {
    data: Buffer.from(data),
    metadata: {
      index,
      term,
      confState: { voters: [1n, 0xffffffffffffffffn], learners: [3n], votersOutgoing: [], learnersNext: [], autoLeave: false },
    },
  };
}

test('saves .snap files in the snappb format of etcd and loads the newest', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const ss = new Snapshotter(dir);
    await ss.save(snap(1, 5));
    await ss.save(snap(2, 12));
    await ss.save(snap(1, 0)); // empty snapshot: not saved
    assert.deepEqual((await readdir(dir)).sort(), [snapName(1, 5), snapName(2, 12)]);
    assert.equal(snapName(2, 12), '0000000000000002-000000000000000c.snap');

    // The file is snappb.Snapshot{crc: crc32c(data), data: raftpb.Snapshot}.
    const file = decodeSnapFile(await readFile(join(dir, snapName(2, 12))));
    const body = encodeSnapshot(snap(2, 12));
    assert.deepEqual(Buffer.from(file.data!), Buffer.from(body));
    assert.equal(file.crc, crc32c(body) >>> 0);

    const got = await ss.load();
    assert.ok(got);
    assert.equal(got.metadata.index, 12);
    assert.deepEqual(got.metadata.confState.voters, [1n, 0xffffffffffffffffn]);
    assert.equal(Buffer.from(got.data!).toString(), 'state@12');
  } finally {
    cleanup();
  }
});

test('a corrupt newest snapshot is renamed .broken and the next older one is used', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const warnings: string[] = [];
    const ss = new Snapshotter(dir, { logger: (_l, msg) => warnings.push(msg) });
    await ss.save(snap(1, 5));
    await ss.save(snap(1, 9));
    await ss.save(snap(2, 12));
    const p12 = join(dir, snapName(2, 12));
    const bytes = await readFile(p12);
    bytes[bytes.length - 2] ^= 0xff; // inside the data: crc mismatch
    await writeFile(p12, bytes);
    await writeFile(join(dir, snapName(1, 9)), Buffer.alloc(0)); // empty file

    await assert.rejects(readSnapFile(p12), /crc mismatch/);
    const got = await ss.load();
    assert.equal(got?.metadata.index, 5);
    assert.deepEqual((await readdir(dir)).sort(), [
      snapName(1, 5),
      snapName(1, 9) + '.broken',
      snapName(2, 12) + '.broken',
    ]);
    assert.ok(warnings.some((w) => w.includes('broken')));
    // Broken files are ignored from now on.
    assert.equal((await ss.load())?.metadata.index, 5);
  } finally {
    cleanup();
  }
});

test('loadNewestAvailable picks the newest snapshot the WAL also recorded; none gives undefined', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const ss = new Snapshotter(dir);
    assert.equal(await ss.load(), undefined);
    await ss.save(snap(1, 5));
    await ss.save(snap(2, 12));
    await ss.save(snap(2, 20)); // written, but the WAL never got its record (crash between)
    const got = await ss.loadNewestAvailable([{ index: 0, term: 0 }, { index: 5, term: 1 }, { index: 12, term: 2 }]);
    assert.equal(got?.metadata.index, 12);
    assert.equal(await ss.loadNewestAvailable([{ index: 12, term: 3 }]), undefined, 'term must match too');
  } finally {
    cleanup();
  }
});
