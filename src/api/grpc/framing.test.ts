import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GrpcCode } from '../../errors/index.js';
import { RangeRequest } from '../../proto/index.js';
import { MessageReader, frameBytes, frameMessage } from './framing.js';
import { GrpcStatusError, encodeGrpcMessage, parseGrpcTimeout } from './status.js';

function collect(max = 1 << 20) {
  const got: [boolean, string][] = [];
  const reader = new MessageReader({ onMessage: (c, b) => got.push([c, b.toString()]) }, max);
  return { got, reader };
}

test('several messages in one chunk and one message over many chunks are both reassembled', () => {
  const all = Buffer.concat(['a', 'bb', '', 'cccc'].map((s) => frameBytes(Buffer.from(s))));
  for (const step of [1, 2, 3, 5, 7, all.length]) {
    const { got, reader } = collect();
    for (let i = 0; i < all.length; i += step) reader.push(all.subarray(i, i + step));
    assert.deepEqual(got.map((g) => g[1]), ['a', 'bb', '', 'cccc'], `step ${step}`);
    assert.equal(reader.idle, true);
  }
});

test('the compressed flag is reported per message', () => {
  const f = frameBytes(Buffer.from('z'));
  f[0] = 1;
  const { got, reader } = collect();
  reader.push(f);
  assert.deepEqual(got, [[true, 'z']]);
});

test('an oversized length prefix is refused before its body arrives', () => {
  const { reader } = collect(10);
  const head = Buffer.from([0, 0, 0, 0, 11]);
  assert.throws(() => reader.push(head), (e) => e instanceof GrpcStatusError && e.code === GrpcCode.ResourceExhausted
    && e.message === 'grpc: received message larger than max (11 vs. 10)');
});

test('frameMessage writes the prefix in place around the encoded message', () => {
  const msg = RangeRequest.fromPartial({ key: Buffer.from('key'), limit: 7 });
  const framed = frameMessage(RangeRequest, msg);
  const plain = RangeRequest.encode(msg).finish();
  assert.equal(framed[0], 0);
  assert.equal(framed.readUInt32BE(1), plain.length);
  assert.deepEqual(framed.subarray(5), Buffer.from(plain));
});

test('grpc-message is percent-encoded as the spec says; plain ASCII is untouched', () => {
  assert.equal(encodeGrpcMessage('etcdserver: key is not provided'), 'etcdserver: key is not provided');
  assert.equal(encodeGrpcMessage('100%\n'), '100%25%0A');
  assert.equal(encodeGrpcMessage('é'), '%C3%A9');
});

test('grpc-timeout units parse to milliseconds; malformed values are ignored', () => {
  assert.equal(parseGrpcTimeout('5S'), 5000);
  assert.equal(parseGrpcTimeout('2M'), 120_000);
  assert.equal(parseGrpcTimeout('1H'), 3_600_000);
  assert.equal(parseGrpcTimeout('250m'), 250);
  assert.equal(parseGrpcTimeout('1000u'), 1);
  assert.equal(parseGrpcTimeout('1000000n'), 1);
  assert.equal(parseGrpcTimeout('123456789S'), undefined); // more than 8 digits
  assert.equal(parseGrpcTimeout('5x'), undefined);
  assert.equal(parseGrpcTimeout(undefined), undefined);
});
