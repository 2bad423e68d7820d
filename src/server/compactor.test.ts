import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import { startAutoCompaction } from './compactor.js';
import { nopLogger } from '../log/index.js';
import type { ServerConfig } from './config.js';
import type { EtcdServer } from './etcd-server.js';
import type { MvccStore } from '../mvcc/index.js';

/** A member stand-in that records the compactions asked of it (the schedule is what is tested). */
function fixture(mode: 'periodic' | 'revision', retention: number) {
  const store = { currentRevision: 1 };
  const asked: number[] = [];
  const server = { leader: 1n, memberId: 1n, compact: async (r: { revision: number }) => { asked.push(r.revision); return {}; } };
  const config = { autoCompactionMode: mode, autoCompactionRetention: retention } as ServerConfig;
  const stop = startAutoCompaction({ config, log: nopLogger(), server: server as unknown as EtcdServer, store: store as unknown as MvccStore });
  return { store, asked, server, stop };
}

test('revision mode compacts to (current - retention) every 5 minutes, once per new revision', async () => {
  mock.timers.enable({ apis: ['setInterval', 'Date'] });
  try {
    const f = fixture('revision', 100);
    f.store.currentRevision = 50;
    mock.timers.tick(5 * 60 * 1000); // current - retention <= 0: nothing
    await Promise.resolve();
    assert.deepEqual(f.asked, []);
    f.store.currentRevision = 1000;
    mock.timers.tick(5 * 60 * 1000);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(f.asked, [900]);
    mock.timers.tick(5 * 60 * 1000); // revision did not move: no second compaction
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(f.asked, [900]);
    f.stop();
  } finally {
    mock.timers.reset();
  }
});

test('periodic mode compacts to the revision seen one retention period earlier, only on the leader', async () => {
  mock.timers.enable({ apis: ['setInterval', 'Date'] });
  try {
    const f = fixture('periodic', 60 * 60 * 1000); // 1 h: samples every 6 min
    for (let i = 0; i < 10; i++) {
      f.store.currentRevision = 100 * (i + 1);
      mock.timers.tick(6 * 60 * 1000);
      await new Promise((r) => setImmediate(r));
    }
    // After one period: compact to the first sample's revision.
    assert.deepEqual(f.asked, [100]);
    f.server.leader = 2n; // no longer leader: no compaction
    f.store.currentRevision = 5000;
    mock.timers.tick(60 * 60 * 1000);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(f.asked, [100]);
    f.stop();
  } finally {
    mock.timers.reset();
  }
});
