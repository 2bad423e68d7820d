import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyValue } from '../proto/index.js';
import { decodeKeyValue, encodeKeyValue, encodeTombstone, readIndexFields, type RecordIndexFields } from './kvcodec.js';

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

test('readIndexFields takes the key (latin1), create revision, version and lease of a record, as decodeKeyValue does', () => {
  const out: RecordIndexFields = { key: 'stale', createRevision: 9, version: 9, lease: 9n };
  const cases: [Buffer, Buffer][] = [
    [encodeKeyValue(Buffer.from([0x66, 0xff, 0x00, 0x80]), Buffer.alloc(5000, 3), 2 ** 40 + 5, 2 ** 41, 16384, -5n), Buffer.alloc(0)],
    [encodeKeyValue(Buffer.from('k'), Buffer.alloc(0), 3, 4, 1, 0x694d71ddb4a1ba0bn), Buffer.alloc(0)],
    [encodeTombstone(Buffer.from('gone')), Buffer.alloc(0)],
    [Buffer.alloc(0), Buffer.alloc(0)], // bump-revision's empty record
  ];
  for (const [rec] of cases) {
    const kv = decodeKeyValue(rec);
    // In a larger buffer, as LMDB's shared read buffer hands it: only the record's bytes count.
    const inPlace = Buffer.concat([rec, Buffer.alloc(16, 0x0a)]).subarray(0, rec.length);
    assert.deepEqual({ ...readIndexFields(new Uint8Array(inPlace.buffer, inPlace.byteOffset, inPlace.length), out) },
      { key: kv.key.toString('latin1'), createRevision: kv.createRevision, version: kv.version, lease: kv.lease });
  }
  assert.throws(() => readIndexFields(Buffer.from([0x0a, 9, 1, 2]), out), /truncated/);
});
