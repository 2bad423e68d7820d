// Leases across restarts, on etcd and Concord alike: a restart never expires a lease early
// (promotion gives every lease its TTL again, plus the election timeout), keys stay attached
// (rebuilt from the key bucket after a clean stop, from the WAL after kill -9), and the keys
// of a lease that expired while the member was down are deleted once it is back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, selectedTargets, b, prefixEnd, sleep, normalize, type Server, type EtcdClient } from './harness.js';
import { leaseApi } from './lease-client.js';

async function keys(c: EtcdClient): Promise<string[]> {
  const r = await c.range({ key: b('r/'), rangeEnd: prefixEnd('r/') });
  return r.kvs.map((kv) => kv.key.toString());
}

/** Polls (bounded) until `pred` holds for the keys under r/. */
async function keysUntil(c: EtcdClient, pred: (ks: string[]) => boolean, what: string, timeoutMs = 30_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ks = await keys(c);
    if (pred(ks)) return ks;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; keys ${JSON.stringify(ks)}`);
    await sleep(200);
  }
}

async function withClient<T>(s: Server, fn: (c: EtcdClient) => Promise<T>): Promise<T> {
  const c = s.client();
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

for (const target of selectedTargets()) {
  test(`${target}: a restart does not expire a lease early, and keys of a lease that expired while down are deleted after`, async () => {
    const s = await startServer({ target });
    try {
      await withClient(s, async (c) => {
        const ls = leaseApi(c);
        assert.ok((await ls.grant(20, 11n)).ok);
        assert.ok((await ls.grant(3, 12n)).ok);
        await c.put({ key: b('r/long'), value: b('1'), lease: 11n });
        await c.put({ key: b('r/short'), value: b('2'), lease: 12n });
      });
      await s.stop();
      await sleep(4000); // lease 12 (TTL 3) runs out while the member is down; lease 11 has 16 s left
      await s.restart();
      await withClient(s, async (c) => {
        const ls = leaseApi(c);
        const t11 = await ls.timeToLive(11n, true);
        assert.ok(t11.ok);
        // Granted 4+ s ago with TTL 20: without the refresh at promotion it would show <= 16.
        assert.ok(t11.res.TTL >= 18, `lease 11 refreshed at restart, TTL ${t11.res.TTL}`);
        assert.deepEqual(t11.res.keys.map(String), ['r/long'], 'keys re-attached from the key bucket');
        const t12 = await ls.timeToLive(12n, true);
        assert.ok(t12.ok && t12.res.TTL >= 0, 'lease 12 not expired by the restart itself');
        assert.deepEqual(t12.res.keys.map(String), ['r/short']);
        // Then lease 12 expires (TTL 3 + election timeout after the restart) and takes its key.
        const left = await keysUntil(c, (ks) => !ks.includes('r/short'), 'r/short deleted by expiry');
        assert.deepEqual(left, ['r/long']);
        assert.equal((await ls.timeToLive(12n)).ok && (await ls.timeToLive(12n) as { res: { TTL: number } }).res.TTL, -1);
      });
    } finally {
      await s.destroy();
    }
  });

  test(`${target}: after kill -9, a lease granted just before is back with its key, and expires on time`, async () => {
    const s = await startServer({ target });
    try {
      await withClient(s, async (c) => {
        assert.ok((await leaseApi(c).grant(3, 21n)).ok);
        await c.put({ key: b('r/k9'), value: b('x'), lease: 21n });
      });
      await s.kill();
      await s.restart();
      await withClient(s, async (c) => {
        const t = await leaseApi(c).timeToLive(21n, true);
        assert.ok(t.ok && t.res.grantedTTL === 3, JSON.stringify(normalize(t)));
        assert.deepEqual(t.res.keys.map(String), ['r/k9']);
        await keysUntil(c, (ks) => ks.length === 0, 'r/k9 deleted by expiry');
      });
    } finally {
      await s.destroy();
    }
  });
}
