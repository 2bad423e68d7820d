// Txn as etcd's apply.go applies it (server/txn.ts) over a real MVCC store: compares,
// branches, nested txns, one revision per txn, every check before any write.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { isEtcdError } from '../errors/index.js';
import { Compare_CompareResult as R, Compare_CompareTarget as T } from '../proto/index.js';
import { b, cmp, keysOf, opDel, opPut, opRange, opTxn, openStore, putReq, rangeReq, tempDir, txnReq, type MvccStore } from '../mvcc/index.js';
import { applyTxn } from './txn.js';

async function withStore(fn: (s: MvccStore) => void | Promise<void>, opts = {}): Promise<void> {
  const dir = tempDir('concord-txn-');
  const s = openStore(dir, opts);
  try {
    await fn(s);
  } finally {
    await s.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const isErr = (kind: Parameters<typeof isEtcdError>[1]) => (e: unknown) => isEtcdError(e, kind);

test('txn compares every target with every result', () =>
  withStore(
    (s) => {
      s.put(putReq('k', 'mid', { lease: 3n })); // create 2, mod 2, version 1
      s.put(putReq('k', 'mid', { lease: 3n })); // mod 3, version 2
      const t = (c: object) => applyTxn(s, txnReq({ compare: [cmp({ key: b('k'), ...c })] })).succeeded;
      const cases: [object, R, boolean][] = [
        [{ target: T.VERSION, version: 2n }, R.EQUAL, true],
        [{ target: T.VERSION, version: 1n }, R.GREATER, true],
        [{ target: T.VERSION, version: 2n }, R.LESS, false],
        [{ target: T.VERSION, version: 3n }, R.NOT_EQUAL, true],
        [{ target: T.CREATE, createRevision: 2n }, R.EQUAL, true],
        [{ target: T.CREATE, createRevision: 3n }, R.LESS, true],
        [{ target: T.MOD, modRevision: 3n }, R.EQUAL, true],
        [{ target: T.MOD, modRevision: 3n }, R.GREATER, false],
        [{ target: T.VALUE, value: b('mid') }, R.EQUAL, true],
        [{ target: T.VALUE, value: b('a') }, R.GREATER, true],
        [{ target: T.VALUE, value: b('z') }, R.LESS, true],
        [{ target: T.VALUE, value: b('mid') }, R.NOT_EQUAL, false],
        [{ target: T.LEASE, lease: 3n }, R.EQUAL, true],
        [{ target: T.LEASE, lease: 0n }, R.GREATER, true],
      ];
      for (const [c, result, want] of cases) assert.equal(t({ ...c, result }), want, JSON.stringify({ c, result }, (_k, v) => (typeof v === 'bigint' ? String(v) : v)));
    },
    { leaseExists: () => true },
  ));

test('txn compare on a missing key: VALUE always fails, others compare against zero', () =>
  withStore((s) => {
    const t = (c: object) => applyTxn(s, txnReq({ compare: [cmp({ key: b('nope'), ...c })] })).succeeded;
    assert.equal(t({ target: T.VERSION, result: R.EQUAL, version: 0n }), true);
    assert.equal(t({ target: T.CREATE, result: R.EQUAL, createRevision: 0n }), true);
    assert.equal(t({ target: T.VALUE, result: R.EQUAL, value: b('') }), false);
    assert.equal(t({ target: T.VALUE, result: R.NOT_EQUAL, value: b('x') }), false);
  }));

test('txn range compare holds only if every key in the range satisfies it', () =>
  withStore((s) => {
    s.put(putReq('p/1', 'x'));
    s.put(putReq('p/2', 'x'));
    s.put(putReq('q', 'y'));
    const t = (c: object) => applyTxn(s, txnReq({ compare: [cmp({ key: b('p/'), rangeEnd: b('p0'), ...c })] })).succeeded;
    assert.equal(t({ target: T.VALUE, result: R.EQUAL, value: b('x') }), true);
    assert.equal(t({ target: T.MOD, result: R.LESS, modRevision: 3n }), false);
    assert.equal(t({ target: T.MOD, result: R.LESS, modRevision: 4n }), true);
    s.put(putReq('p/3', 'z'));
    assert.equal(t({ target: T.VALUE, result: R.EQUAL, value: b('x') }), false);
  }));

test('txn applies all its changes under one revision with sub revisions, responses per op', () =>
  withStore((s) => {
    s.put(putReq('a', '1'));
    s.put(putReq('gone', '1'));
    const r = applyTxn(s, 
      txnReq({
        compare: [cmp({ key: b('a'), target: T.VALUE, result: R.EQUAL, value: b('1') })],
        success: [opPut('a', '2'), opPut('b', '1'), opRange('a'), opDel('gone', { prevKv: true }), opPut('a', '3', { prevKv: true })],
        failure: [opPut('never', 'x')],
      }),
    );
    assert.equal(r.succeeded, true);
    assert.equal(r.header!.revision, 4);
    assert.equal(s.currentRevision, 4);
    assert.equal(r.responses[0].responsePut!.header!.revision, 4);
    assert.equal(r.responses[2].responseRange!.kvs[0].value.toString(), '2', 'a range in the txn sees its earlier put');
    assert.equal(r.responses[2].responseRange!.header!.revision, 4);
    assert.equal(r.responses[3].responseDeleteRange!.deleted, 1);
    assert.equal(r.responses[3].responseDeleteRange!.prevKvs[0].key.toString(), 'gone');
    assert.equal(r.responses[4].responsePut!.prevKv!.value.toString(), '2');
    const a = s.range(rangeReq('a')).kvs[0];
    assert.deepEqual([a.value.toString(), a.modRevision, a.version], ['3', 4, 3]);
    assert.equal(s.range(rangeReq('b')).kvs[0].modRevision, 4);
    assert.equal(s.range(rangeReq('never')).kvs.length, 0);
  }));

test('txn that changes nothing keeps the revision; failure branch runs on failed compare', () =>
  withStore((s) => {
    s.put(putReq('a', '1'));
    const ro = applyTxn(s, txnReq({ success: [opRange('a')] }));
    assert.equal(ro.header!.revision, 2);
    const f = applyTxn(s, txnReq({ compare: [cmp({ key: b('a'), target: T.VERSION, result: R.EQUAL, version: 9n })], success: [opPut('s', '1')], failure: [opPut('f', '1')] }));
    assert.equal(f.succeeded, false);
    assert.equal(f.header!.revision, 3);
    assert.deepEqual(keysOf(s.range(rangeReq('a', { rangeEnd: b('z') }))), ['a', 'f']);
    const del = applyTxn(s, txnReq({ success: [opDel('nothing')] }));
    assert.equal(del.header!.revision, 3);
  }));

test('nested txns: compares see the state before the txn, one revision for everything', () =>
  withStore((s) => {
    s.put(putReq('a', '1'));
    const r = applyTxn(s, 
      txnReq({
        success: [
          opPut('a', '2'),
          opTxn({
            // Evaluated before the outer put: a is still "1".
            compare: [cmp({ key: b('a'), target: T.VALUE, result: R.EQUAL, value: b('1') })],
            success: [opPut('inner', 'yes'), opTxn({ compare: [cmp({ key: b('zz'), target: T.VERSION, result: R.GREATER, version: 0n })], failure: [opPut('deep', 'f')] })],
            failure: [opPut('inner', 'no')],
          }),
        ],
      }),
    );
    assert.equal(r.header!.revision, 3);
    const inner = r.responses[1].responseTxn!;
    assert.equal(inner.succeeded, true);
    assert.equal(inner.header!.revision, 0, 'nested txn headers are empty, as in etcd');
    assert.equal(inner.responses[1].responseTxn!.succeeded, false);
    assert.equal(s.range(rangeReq('inner')).kvs[0].value.toString(), 'yes');
    assert.equal(s.range(rangeReq('deep')).kvs[0].modRevision, 3);
  }));

test('txn errors are raised before any write (no partial txn)', () =>
  withStore(async (s) => {
    s.put(putReq('a', '1'));
    s.put(putReq('a', '2'));
    assert.throws(() => applyTxn(s, txnReq({ success: [opPut('x', '1'), opPut('missing', '', { ignoreValue: true })] })), isErr('KeyNotFound'));
    assert.throws(() => applyTxn(s, txnReq({ success: [opPut('x', '1'), opTxn({ success: [opPut('y', '1', { lease: 4n })] })] })), isErr('LeaseNotFound'));
    assert.throws(() => applyTxn(s, txnReq({ success: [opPut('x', '1'), opRange('a', { revision: 99 })] })), isErr('FutureRev'));
    assert.throws(() => applyTxn(s, txnReq({ failure: [opPut('x', 'v', { ignoreValue: true })] })), isErr('ValueProvided'));
    await s.compact(3);
    assert.throws(() => applyTxn(s, txnReq({ success: [opPut('x', '1'), opRange('a', { revision: 2 })] })), isErr('Compacted'));
    assert.equal(s.currentRevision, 3);
    assert.equal(s.range(rangeReq('x')).kvs.length, 0);
  }));
