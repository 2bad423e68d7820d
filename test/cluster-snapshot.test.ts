// Snapshot catch-up: a follower stopped while the others write past --snapshot-count and
// past the 5,000 entries a leader keeps behind its snapshot rejoins; the leader sends it a
// MsgSnap followed by its backend as an etcd bbolt file, which the follower saves as
// member/snap/<index %016x>.snap.db before raft installs the snapshot.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { sleep, b, prefixEnd, etcdctl, runConcord } from './harness.js';
import { startCluster } from './cluster-harness.js';

/** Past the leader's kept tail (etcd's SnapshotCatchUpEntries, 5,000) and several snapshots. */
const writes = 5300;

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

test('snapshot catch-up: a lagging follower receives the leader\'s backend as an etcd bbolt file in member/snap/%016x.snap.db', { skip: !runConcord(), timeout: 600_000 }, async (t) => {
  const c = await startCluster({ targets: ['concord', 'concord', 'concord'], flags: ['--snapshot-count', '100'] });
  try {
    const leader = await c.leader();
    const lagging = c.members.find((m) => m !== leader)!;
    await lagging.stop();

    const client = leader.client();
    try {
      for (let i = 0; i < writes; i += 50) {
        await Promise.all(Array.from({ length: Math.min(50, writes - i) }, (_, j) =>
          client.put({ key: b(`snap/${String(i + j).padStart(6, '0')}`), value: b('x'.repeat(100)) })));
      }
    } finally {
      client.close();
    }

    // The follower may stop after saving the file if it cannot install it yet (see below).
    lagging.launch();
    const snapDir = join(lagging.dataDir, 'member', 'snap');
    const dbFile = await until('the snapshot db file', () => readdirSync(snapDir).find((f) => /^[0-9a-f]{16}\.snap\.db$/.test(f)));
    const index = parseInt(dbFile.slice(0, 16), 16);
    assert.ok(index > 5000, `snapshot index ${index}: past the kept tail`);

    await t.test('the file is a bbolt backend etcd reads, holding every write', async () => {
      const r = await etcdctl(lagging.endpoint, ['snapshot', 'status', join(snapDir, dbFile), '-w', 'json']);
      assert.equal(r.code, 0, r.stderr);
      const status = JSON.parse(r.stdout) as { revision: number; totalKey: number };
      assert.ok(status.revision >= writes + 1, JSON.stringify(status));
      assert.ok(status.totalKey >= writes, JSON.stringify(status));
      assert.match(leader.log, /"msg":"sending merged snapshot"/);
      assert.match(lagging.log, /"msg":"saved database snapshot to disk"/);
    });

    // Installing the file (Applier.restore) is h-etcddata's part; until it is merged the
    // follower stops with "installing a snapshot is not supported yet".
    await t.test('the follower installs it and serves every write', { todo: 'Applier.restore of member/snap/%016x.snap.db lands with h-etcddata' }, async () => {
      const cl = lagging.client();
      try {
        const r = await until('the follower to serve the writes', async () => {
          if (!lagging.running) throw new Error(`the follower stopped: ${lagging.log.split('\n').filter((l) => l.includes('"level":"error"')).pop() ?? ''}`);
          const got = await cl.range({ key: b('snap/'), rangeEnd: prefixEnd('snap/'), countOnly: true, serializable: true }).catch(() => undefined);
          return got !== undefined && Number(got.count) === writes ? got : undefined;
        }, 60_000);
        assert.equal(Number(r.count), writes);
      } finally {
        cl.close();
      }
      const rev = Math.min(...(await c.hashes()).map((h) => h.revision));
      const hs = await c.hashes(rev);
      assert.equal(new Set(hs.map((h) => h.hash)).size, 1, JSON.stringify(hs));
    });
  } finally {
    await c.destroy();
  }
});
