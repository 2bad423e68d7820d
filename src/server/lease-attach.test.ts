// Seeded property test of lease attachments through the real applier: random grants, revokes,
// puts with and without leases (moves, ignore_lease), deletes, txns and reopenings of the
// backend, checked after every step against a model: each lease's attached keys are exactly
// the live keys whose lease field names it (also after a restart rebuilt them from the key
// bucket), and a revoke removed exactly its keys.
//
// Replay a failing run with CONCORD_LEASE_SEED=<seed> (CONCORD_LEASE_STEPS, default 1500).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Backend } from '../storage/index.js';
import { MvccStore } from '../mvcc/index.js';
import { Lessor } from '../lease/index.js';
import { nopLogger } from '../log/index.js';
import { EntryType, RangeRequest } from '../proto/index.js';
import { rng } from '../testkit/index.js';
import { Applier } from './applier.js';
import { AlarmSet } from './alarms.js';
import { AuthStore } from '../auth/index.js';
import { Membership } from './membership.js';
import { WaitRegistry } from './wait.js';
import { encodeRaftRequest, type RaftRequest } from './request-codec.js';

interface Member { backend: Backend; store: MvccStore; lessor: Lessor; applier: Applier }

function open(dir: string): Member {
  const backend = Backend.open({ path: join(dir, 'db') });
  const lessor = new Lessor({ backend, minTtlSeconds: 2, expiredRetryMs: 7000 });
  const store = MvccStore.open({ backend, leaseExists: (id) => lessor.has(id), onKeyLease: (k, l) => lessor.attachKey(k, l) });
  const applier = new Applier({
    memberId: 1n, membership: new Membership(2n, []), store, alarms: new AlarmSet([]), log: nopLogger(),
    waits: new WaitRegistry({ maxProposalsInFlight: 10, maxProposalBytesInFlight: 1 << 20 }),
    header: () => ({ clusterId: 2n, memberId: 1n, revision: store.currentRevision, raftTerm: 1 }),
    persistAlarms: () => undefined, persistMembership: () => undefined, persistClusterVersion: () => undefined,
    clusterVersion: undefined, lessor, clock: () => 0,
    auth: new AuthStore({ backend, log: nopLogger(), tokenTtlMs: 300_000 }),
    holdingReads: (work) => work(), // no client reads here
  });
  return { backend, store, lessor, applier };
}

test('lease attachments follow every write and survive reopening (seeded, against a model)', async () => {
  const seed = Number(process.env.CONCORD_LEASE_SEED ?? Date.now() % 1_000_000);
  const steps = Number(process.env.CONCORD_LEASE_STEPS ?? 1500);
  const rand = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const dir = mkdtempSync(join(tmpdir(), 'concord-lease-attach-'));
  let m = open(dir);
  let index = m.store.consistentIndex();
  const apply = (r: RaftRequest): void => {
    index++;
    m.applier.apply({ term: 1, index, type: EntryType.EntryNormal, data: encodeRaftRequest(0n, r) });
  };
  const leases = new Set<bigint>();
  const keyLease = new Map<string, bigint>(); // live keys → lease (0n: none)
  const keys = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
  const ids = [1n, 2n, 3n, 4n];
  const putOk = (lease: bigint): boolean => lease === 0n || leases.has(lease);
  try {
    for (let step = 0; step < steps; step++) {
      const r = rand();
      let what: string;
      if (r < 0.12) {
        const id = pick(ids);
        what = `grant ${id}`;
        apply({ kind: 'leaseGrant', req: { ID: id, TTL: 30 } });
        leases.add(id);
      } else if (r < 0.2) {
        const id = pick(ids);
        what = `revoke ${id}`;
        apply({ kind: 'leaseRevoke', req: { ID: id } });
        if (leases.delete(id)) for (const [k, l] of keyLease) if (l === id) keyLease.delete(k);
      } else if (r < 0.55) {
        const key = pick(keys);
        const lease = rand() < 0.3 ? 0n : pick(ids);
        what = `put ${key} lease ${lease}`;
        apply({ kind: 'put', req: { key: Buffer.from(key), value: Buffer.from('v'), lease, prevKv: false, ignoreValue: false, ignoreLease: false } });
        if (putOk(lease)) keyLease.set(key, lease);
      } else if (r < 0.62) {
        const key = pick(keys);
        what = `put ${key} ignore_lease`;
        apply({ kind: 'put', req: { key: Buffer.from(key), value: Buffer.from('w'), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: true } });
      } else if (r < 0.75) {
        const key = pick(keys);
        const end = rand() < 0.3 ? String.fromCharCode(key.charCodeAt(0) + 2) : '';
        what = `delete ${key}..${end}`;
        apply({ kind: 'deleteRange', req: { key: Buffer.from(key), rangeEnd: Buffer.from(end), prevKv: false } });
        for (const k of [...keyLease.keys()]) if (end === '' ? k === key : k >= key && k < end) keyLease.delete(k);
      } else if (r < 0.92) {
        const [k1, k2, k3] = [pick(keys), pick(keys), pick(keys)];
        const [l1, l2] = [pick([0n, ...ids]), pick([0n, ...ids])];
        what = `txn put ${k1}:${l1} put ${k2}:${l2} delete ${k3}`;
        apply({ kind: 'txn', req: { compare: [], failure: [], success: [
          { requestPut: { key: Buffer.from(k1), value: Buffer.from('t'), lease: l1, prevKv: false, ignoreValue: false, ignoreLease: false } },
          { requestPut: { key: Buffer.from(k2), value: Buffer.from('t'), lease: l2, prevKv: false, ignoreValue: false, ignoreLease: false } },
          { requestDeleteRange: { key: Buffer.from(k3), rangeEnd: Buffer.alloc(0), prevKv: false } },
        ] } });
        if (putOk(l1) && putOk(l2)) { // overlapping keys are the API's to refuse; apply runs the ops in order
          keyLease.set(k1, l1); keyLease.set(k2, l2); keyLease.delete(k3);
        }
      } else {
        what = 'reopen';
        await m.store.close();
        m = open(dir);
        assert.equal(m.store.consistentIndex(), index, `seed ${seed}: consistent index kept`);
      }
      check(m, leases, keyLease, `seed ${seed} step ${step} (${what})`);
    }
  } finally {
    await m.store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

function check(m: Member, leases: Set<bigint>, keyLease: Map<string, bigint>, where: string): void {
  assert.deepEqual(new Set(m.lessor.list().map((l) => l.id)), leases, `${where}: leases`);
  for (const id of leases) {
    const want = [...keyLease].filter(([, l]) => l === id).map(([k]) => k).sort();
    assert.deepEqual([...m.lessor.lookup(id)!.keys].sort(), want, `${where}: keys of lease ${id}`);
  }
  const r = m.store.range(RangeRequest.fromPartial({ key: Buffer.from([0]), rangeEnd: Buffer.from([0]) }));
  assert.deepEqual(new Map(r.kvs.map((kv) => [kv.key.toString(), kv.lease])), keyLease, `${where}: store`);
}
