// EtcdServer over the real Ready loop, applier and MVCC store, with the in-memory WAL:
// what a proposal's caller gets is the result of applying its entry's bytes; proposals in
// flight are bounded; read-only txns follow etcd's rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  PutRequest, RangeRequest, TxnRequest,
} from '../proto/index.js';
import { isEtcdError } from '../errors/index.js';
import { startTestMember } from './test-member.js';

const b = (s: string) => Buffer.from(s);

test('the proposer gets the result of applying its entry\'s bytes, not the request object it holds', async () => {
  const m = await startTestMember();
  try {
    // The API hands over the client's own encoding with the decoded request; should they
    // ever disagree, what counts is what the log holds (every member applies that).
    const inMemory = PutRequest.fromPartial({ key: b('k'), value: b('from-memory') });
    const raw = PutRequest.encode(PutRequest.fromPartial({ key: b('k'), value: b('from-log'), prevKv: true })).finish();
    const first = await m.server.put(inMemory, raw);
    const second = await m.server.put(inMemory, raw);
    assert.equal(second.prevKv?.value.toString(), 'from-log', 'prev_kv from the log\'s request, and the value stored is the log\'s');
    assert.equal(first.header?.revision, 2);
    const r = await m.server.range(RangeRequest.fromPartial({ key: b('k') }));
    assert.equal(r.kvs[0]!.value.toString(), 'from-log');
  } finally {
    await m.close();
  }
});

test('proposals in flight are bounded in count: past the bound etcd\'s "too many requests"', async () => {
  const m = await startTestMember({ limits: { maxProposalsInFlight: 3 } });
  try {
    m.wal.hold(); // nothing becomes durable, so nothing commits: proposals stay in flight
    const inFlight = [0, 1, 2].map((i) => m.server.put(PutRequest.fromPartial({ key: b(`k${i}`), value: b('v') })));
    await assert.rejects(m.server.put(PutRequest.fromPartial({ key: b('k3'), value: b('v') })),
      (e: unknown) => isEtcdError(e, 'RequestTooManyRequests') && (e as Error).message === 'etcdserver: too many requests');
    m.wal.release();
    const done = await Promise.all(inFlight);
    assert.deepEqual(done.map((r) => r.header?.revision), [2, 3, 4]);
    assert.equal(m.waits.size, 0);
    assert.equal(m.waits.bytes, 0);
    await m.server.put(PutRequest.fromPartial({ key: b('k3'), value: b('v') })); // room again
  } finally {
    await m.close();
  }
});

test('proposals in flight are bounded in bytes', async () => {
  const m = await startTestMember({ limits: { maxProposalBytesInFlight: 3000 } });
  try {
    m.wal.hold();
    const big = () => PutRequest.fromPartial({ key: b('big'), value: Buffer.alloc(1000, 1) });
    const inFlight = [m.server.put(big()), m.server.put(big())];
    await assert.rejects(m.server.put(big()), (e: unknown) => isEtcdError(e, 'RequestTooManyRequests'));
    m.wal.release();
    await Promise.all(inFlight);
    assert.equal(m.waits.bytes, 0);
  } finally {
    await m.close();
  }
});

test('a txn holding a nested txn goes through raft even if it only reads (etcd\'s isTxnReadonly)', async () => {
  const m = await startTestMember();
  try {
    await m.server.put(PutRequest.fromPartial({ key: b('a'), value: b('1') }));
    const before = m.raft.commitIndex;
    const readOnly = TxnRequest.fromPartial({ success: [{ requestRange: { key: b('a') } }] });
    await m.server.txn(readOnly);
    assert.equal(m.raft.commitIndex, before, 'a txn of ranges is served without an entry');
    const nested = TxnRequest.fromPartial({ success: [{ requestTxn: readOnly }] });
    const r = await m.server.txn(nested);
    assert.equal(m.raft.commitIndex, before + 1, 'a nested txn is proposed');
    assert.equal(r.responses[0]!.responseTxn!.responses[0]!.responseRange!.kvs[0]!.value.toString(), '1');
  } finally {
    await m.close();
  }
});

test('a serializable read-only txn skips the linearizable barrier, a linearizable one does not', async () => {
  const m = await startTestMember();
  try {
    await m.server.put(PutRequest.fromPartial({ key: b('a'), value: b('1') }));
    // A stopped server refuses the barrier (Stopped): only a read that needs it fails.
    const ser = TxnRequest.fromPartial({ success: [{ requestRange: { key: b('a'), serializable: true } }] });
    const lin = TxnRequest.fromPartial({ success: [{ requestRange: { key: b('a') } }] });
    m.server.stop();
    const r = await m.server.txn(ser);
    assert.equal(r.responses[0]!.responseRange!.kvs[0]!.value.toString(), '1');
    await assert.rejects(m.server.txn(lin), (e: unknown) => isEtcdError(e, 'Stopped'));
  } finally {
    await m.close();
  }
});


test('a range that needs no wait is answered without a promise: serializable, or linearizable on the sole voter caught up', async () => {
  const m = await startTestMember();
  try {
    await m.server.put(PutRequest.fromPartial({ key: b('a'), value: b('1') }));
    for (const serializable of [true, false]) {
      const r = m.server.range(RangeRequest.fromPartial({ key: b('a'), serializable }));
      assert.ok(!(r instanceof Promise), `serializable=${serializable}: answered at once`);
      assert.equal(r.kvs[0]!.value.toString(), '1');
    }
    m.server.stop();
    const lin = m.server.range(RangeRequest.fromPartial({ key: b('a') }));
    assert.ok(lin instanceof Promise, 'a stopped member sends a linearizable read through the barrier');
    await assert.rejects(lin, (e: unknown) => isEtcdError(e, 'Stopped'));
  } finally {
    await m.close();
  }
});

test('reads wait while the backend file is swapped (a leader\'s snapshot installed, a defrag), failed or not', async () => {
  const m = await startTestMember();
  try {
    await m.server.put(PutRequest.fromPartial({ key: b('k'), value: b('v') }));
    for (const outcome of ['done', 'failed'] as const) {
      let finish!: () => void;
      const swapped = new Promise<void>((resolve, reject) => { finish = () => (outcome === 'done' ? resolve() : reject(new Error('swap failed'))); });
      const swap = m.server.holdingReads(() => swapped);
      let answered = 0;
      const reads = [
        Promise.resolve(m.server.range(RangeRequest.fromPartial({ key: b('k'), serializable: true }))),
        m.server.txn(TxnRequest.fromPartial({ success: [{ requestRange: RangeRequest.fromPartial({ key: b('k') }) }] })),
        m.server.hash(),
        m.server.hashKV({ revision: 0 }),
        m.server.storeHashKV(0), // the peer /members/hashkv handler's and the corruption checks' read
      ].map((p) => p.then((r) => { answered++; return r; }));
      // Several turns of the event loop: an ungated read would have answered by now.
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
      assert.equal(answered, 0, `${outcome}: no read answered while the file is swapped`);
      finish();
      if (outcome === 'failed') await assert.rejects(swap, /swap failed/);
      else await swap;
      const [range] = await Promise.all(reads);
      assert.equal((range as { kvs: Array<{ value: Buffer }> }).kvs[0]!.value.toString(), 'v');
      assert.equal(answered, 5);
    }
  } finally {
    await m.close();
  }
});

test('a proposal raft never applies is answered after the request timeout with etcd\'s error, and its waiter freed; applied later, it answers nobody', async () => {
  const m = await startTestMember();
  try {
    m.wal.hold(); // nothing becomes durable, so nothing commits: as an entry lost with its leader
    const errorOf = (p: Promise<unknown>) => p.then(() => 'applied', (e: Error) => e.message);
    const before = errorOf(m.server.put(PutRequest.fromPartial({ key: b('a'), value: b('v') })));
    // A leader elected just after the first proposal went out (etcd: it may have been lost with the old one).
    m.server.onLeaderChanged(m.server.leader, 0n);
    const t0 = performance.now();
    while (performance.now() === t0) await new Promise((r) => setImmediate(r));
    const after = errorOf(m.server.put(PutRequest.fromPartial({ key: b('b'), value: b('v') })));
    assert.equal(m.waits.size, 2);
    assert.equal(m.server.expireProposals(performance.now()), 0, 'not before the request timeout (7 s here)');
    assert.equal(m.server.expireProposals(performance.now() + 7_001), 2);
    assert.equal(await before, 'etcdserver: request timed out, possibly due to previous leader failure');
    assert.equal(await after, 'etcdserver: request timed out');
    assert.deepEqual([m.waits.size, m.waits.bytes], [0, 0]);
    m.wal.release();
    const r = await m.server.put(PutRequest.fromPartial({ key: b('c'), value: b('v') }));
    assert.equal(r.header?.revision, 4, 'the two expired puts applied after all (as in etcd: the client was told it timed out, not that it failed)');
  } finally {
    await m.close();
  }
});
