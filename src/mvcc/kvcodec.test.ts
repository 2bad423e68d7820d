import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyValue } from '../proto/index.js';
import { decodeKeyValue, encodeKeyValue, encodeTombstone } from './kvcodec.js';

test('KeyValue encoding is byte-identical to the generated (gogoproto-compatible) encoder', () => {
  const cases: KeyValue[] = [
    { key: Buffer.from('foo'), createRevision: 2, modRevision: 9, version: 3, value: Buffer.alloc(256, 7), lease: 0n },
    { key: Buffer.from('k'), createRevision: 2 ** 40 + 5, modRevision: 2 ** 52, version: 1, value: Buffer.alloc(0), lease: 0x694d71ddb4a1ba0bn },
    { key: Buffer.from('neg'), createRevision: 1, modRevision: 1, version: 1, value: Buffer.from('v'), lease: -5n },
    { key: Buffer.alloc(300, 1), createRevision: 127, modRevision: 128, version: 16384, value: Buffer.alloc(70000, 2), lease: 1n },
  ];
  for (const kv of cases) {
    const ours = encodeKeyValue(kv.key, kv.value, kv.createRevision, kv.modRevision, kv.version, kv.lease);
    const theirs = Buffer.from(KeyValue.encode(kv).finish());
    assert.ok(ours.equals(theirs), `encoding of ${kv.key.subarray(0, 5).toString()}`);
    assert.deepEqual(decodeKeyValue(ours), KeyValue.decode(theirs));
  }
});

test('a tombstone record is KeyValue{key} only', () => {
  assert.ok(encodeTombstone(Buffer.from('ab')).equals(Buffer.from([0x0a, 2, 0x61, 0x62])));
});
