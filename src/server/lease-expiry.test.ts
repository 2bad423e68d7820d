// Lease expiry on a real in-process member (raft loop, applier, MVCC store, lessor), with the
// lessor's clock in the test's hands: expired leases are revoked through raft, at most 500 a
// round (1,000/s at two rounds a second), keys of a revoked lease are deleted in one
// revision, a demoted lessor expires nothing, and due checkpoints reach every lessor's state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nopLogger } from '../log/index.js';
import { PutRequest, RangeRequest } from '../proto/index.js';
import { startTestMember, type TestMember } from './test-member.js';
import { LeaseExpiry, maxPendingRevokes, minLeaseTtlSeconds, rootWhileAuthOn } from './lease-expiry.js';
import type { AuthInfo } from './auth-server.js';
import type { RaftRequest } from './request-codec.js';

const b = (s: string): Buffer => Buffer.from(s);

async function withExpiry(fn: (m: TestMember, e: LeaseExpiry, clock: { now: number }, inFlight: () => number) => Promise<void>, checkpoints = false): Promise<void> {
  const clock = { now: 0 };
  const m = await startTestMember({ clock: () => clock.now, lessor: checkpoints ? { checkpointIntervalMs: 1000 } : {} });
  let pending = 0;
  let maxPending = 0;
  const e = new LeaseExpiry({
    lessor: m.lessor, clock: () => clock.now, log: nopLogger(), electionTimeoutMs: 1000, checkpoints,
    revoker: rootWhileAuthOn(m.auth),
    propose: (r: RaftRequest, ai?: AuthInfo) => {
      pending++;
      maxPending = Math.max(maxPending, pending);
      return m.server.propose(r, ai).finally(() => { pending--; });
    },
  });
  try {
    await fn(m, e, clock, () => maxPending);
  } finally {
    e.stop();
    await m.close();
  }
}

async function settle(m: TestMember, until: () => boolean): Promise<void> {
  for (let i = 0; i < 10_000 && !until(); i++) await new Promise((r) => setImmediate(r));
  assert.ok(until(), 'condition reached');
}

test("minimum TTL is etcd's ceil((3 * electionTicks / 2) heartbeats)", () => {
  assert.equal(minLeaseTtlSeconds(1000, 100), 2); // 15 heartbeats of 100 ms
  assert.equal(minLeaseTtlSeconds(5000, 500), 8); // 15 of 500 ms = 7.5 s
  assert.equal(minLeaseTtlSeconds(1100, 100), 2); // 11 ticks: 16 of 100 ms
  assert.equal(minLeaseTtlSeconds(3000, 100), 5); // 45 of 100 ms = 4.5 s
});

test('the primary revokes expired leases through raft: their keys go in one revision; a demoted lessor revokes nothing', async () => {
  await withExpiry(async (m, e, clock) => {
    await m.server.propose({ kind: 'leaseGrant', req: { ID: 5n, TTL: 10 } });
    await m.server.propose({ kind: 'leaseGrant', req: { ID: 6n, TTL: 60 } });
    for (const k of ['k2', 'k1']) await m.server.put(PutRequest.fromPartial({ key: b(k), value: b('v'), lease: 5n }));
    await m.server.put(PutRequest.fromPartial({ key: b('keep'), value: b('v'), lease: 6n }));
    e.tick();
    assert.ok(m.lessor.has(5n), 'not primary yet: nothing expires');
    e.promote(); // at 0: lease 5 expires at 11 s (TTL + election timeout)
    clock.now = 10_999;
    e.tick();
    assert.ok(m.lessor.has(5n));
    clock.now = 11_000;
    e.tick();
    await settle(m, () => !m.lessor.has(5n));
    const r = m.store.range(RangeRequest.fromPartial({ key: b('k'), rangeEnd: b('l') }));
    assert.deepEqual(r.kvs.map((kv) => kv.key.toString()), ['keep']);
    const rev = m.store.currentRevision;
    const deleted = m.store.range(RangeRequest.fromPartial({ key: b('k1'), revision: rev - 1 }));
    assert.equal(deleted.kvs.length, 1, 'k1 was there one revision before');
    assert.equal(m.store.range(RangeRequest.fromPartial({ key: b('k2'), revision: rev - 1 })).kvs.length, 1, 'both deleted in the same revision');
    e.demote();
    clock.now = 1e9;
    e.tick();
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(m.lessor.has(6n), 'demoted: lease 6 does not expire here');
  });
});

test('a mass expiry is revoked at most 500 leases a round, with at most 16 revokes in flight', async () => {
  await withExpiry(async (m, e, clock, maxInFlight) => {
    const n = 1200;
    for (let at = 0; at < n; at += 200) {
      await Promise.all(Array.from({ length: 200 }, (_, i) => m.server.propose({ kind: 'leaseGrant', req: { ID: BigInt(at + i + 1), TTL: 5 } })));
    }
    e.promote();
    clock.now = 60_000;
    e.tick();
    await settle(m, () => m.lessor.size === n - 500);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(m.lessor.size, n - 500, 'one round revokes 500');
    e.tick();
    await settle(m, () => m.lessor.size === n - 1000);
    e.tick();
    await settle(m, () => m.lessor.size === 0);
    assert.ok(maxInFlight() <= maxPendingRevokes, `in flight at most ${maxPendingRevokes}, saw ${maxInFlight()}`);
    assert.ok(maxInFlight() > 1, 'revokes overlap');
  });
});

test('checkpoints: a due checkpoint is proposed and records the remaining TTL; a renew clears it', async () => {
  await withExpiry(async (m, e, clock) => {
    await m.server.propose({ kind: 'leaseGrant', req: { ID: 9n, TTL: 60 } });
    e.promote(); // expires at 61 s; checkpoint due at 1 s
    clock.now = 2000; // 59 s left
    e.tick();
    await settle(m, () => m.lessor.lookup(9n)!.remainingTtl === 59);
    clock.now = 31_000; // applying the checkpoint scheduled the next one at 3 s: 30 s left now
    e.tick();
    await settle(m, () => m.lessor.lookup(9n)!.remainingTtl === 30);
    assert.equal(m.lessor.renewClearsCheckpoint(9n), true);
  }, true);
});
