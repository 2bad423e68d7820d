// Background maintenance, against each selected target (real etcd pins the behaviour):
// - --snapshot-count: raft snapshots are taken as entries are applied, old snap files are
//   purged (at most 5 kept, etcd's --max-snapshots default), and a restart from the newest
//   snapshot loses nothing.
// - --auto-compaction-mode periodic: history older than the retention is compacted without
//   any client asking; reads at an old revision then fail with etcd's "compacted" error.
//   (The revision mode compacts every 5 minutes in etcd, too slow for a test; its schedule is
//   pinned by src/server/compactor.test.ts.)

import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, selectedTargets, b, sleep, type Server } from './harness.js';

const servers: Server[] = [];
after(async () => { for (const s of servers) await s.destroy(); });

const COMPACTED = { code: 11, message: 'etcdserver: mvcc: required revision has been compacted' };

describe('maintenance: raft snapshots and automatic compaction', () => {
  for (const target of selectedTargets()) {
    test(`${target}: --snapshot-count takes snapshots, keeps at most 5 snap files, and a restart keeps every key`, async () => {
      const s = await startServer({ target, extraArgs: ['--snapshot-count', '40'] });
      servers.push(s);
      let c = s.client();
      const n = 600;
      for (let i = 0; i < n; i++) {
        const r = await c.op('put', { key: b(`s/${i}`), value: b(`v${i}`) });
        assert.ok(r.ok, `put ${i} failed`);
      }
      const snapDir = join(s.dataDir, 'member', 'snap');
      const snaps = readdirSync(snapDir).filter((f) => f.endsWith('.snap'));
      assert.ok(snaps.length >= 1, 'no snapshot was taken');
      // etcd purges snap files on a 30 s timer (too slow to wait for here); Concord purges
      // right after each snapshot, so its bound holds at once.
      if (target === 'concord') assert.ok(snaps.length <= 5, `too many snap files kept: ${snaps.length}`);
      c.close();
      await s.stop();
      await s.restart();
      c = s.client();
      const r = await c.op('range', { key: b('s/'), rangeEnd: b('s0'), countOnly: true });
      assert.ok(r.ok);
      assert.equal(Number(r.res.count), n);
      c.close();
    });

    test(`${target}: --auto-compaction-mode periodic compacts history older than the retention`, async () => {
      const s = await startServer({ target, extraArgs: ['--auto-compaction-mode', 'periodic', '--auto-compaction-retention', '1s'] });
      servers.push(s);
      const c = s.client();
      const first = await c.op('put', { key: b('p'), value: b('0') });
      assert.ok(first.ok);
      const firstRev = Number(first.res.header!.revision);
      // Keep writing for a few retention periods so the compactor has revisions to pick.
      let compacted = false;
      for (let i = 1; i < 200 && !compacted; i++) {
        await c.op('put', { key: b('p'), value: b(String(i)) });
        await sleep(50);
        const old = await c.op('range', { key: b('p'), revision: firstRev });
        if (!old.ok) {
          assert.deepStrictEqual({ code: old.code, message: old.message }, COMPACTED);
          compacted = true;
        }
      }
      assert.ok(compacted, 'history was never compacted automatically');
      const now = await c.op('range', { key: b('p') });
      assert.ok(now.ok);
      assert.equal(now.res.kvs.length, 1);
      c.close();
    });
  }
});
