import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Compare, InternalRaftRequest, RequestOp, TxnRequest, WatchRequest, sizeVarint, writeVarint,
} from './index.js';

const hex = (s: string): Buffer => Buffer.from(s, 'hex');
/** The oneof members a decoded message holds. */
const members = (m: object, names: readonly string[]): string[] =>
  names.filter((n) => (m as Record<string, unknown>)[n] !== undefined);
const opNames = ['requestRange', 'requestPut', 'requestDeleteRange', 'requestTxn'];
const compareNames = ['version', 'createRevision', 'modRevision', 'value', 'lease'];

// put(a=1), delete(b), range(c): each as a RequestOp field.
const putA = '12060a0161120131';
const delB = '1a030a0162';
const rangeC = '0a030a0163';

test('RequestOp keeps the last member on the wire, whichever it is', () => {
  assert.deepEqual(members(RequestOp.decode(hex(putA + delB)), opNames), ['requestDeleteRange']);
  assert.deepEqual(members(RequestOp.decode(hex(delB + putA)), opNames), ['requestPut']);
  assert.deepEqual(members(RequestOp.decode(hex(putA + delB + rangeC)), opNames), ['requestRange']);
  // A member repeated is replaced, not merged (gogo builds a new message for each).
  const twice = RequestOp.decode(hex(putA + '12050a0163' + '2802'));
  assert.equal(twice.requestPut!.key.toString(), 'c');
  assert.equal(twice.requestPut!.value.length, 0);
});

test('a RequestOp inside a txn, a nested txn and a raft entry follows the same rule', () => {
  const op = putA + delB; // 13 bytes
  const txn = hex('120d' + op);
  assert.deepEqual(members(TxnRequest.decode(txn).success[0]!, opNames), ['requestDeleteRange']);
  const nested = hex('220f' + '120d' + op); // a RequestOp holding that txn
  const outer = TxnRequest.decode(Buffer.concat([hex('1211'), nested]));
  assert.deepEqual(members(outer.success[0]!.requestTxn!.success[0]!, opNames), ['requestDeleteRange']);
  // InternalRaftRequest field 6 (txn): the entry an etcd member or a restart decodes.
  const entry = InternalRaftRequest.decode(Buffer.concat([hex('320f'), txn]));
  assert.deepEqual(members(entry.txn!.success[0]!, opNames), ['requestDeleteRange']);
});

test('Compare keeps the last target member on the wire', () => {
  // target VALUE, key x; value "x" (field 7), version 0 (field 4), in both orders.
  const valueThenVersion = Compare.decode(hex('10031a01783a01782000'));
  assert.deepEqual(members(valueThenVersion, compareNames), ['version']);
  assert.equal(valueThenVersion.version, 0n);
  const versionThenValue = Compare.decode(hex('10031a017820003a0178'));
  assert.deepEqual(members(versionThenValue, compareNames), ['value']);
  assert.equal(versionThenValue.value!.toString(), 'x');
  // Fields outside the oneof are kept whatever comes after them.
  const c = Compare.decode(hex('0801' + '1a0178' + '4005' + '820401' + '79' + '3001'));
  assert.deepEqual({ result: c.result, key: c.key.toString(), rangeEnd: c.rangeEnd.toString(), modRevision: c.modRevision }, { result: 1, key: 'x', rangeEnd: 'y', modRevision: 1n });
  assert.deepEqual(members(c, compareNames), ['modRevision']);
});

test('WatchRequest keeps the last request on the wire', () => {
  const create = '0a030a0161'; // create_request{key "a"}
  const cancel = '12020805'; // cancel_request{watch_id 5}
  assert.deepEqual(members(WatchRequest.decode(hex(create + cancel)), ['createRequest', 'cancelRequest', 'progressRequest']), ['cancelRequest']);
  assert.deepEqual(members(WatchRequest.decode(hex(cancel + create)), ['createRequest', 'cancelRequest', 'progressRequest']), ['createRequest']);
});

test('well-formed messages decode as they encode', () => {
  const samples: Array<[{ encode(m: never): { finish(): Uint8Array } ; decode(b: Uint8Array): unknown }, unknown]> = [
    [RequestOp, RequestOp.fromPartial({ requestPut: { key: Buffer.from('k'), value: Buffer.from('v'), lease: 7n, prevKv: true } })],
    [RequestOp, RequestOp.fromPartial({ requestRange: { key: Buffer.from('k'), rangeEnd: Buffer.from('l'), limit: 3 } })],
    [RequestOp, RequestOp.fromPartial({ requestTxn: { compare: [{ key: Buffer.from('k'), target: 3, value: Buffer.from('') }], success: [{ requestDeleteRange: { key: Buffer.from('k') } }] } })],
    [Compare, Compare.fromPartial({ result: 2, target: 1, key: Buffer.from('k'), createRevision: -1n, rangeEnd: Buffer.from([0]) })],
    [Compare, Compare.fromPartial({ target: 4, key: Buffer.from('k'), lease: 0n })],
    [WatchRequest, WatchRequest.fromPartial({ createRequest: { key: Buffer.from('k'), startRevision: 3, prevKv: true, filters: [1] } })],
    [WatchRequest, WatchRequest.fromPartial({ progressRequest: {} })],
  ];
  for (const [codec, m] of samples) assert.deepEqual(codec.decode(codec.encode(m as never).finish()), m);
});

test('the nesting limit holds through the replaced decoders', () => {
  // 60 RequestOp-in-Txn levels: 120 messages, past the generated decoders' 100.
  let b = hex('');
  for (let i = 0; i < 60; i++) {
    const op = Buffer.concat([hex('22'), varint(b.length), b]);
    b = Buffer.concat([hex('12'), varint(op.length), op]);
  }
  assert.throws(() => TxnRequest.decode(b), /recursion limit/);
});

function varint(n: number): Buffer {
  const b = Buffer.alloc(sizeVarint(n));
  writeVarint(b, 0, n);
  return b;
}
