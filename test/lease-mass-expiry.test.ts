// 10,000 leases, each with a key, expiring together: revocations are rate-limited (etcd's
// 1,000/s, at most 16 in flight), so client puts keep going while the keys vanish. To make
// them expire together however long the set-up takes on a loaded machine, the member is
// restarted after it: promotion gives every lease its full TTL at the same instant (and, as
// etcd's Promote does, spreads the expiries to 750 a second). Keys are attached 100 per txn
// to keep the set-up short. The test runs on Concord; CONCORD_LEASE_MASS_ETCD=1 also runs it
// on etcd, to print etcd's latency beside Concord's. The put
// latency during the expiry is printed (not asserted: timing is a measurement, not a test);
// what is asserted is that every put succeeds and every leased key and lease is gone after.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, selectedTargets, b, mk, prefixEnd, sleep, type EtcdClient } from './harness.js';
import { leaseApi } from './lease-client.js';

const leaseCount = 10_000;
const ttlSeconds = 60;
const keysPerTxn = 100;
const concurrency = 2; // batches of 100 grants in flight at once

/** Runs `fn(i)` for i in [0, n) with `concurrency` of them in flight. */
async function pool(n: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) await fn(next++);
  }));
}

async function leasedKeys(c: EtcdClient): Promise<number> {
  return (await c.range({ key: b('m/'), rangeEnd: prefixEnd('m/'), countOnly: true })).count;
}

const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;

const targets = selectedTargets().filter((t) => t === 'concord' || process.env.CONCORD_LEASE_MASS_ETCD === '1');
for (const target of targets) {
  test(`${target}: ${leaseCount} leases expiring together do not stall puts`, { timeout: 600_000 }, async () => {
    const s = await startServer({ target });
    const clients = Array.from({ length: 8 }, () => s.client());
    try {
      const started = Date.now();
      // A batch's keys are attached right after its leases are granted, so no lease can run
      // out before its key is there however slow the set-up.
      await pool(leaseCount / keysPerTxn, async (t) => {
        const c = clients[t % clients.length]!;
        const ids = Array.from({ length: keysPerTxn }, (_, j) => BigInt(t * keysPerTxn + j + 1));
        for (const g of await Promise.all(ids.map((id) => leaseApi(c).grant(ttlSeconds, id)))) assert.ok(g.ok, 'grant');
        await c.txn({ success: ids.map((id) => mk.opPut({ key: b(`m/${id}`), value: b('x'), lease: id })) });
      });
      const setupMs = Date.now() - started;
      for (const c of clients) c.close();
      await s.stop();
      await s.restart();
      clients.splice(0, clients.length, s.client());

      // Serial puts from one client until every leased key is gone (bounded).
      const writer = s.client();
      const latencies: number[] = [];
      const baseline: number[] = [];
      const deadline = Date.now() + 120_000;
      let remaining = await leasedKeys(writer);
      let sawExpiry = false;
      let puts = 0;
      while (remaining > 0) {
        assert.ok(Date.now() < deadline, `leased keys still there: ${remaining}`);
        const t = performance.now();
        await writer.put({ key: b('probe'), value: b('x') });
        (sawExpiry ? latencies : baseline).push(performance.now() - t); // while keys vanish / before
        if (++puts % 20 === 0) {
          remaining = await leasedKeys(writer);
          if (remaining < leaseCount) sawExpiry = true;
        }
        await sleep(5);
      }
      writer.close();
      assert.ok(sawExpiry && latencies.length > 0, 'puts ran while leases were expiring');
      const left = await leaseApi(clients[0]!).leases();
      assert.ok(left.ok && left.res.leases.length === 0, 'every lease revoked');
      const summary = (xs: number[]): string => {
        xs.sort((a, x) => a - x);
        return `${xs.length} puts: p50 ${percentile(xs, 50).toFixed(2)} ms, p99 ${percentile(xs, 99).toFixed(2)} ms, max ${xs[xs.length - 1]!.toFixed(2)} ms`;
      };
      process.stderr.write(`[lease-mass-expiry] ${target}: ${leaseCount} leases+keys set up in ${setupMs} ms; ` +
        `during expiry ${summary(latencies)}; before it ${baseline.length > 0 ? summary(baseline) : 'none'}\n`);
    } finally {
      for (const c of clients) c.close();
      await s.destroy();
    }
  });
}
