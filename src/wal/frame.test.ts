import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32c } from '@node-rs/crc32';
import { readFrameSize, writeFrameSize, padBytesFor } from './frame.js';
import { RecordEncoder } from './encoder.js';
import { decodeSegment } from './decoder.js';
import { decodeWalRecord, encodeWalRecord } from '../proto/index.js';

// From etcd's wal/record_test.go: a type-1 record written before padding existed.
const infoData = Buffer.from('\b\xef\xfd\x02', 'latin1');
const infoRecord = Buffer.concat([
  Buffer.from('\x0e\x00\x00\x00\x00\x00\x00\x00\b\x01\x10\x99\xb5\xe4\xd0\x03\x1a\x04', 'latin1'),
  infoData,
]);

test('crc32c chains like Go crc32.Update with the Castagnoli table', () => {
  assert.equal(crc32c(Buffer.from('123456789')) >>> 0, 0xe3069283);
  const a = Buffer.from('hello '), b = Buffer.from('world');
  assert.equal(crc32c(b, crc32c(a)), crc32c(Buffer.concat([a, b])));
  // etcd's test vector: the crc its record holds for infoData.
  assert.equal(decodeWalRecord(infoRecord, 8).crc, crc32c(infoData) >>> 0);
});

test('frame length word carries padding in its top byte as etcd encodes it', () => {
  for (const n of [0, 1, 7, 8, 9, 14, 15, 16, 1000, 1 << 20]) {
    const buf = Buffer.alloc(8);
    const pad = writeFrameSize(buf, 0, n);
    assert.equal(pad, padBytesFor(n));
    assert.equal((n + pad) % 8, 0);
    const want = pad === 0 ? BigInt(n) : BigInt(n) | (BigInt(0x80 | pad) << 56n);
    assert.equal(buf.readBigUInt64LE(0), want);
    const got = readFrameSize(buf, 0);
    assert.equal(got.recBytes, n);
    assert.equal(got.padBytes, pad);
  }
});

test('reads a record etcd wrote without padding', async () => {
  const recs: number[] = [];
  const res = await decodeSegment(infoRecord, 'x.wal', true, 0, (r) => recs.push(r.type));
  assert.deepEqual(recs, [1]);
  assert.equal(res.end, infoRecord.length);
});

test('encoder writes the same record bytes as the walpb codec, padded to 8', () => {
  const enc = new RecordEncoder(0);
  enc.appendData(1, infoData);
  const out = enc.bytes();
  const rec = encodeWalRecord({ type: 1, crc: crc32c(infoData) >>> 0, data: infoData });
  assert.deepEqual(out.subarray(8, 8 + rec.length), Buffer.from(rec));
  assert.deepEqual(out.subarray(8, 8 + rec.length), infoRecord.subarray(8));
  assert.equal(out.length % 8, 0);
  assert.equal(out.readBigUInt64LE(0), BigInt(rec.length) | (BigInt(0x80 | padBytesFor(rec.length)) << 56n));
});

test('entry records chain crc across records and crc records restate it', async () => {
  const enc = new RecordEncoder(0);
  enc.appendCrc();
  for (let i = 1; i <= 50; i++) enc.appendEntry({ term: 1, index: i, type: 0, data: Buffer.alloc(i, i) });
  const crcAfter = enc.crc;
  enc.appendCrc();
  const types: number[] = [];
  const res = await decodeSegment(Buffer.from(enc.bytes()), 'x.wal', true, 0, (r) => types.push(r.type));
  assert.equal(types.length, 52);
  assert.equal(res.crc, crcAfter);
  assert.equal(res.torn, undefined);
});
