// A slow consumer: one client opens a watch stream with many watchers and stops reading,
// while another client's watcher receives a high event rate. The fast watcher must get every
// event (none lost, none stalled), the server's memory must stay within a stated bound while
// the slow stream owes far more than that, and once the slow client reads again each of its
// watchers must catch up with every event: no gap, no duplicate.
//
// Knobs: CONCORD_SLOW_PUTS (default 3000), CONCORD_SLOW_WATCHERS (default 20).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startServer, selectedTargets, b, prefixEnd } from './harness.js';
import { WatchStreamClient } from './watch-client.js';

const PUTS = Number(process.env.CONCORD_SLOW_PUTS ?? 3000);
const SLOW_WATCHERS = Number(process.env.CONCORD_SLOW_WATCHERS ?? 20);
const VALUE_BYTES = 1024;
const WRITERS = 16;
/** The bound: resident memory may grow by at most this much while the slow stream owes SLOW_WATCHERS x PUTS x ~1 KiB. */
const MAX_RSS_GROWTH_BYTES = 64 * 1024 * 1024;

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

for (const target of selectedTargets()) {
  test(`${target}: a stream that reads nothing stalls no one, costs bounded memory, and later catches up exactly`, async () => {
    const server = await startServer({ target });
    const slowClient = server.client();
    const fastClient = server.client();
    const writer = server.client();
    const slow = new WatchStreamClient(slowClient);
    const fast = new WatchStreamClient(fastClient);
    try {
      for (let i = 0; i < SLOW_WATCHERS; i++) slow.create({ key: b('s/'), rangeEnd: prefixEnd('s/') });
      fast.create({ key: b('s/'), rangeEnd: prefixEnd('s/') });
      await slow.count(SLOW_WATCHERS, 'slow watchers created');
      await fast.count(1, 'fast watcher created');
      slow.pause();
      const first = (await writer.status()).header!.revision + 1;
      const base = rssBytes(server.pid!);
      let peak = base;
      const sampler = setInterval(() => { peak = Math.max(peak, rssBytes(server.pid!)); }, 50);
      const value = Buffer.alloc(VALUE_BYTES, 120);
      let next = 0;
      await Promise.all(Array.from({ length: WRITERS }, async () => {
        while (next < PUTS) {
          const i = next++;
          await writer.put({ key: b(`s/${i % 500}`), value });
        }
      }));
      const last = first + PUTS - 1;
      await fast.eventAt(0, last);
      clearInterval(sampler);
      peak = Math.max(peak, rssBytes(server.pid!));
      const revs = fast.responses.flatMap((r) => r.events.map((e) => e.kv!.modRevision));
      assert.deepEqual(revs, Array.from({ length: PUTS }, (_, i) => first + i), 'the fast watcher got every revision once, in order');
      const growth = peak - base;
      console.log(`# ${target}: rss ${(base / 2 ** 20).toFixed(1)} MiB -> peak ${(peak / 2 ** 20).toFixed(1)} MiB (+${(growth / 2 ** 20).toFixed(1)}) while the slow stream owed ~${((SLOW_WATCHERS * PUTS * VALUE_BYTES) / 2 ** 20).toFixed(0)} MiB`);
      assert.ok(growth < MAX_RSS_GROWTH_BYTES, `memory grew ${growth} bytes`);

      slow.resume();
      for (let id = 0; id < SLOW_WATCHERS; id++) await slow.eventAt(id, last);
      for (let id = 0; id < SLOW_WATCHERS; id++) {
        const got = slow.responses.filter((r) => r.watchId === id).flatMap((r) => r.events.map((e) => e.kv!.modRevision));
        assert.deepEqual(got, Array.from({ length: PUTS }, (_, i) => first + i), `slow watcher ${id}: no gap, no duplicate`);
      }
    } finally {
      slow.close();
      fast.close();
      for (const c of [slowClient, fastClient, writer]) c.close();
      await server.destroy();
    }
  });
}
