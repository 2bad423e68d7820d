import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isEtcdError } from '../errors/index.js';
import { etcdserverpb as pb } from '../proto/index.js';
import { checkPutRequest, checkRequestSize, checkTxn, requestIdVarintBytes } from './validate.js';
import { isTxnReadOnly } from '../server/index.js';

// Ops as in etcd's integration/v3_grpc_test.go TestV3TxnDuplicateKeys.
const b = (s: string): Buffer => Buffer.from(s);
const put = (k: string): pb.DeepPartial<pb.RequestOp> => ({ requestPut: { key: b(k), value: b('def') } });
const del = (k: string, end = ''): pb.DeepPartial<pb.RequestOp> => ({ requestDeleteRange: { key: b(k), rangeEnd: b(end) } });
const txnOp = (success: pb.DeepPartial<pb.RequestOp>[], failure: pb.DeepPartial<pb.RequestOp>[] = []): pb.DeepPartial<pb.RequestOp> =>
  ({ requestTxn: { success, failure } });
const putreq = put('abc');
const delKeyReq = del('abc');
const delInRangeReq = del('a', 'b');
const delOutOfRangeReq = del('abb', 'abc');
const txnDelReq = txnOp([delInRangeReq]);
const txnDelReqTwoSide = txnOp([delInRangeReq], [delInRangeReq]);
const txnPutReq = txnOp([putreq]);
const txnPutReqTwoSide = txnOp([putreq], [putreq]);

function errorOf(success: pb.DeepPartial<pb.RequestOp>[], maxTxnOps = 128, extra: pb.DeepPartial<pb.TxnRequest> = {}): string | null {
  try {
    checkTxn(pb.TxnRequest.fromPartial({ success, ...extra }), maxTxnOps);
    return null;
  } catch (e) {
    if (isEtcdError(e)) return e.kind;
    throw e;
  }
}

describe('txn duplicate keys (etcd TestV3TxnDuplicateKeys)', () => {
  const cases: [string, pb.DeepPartial<pb.RequestOp>[], string | null][] = [
    ['put, put of one key', [putreq, putreq], 'DuplicateKey'],
    ['put and delete of the key', [putreq, delKeyReq], 'DuplicateKey'],
    ['put and a delete range covering it', [putreq, delInRangeReq], 'DuplicateKey'],
    ['Then(Put(a), Then(Del(a)))', [putreq, txnDelReq], 'DuplicateKey'],
    ['Then(Del(a), Then(Put(a)))', [delInRangeReq, txnPutReq], 'DuplicateKey'],
    ['two nested txns each putting a in both branches', [txnPutReqTwoSide, txnPutReqTwoSide], 'DuplicateKey'],
    ['delete elsewhere and a nested put in both branches', [delOutOfRangeReq, txnPutReqTwoSide], null],
    ['nested deletes only', [txnDelReq, txnDelReqTwoSide], null],
    ['deletes overlapping each other', [delKeyReq, delInRangeReq, delKeyReq, delInRangeReq], null],
    ['put next to a delete range ending at the key', [putreq, delOutOfRangeReq], null],
  ];
  for (const [name, ops, want] of cases) {
    test(`${name}: ${want ?? 'accepted'}`, () => assert.equal(errorOf(ops), want));
  }

  test('a from-key delete (range_end "\\0") never conflicts, as in etcd', () => {
    assert.equal(errorOf([put('abc'), del('a', '\0')]), null);
  });

  test('a delete with an open end ("" after a range) is not how from-key is spelled; prefix ranges conflict', () => {
    assert.equal(errorOf([put('abc'), del('ab', 'ac')]), 'DuplicateKey');
  });
});

describe('txn op limits and shapes', () => {
  test('more than max-txn-ops in any one list is TooManyOps', () => {
    const ops = Array.from({ length: 4 }, (_, i) => put(`k${i}`));
    assert.equal(errorOf(ops, 3), 'TooManyOps');
    assert.equal(errorOf(ops, 4), null);
    assert.equal(errorOf([], 3, { compare: Array.from({ length: 4 }, () => ({ key: b('x') })) }), 'TooManyOps');
  });

  test('a nested txn is held to max-txn-ops minus its parent\'s op count, as etcd does', () => {
    const inner = txnOp([put('x'), put('y')]);
    assert.equal(errorOf([inner, put('z')], 4), null); // 2 ops inside, budget 4-2 = 2
    assert.equal(errorOf([inner, put('z'), put('w')], 4), 'TooManyOps'); // budget 4-3 = 1
  });

  test('an empty op is "key not found"; an empty compare key is EmptyKey', () => {
    assert.equal(errorOf([{}]), 'KeyNotFound');
    assert.equal(errorOf([], 128, { compare: [{ key: Buffer.alloc(0) }] }), 'EmptyKey');
    assert.equal(errorOf([{ requestRange: { key: Buffer.alloc(0) } }]), 'EmptyKey');
  });

  test('read-only txns are those of ranges only: a nested txn makes a write (etcd\'s isTxnReadonly)', () => {
    assert.equal(isTxnReadOnly(pb.TxnRequest.fromPartial({ success: [{ requestRange: { key: b('a') } }], failure: [{ requestRange: { key: b('b') } }] })), true);
    assert.equal(isTxnReadOnly(pb.TxnRequest.fromPartial({ success: [{ requestRange: { key: b('a') } }, txnOp([{ requestRange: { key: b('b') } }])] })), false);
    assert.equal(isTxnReadOnly(pb.TxnRequest.fromPartial({ failure: [txnOp([], [put('a')])] })), false);
  });
});

describe('put and size checks', () => {
  test('ignore_value with a value and ignore_lease with a lease are refused', () => {
    assert.throws(() => checkPutRequest(pb.PutRequest.fromPartial({ key: b('k'), value: b('v'), ignoreValue: true })),
      (e) => isEtcdError(e, 'ValueProvided'));
    assert.throws(() => checkPutRequest(pb.PutRequest.fromPartial({ key: b('k'), lease: 5n, ignoreLease: true })),
      (e) => isEtcdError(e, 'LeaseProvided'));
    checkPutRequest(pb.PutRequest.fromPartial({ key: b('k'), ignoreValue: true, ignoreLease: true }));
  });

  test('the size check matches etcd 3.4.23\'s boundary (largest Put accepted at the default 1.5 MiB)', () => {
    // Measured on real etcd (member id 8e9e05c52164694d): a Put of key "k" with a 1572840-byte
    // value (message 1572847 bytes) is accepted, one byte more is "request is too large".
    const idBytes = requestIdVarintBytes(0x8e9e05c52164694dn);
    assert.equal(idBytes, 9);
    checkRequestSize(1572847, 1572864, idBytes);
    assert.throws(() => checkRequestSize(1572848, 1572864, idBytes), (e) => isEtcdError(e, 'RequestTooLarge'));
  });

  test('request ids of members whose low id bits are high take a 10-byte varint', () => {
    assert.equal(requestIdVarintBytes(0xffffn), 10);
    assert.equal(requestIdVarintBytes(0x0001n), 7);
  });
});
