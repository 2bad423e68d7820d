// Lease, differentially: the same operations against real etcd 3.4 and Concord (each on a
// fresh member, so revisions and answers line up), compared field by field: grants and their
// errors, puts with leases (attach, move, unknown lease), txn compares on LEASE, time-to-live
// with keys, the lease list, keep-alives, revoke, and expiry seen by a watcher (every key of
// the lease deleted in one revision). Remaining TTLs depend on the clock, so they are checked
// against a window rather than compared.
//
// Run one side only with CONCORD_TESTS_ETCD_ONLY=1 / CONCORD_TESTS_CONCORD_ONLY=1 (harness.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Compare_CompareResult, Compare_CompareTarget } from '../src/proto/gen/etcdserverpb/rpc.js';
import { startServer, selectedTargets, b, mk, prefixEnd, normalize, type EtcdClient, type TargetName, type Outcome } from './harness.js';
import { WatchStreamClient } from './watch-client.js';
import { KeepAliveStream, leaseApi } from './lease-client.js';

/** Runs `scenario` on a fresh member of each target; the results must be equal. */
async function differential(scenario: (c: EtcdClient) => Promise<unknown>): Promise<void> {
  const results = new Map<TargetName, unknown>();
  for (const target of selectedTargets()) {
    const server = await startServer({ target });
    const c = server.client();
    try {
      results.set(target, normalize(await scenario(c)));
    } finally {
      c.close();
      await server.destroy();
    }
  }
  if (results.has('etcd') && results.has('concord')) assert.deepEqual(results.get('concord'), results.get('etcd'));
}

/** A remaining TTL as "in window" when granted-3 <= ttl <= granted (the clock moves between calls). */
function ttlWindow<T extends { TTL: number; grantedTTL: number; keys: Buffer[] }>(o: Outcome<T>): unknown {
  if (!o.ok) return o;
  const r = o.res;
  const ttl = r.grantedTTL > 0 && r.TTL <= r.grantedTTL && r.TTL >= r.grantedTTL - 3 ? 'in window' : r.TTL;
  return { ...r, TTL: ttl, keys: r.keys.map((k) => k.toString()).sort() };
}

test('grant, attach, move, txn on LEASE, time-to-live, list, keep-alive, revoke: same answers and errors as etcd', async () => {
  await differential(async (c) => {
    const ls = leaseApi(c);
    const out: Record<string, unknown> = {};
    out.grant = await ls.grant(60, 100n);
    out.grantExisting = await ls.grant(60, 100n);
    out.grantTooLarge = await ls.grant(9_000_000_001, 101n);
    out.grantMax = await ls.grant(9_000_000_000, 102n);
    out.grantBelowMin = await ls.grant(1, 103n); // raised to the minimum TTL
    const chosen = await ls.grant(30);
    out.serverChosen = chosen.ok ? { ...chosen.res, ID: chosen.res.ID > 0n ? 'positive' : chosen.res.ID } : chosen;
    out.putA = await c.op('put', { key: b('a'), value: b('1'), lease: 100n });
    out.putB = await c.op('put', { key: b('b'), value: b('2'), lease: 100n });
    out.putC = await c.op('put', { key: b('c'), value: b('3'), lease: 100n });
    out.putUnknown = await c.op('put', { key: b('d'), value: b('4'), lease: 999n });
    out.ignoreLeaseMissing = await c.op('put', { key: b('nokey'), ignoreLease: true });
    out.ignoreLeaseWithLease = await c.op('put', { key: b('a'), ignoreLease: true, lease: 100n });
    out.moveC = await c.op('put', { key: b('c'), value: b('33'), lease: 102n }); // moves c to another lease
    out.keepB = await c.op('put', { key: b('b'), value: b('22'), ignoreLease: true }); // keeps lease 100
    out.txnLease = await c.op('txn', {
      compare: [mk.cmp({ key: b('a'), target: Compare_CompareTarget.LEASE, result: Compare_CompareResult.EQUAL, lease: 100n })],
      success: [mk.opPut({ key: b('t'), value: b('yes'), lease: 103n })],
      failure: [mk.opPut({ key: b('t'), value: b('no') })],
    });
    out.txnLeaseUnknown = await c.op('txn', { compare: [], success: [mk.opPut({ key: b('u'), lease: 4242n })], failure: [] });
    out.txnLeaseGreater = await c.op('txn', {
      compare: [mk.cmp({ key: b('c'), target: Compare_CompareTarget.LEASE, result: Compare_CompareResult.GREATER, lease: 100n })],
      success: [], failure: [],
    });
    out.range = await c.op('range', { key: b('a'), rangeEnd: b('z') });
    out.ttl100 = ttlWindow(await ls.timeToLive(100n, true));
    out.ttl102 = ttlWindow(await ls.timeToLive(102n, false));
    out.ttlUnknown = await ls.timeToLive(999n, true);
    const list = await ls.leases();
    out.leases = list.ok ? list.res.leases.map((l) => l.ID).filter((id) => id < 1000n).sort() : list;
    const ka = new KeepAliveStream(c);
    try {
      out.keepAlive = await ka.keepAlive(100n);
      out.keepAliveUnknown = await ka.keepAlive(999n); // TTL 0, and the stream stays open
      out.keepAliveAgain = await ka.keepAlive(102n);
    } finally {
      ka.close();
    }
    out.revoke = await ls.revoke(100n);
    out.revokeAgain = await ls.revoke(100n);
    out.afterRevoke = await c.op('range', { key: b('a'), rangeEnd: b('z') });
    out.ttlRevoked = await ls.timeToLive(100n);
    return out;
  });
});

test('revoke and expiry delete every attached key in one revision, seen by a watcher as one response', async () => {
  await differential(async (c) => {
    const ls = leaseApi(c);
    await ls.grant(60, 7n);
    await ls.grant(2, 8n);
    for (const k of ['x/3', 'x/1', 'x/2']) await c.put({ key: b(k), value: b('v'), lease: 7n });
    await c.put({ key: b('x/e1'), value: b('e'), lease: 8n });
    await c.put({ key: b('x/e2'), value: b('e'), lease: 8n });
    await c.put({ key: b('x/plain'), value: b('p') });
    const w = new WatchStreamClient(c);
    try {
      w.create({ key: b('x/'), rangeEnd: prefixEnd('x/'), startRevision: 1, prevKv: true });
      await w.count(2, 'created + history');
      await ls.revoke(7n);
      // Lease 8 expires by itself (TTL 2): the leader proposes its revoke.
      await w.until((rs) => rs.some((r) => r.events.some((e) => e.kv!.key.toString() === 'x/e2' && e.type === 1)), 'expiry deletes', 20_000);
      const ttl8 = await ls.timeToLive(8n);
      const ka = new KeepAliveStream(c);
      const keepAliveExpired = await ka.keepAlive(8n).finally(() => ka.close()); // TTL 0: expired and revoked
      const left = await c.range({ key: b('x/'), rangeEnd: prefixEnd('x/') });
      return { events: w.responses.slice(1).map((r) => ({ ...r, header: { revision: r.header!.revision } })), ttl8, keepAliveExpired, left };
    } finally {
      w.close();
    }
  });
});
