// The lessor alone, over a real LMDB backend, with time passed in by the test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Backend } from '../storage/index.js';
import { isEtcdError } from '../errors/index.js';
import { LeaseRecord } from '../proto/index.js';
import { rng } from '../testkit/index.js';
import { Lessor, NotPrimaryError, leaseKey, type LessorOptions } from './lessor.js';
import { DeadlineQueue } from './deadline-queue.js';

const k = (s: string): Buffer => Buffer.from(s, 'latin1');

async function withLessor(fn: (open: (o?: Partial<LessorOptions>) => Lessor, backend: Backend) => Promise<void> | void): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'concord-lessor-'));
  const backend = Backend.open({ path: join(dir, 'db') });
  try {
    await fn((o = {}) => new Lessor({ backend, minTtlSeconds: 2, expiredRetryMs: 7000, ...o }), backend);
  } finally {
    await backend.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('grant: minimum TTL, etcd errors for id 0, too large a TTL and an existing id', () => withLessor((open) => {
  const le = open();
  assert.equal(le.grant(1n, 1, 0).ttl, 2, 'raised to the minimum TTL');
  assert.equal(le.grant(2n, 9_000_000_000, 0).ttl, 9_000_000_000);
  assert.throws(() => le.grant(0n, 10, 0), (e) => isEtcdError(e, 'LeaseNotFound'));
  assert.throws(() => le.grant(3n, 9_000_000_001, 0), (e) => isEtcdError(e, 'LeaseTTLTooLarge'));
  assert.throws(() => le.grant(1n, 10, 0), (e) => isEtcdError(e, 'LeaseExist'));
  assert.deepEqual(le.list().map((l) => l.id).sort(), [1n, 2n]);
}));

test('leases persist as leasepb.Lease under the big-endian id and come back, forever until promoted', () => withLessor((open, backend) => {
  const le = open();
  le.grant(-5n, 30, 0);
  le.grant(0x694d7b5c5a6ef404n, 60, 0);
  le.checkpoint(-5n, 12, 0); // not persisted without checkpointPersist
  const rec = LeaseRecord.decode(backend.get('lease', leaseKey(-5n))!);
  assert.deepEqual(rec, { ID: -5n, TTL: 30, RemainingTTL: 0 });
  assert.equal(leaseKey(-5n).toString('hex'), 'fffffffffffffffb');
  const again = open();
  assert.equal(again.lookup(-5n)!.ttl, 30);
  assert.equal(again.lookup(-5n)!.expiryMs, Infinity);
  assert.equal(again.size, 2);

  const persisting = open({ checkpointPersist: true });
  persisting.checkpoint(-5n, 12, 0);
  assert.equal(LeaseRecord.decode(backend.get('lease', leaseKey(-5n))!).RemainingTTL, 12);
  assert.equal(open().lookup(-5n)!.remainingTtl, 12);
}));

test('keys attach, move between leases, detach on delete; revoke deletes them sorted, then the lease', () => withLessor((open, backend) => {
  const le = open();
  le.grant(1n, 10, 0);
  le.grant(2n, 10, 0);
  le.attachKey(k('b'), 1n);
  le.attachKey(k('a'), 1n);
  le.attachKey(k('c'), 1n);
  le.attachKey(k('c'), 2n); // a put with another lease moves it
  le.attachKey(k('a'), 0n); // a put without a lease (or a delete) detaches it
  assert.deepEqual([...le.lookup(1n)!.keys], ['b']);
  assert.deepEqual([...le.lookup(2n)!.keys], ['c']);
  le.attachKey(k('z'), 2n);
  le.attachKey(k('\xff'), 2n);
  let deleted: Buffer[] = [];
  le.revoke(2n, (keys) => { deleted = keys; });
  assert.deepEqual(deleted.map((x) => x.toString('latin1')), ['c', 'z', '\xff']);
  assert.equal(le.lookup(2n), undefined);
  assert.equal(backend.get('lease', leaseKey(2n)), undefined);
  assert.throws(() => le.revoke(2n, () => undefined), (e) => isEtcdError(e, 'LeaseNotFound'));
  // A key of a revoked lease put again without a lease is no longer tracked.
  le.attachKey(k('c'), 1n);
  assert.deepEqual([...le.lookup(1n)!.keys].sort(), ['b', 'c']);
}));

test('only the primary renews and expires; promote extends every lease, demote stops expiry', () => withLessor((open) => {
  const le = open();
  le.grant(1n, 10, 0);
  assert.throws(() => le.renew(1n, 0), NotPrimaryError);
  assert.deepEqual(le.expired(1e12, 10), [], 'not primary: nothing expires');
  le.promote(1000, 0);
  assert.equal(le.lookup(1n)!.expiryMs, 11_000, 'TTL + extend');
  assert.deepEqual(le.expired(10_999, 10), []);
  assert.deepEqual(le.expired(11_000, 10).map((l) => l.id), [1n]);
  assert.deepEqual(le.expired(11_000, 10), [], 'offered again only after the retry interval');
  assert.deepEqual(le.expired(18_000, 10).map((l) => l.id), [1n]);
  le.grant(2n, 5, 20_000);
  assert.deepEqual(le.renew(2n, 24_000), { ttl: 5 });
  assert.equal(le.lookup(2n)!.expiryMs, 29_000);
  const r = le.renew(1n, 25_000);
  assert.ok('expired' in r, 'an expired lease is not renewed');
  assert.throws(() => le.renew(9n, 0), (e) => isEtcdError(e, 'LeaseNotFound'));
  let woken = false;
  void le.lookup(1n)!.whenRevoked().then(() => { woken = true; });
  le.demote();
  assert.equal(le.lookup(2n)!.expiryMs, Infinity);
  assert.deepEqual(le.expired(1e12, 10), []);
  return Promise.resolve().then(() => assert.ok(woken, 'demote wakes a keep-alive waiting for a revoke'));
}));

test('promote spreads a mass expiry to at most 3/4 of the revoke rate per second', () => withLessor((open) => {
  const le = open();
  for (let i = 1; i <= 3000; i++) le.grant(BigInt(i), 10, 0);
  le.promote(0, 0);
  const perSecond = new Map<number, number>();
  for (const l of le.list()) perSecond.set(Math.floor(l.expiryMs / 1000), (perSecond.get(Math.floor(l.expiryMs / 1000)) ?? 0) + 1);
  assert.ok(Math.max(...perSecond.values()) <= 751, `per second: ${JSON.stringify([...perSecond])}`);
  assert.ok(Math.min(...le.list().map((l) => l.expiryMs)) >= 10_000, 'never earlier than the TTL');
}));

test('checkpoints: scheduled for leases longer than the interval, due ones carry the remaining TTL', () => withLessor((open) => {
  const le = open({ checkpointIntervalMs: 60_000 });
  le.grant(1n, 30, 0); // shorter than the interval: never checkpointed
  le.grant(2n, 300, 0);
  assert.deepEqual(le.dueCheckpoints(1e9, 10), [], 'not primary');
  le.promote(0, 0);
  assert.deepEqual(le.dueCheckpoints(59_999, 10), []);
  assert.deepEqual(le.dueCheckpoints(60_000, 10), [{ ID: 2n, remainingTTL: 240 }]);
  le.checkpoint(2n, 240, 60_000);
  assert.equal(le.lookup(2n)!.remainingTtl, 240);
  assert.equal(le.renewClearsCheckpoint(2n), true);
  le.demote();
  le.promote(0, 100_000);
  assert.equal(le.lookup(2n)!.expiryMs, 100_000 + 240_000, 'promotion starts from the checkpointed remainder');
}));

test('deadline queue: pops in time order under random sets, moves and deletes (seeded)', () => {
  const seed = Number(process.env.CONCORD_LEASE_SEED ?? 20261201);
  const rand = rng(seed);
  const q = new DeadlineQueue();
  const model = new Map<bigint, number>();
  for (let step = 0; step < 5000; step++) {
    const id = BigInt(Math.floor(rand() * 300));
    const r = rand();
    if (r < 0.6) { const t = Math.floor(rand() * 1e6); q.set(id, t); model.set(id, t); }
    else if (r < 0.8) { q.delete(id); model.delete(id); }
    else {
      const top = q.pop();
      if (model.size === 0) { assert.equal(top, undefined, `seed ${seed}`); continue; }
      const min = Math.min(...model.values());
      assert.equal(top!.time, min, `seed ${seed} step ${step}`);
      assert.equal(model.get(top!.id), min, `seed ${seed} step ${step}`);
      model.delete(top!.id);
    }
    assert.equal(q.size, model.size, `seed ${seed} step ${step}`);
  }
});
