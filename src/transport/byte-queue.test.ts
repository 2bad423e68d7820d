// ByteQueue reads across chunk boundaries, and what the stream decoders get from it: plain
// Uint8Array views of the received chunks (no Buffer built per frame, no copy per entry).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageType, newMessage, type Entry } from '../proto/index.js';
import { ByteQueue, uint64BE } from './byte-queue.js';
import { MsgAppV2Decoder, MsgAppV2Encoder } from './msgappv2-codec.js';

test('byte queue: bytes and uint64s read in place or across chunks alike', () => {
  const q = new ByteQueue();
  const words = [0, 1, 2 ** 40 + 5, Number.MAX_SAFE_INTEGER];
  const bytes = Buffer.concat([Buffer.of(7), ...words.map((w) => Buffer.from(uint64BE(w))), Buffer.of(9)]);
  // Chunks of 3 bytes: every uint64 straddles a boundary somewhere, some sit inside one chunk.
  for (let o = 0; o < bytes.length; o += 3) q.push(bytes.subarray(o, o + 3));
  assert.equal(q.byte(), 7);
  for (const w of words) assert.equal(q.uint64(), w);
  assert.equal(q.byte(), 9);
  assert.equal(q.bufferedBytes, 0);

  const big = new ByteQueue();
  big.push(Buffer.from(uint64BE(2 ** 53)));
  assert.equal(big.uint64(), undefined, 'past a safe integer');
});

test('byte queue: take is a plain Uint8Array, a view inside one chunk and a copy across two', () => {
  const q = new ByteQueue();
  const a = Buffer.from('abcdef');
  const b = Buffer.from('ghij');
  q.push(a);
  q.push(b);
  const inside = q.take(4);
  assert.equal(Object.getPrototypeOf(inside), Uint8Array.prototype);
  assert.equal(inside.buffer, a.buffer, 'a view of the chunk');
  assert.equal(Buffer.from(inside).toString(), 'abcd');
  const across = q.take(4);
  assert.equal(Object.getPrototypeOf(across), Uint8Array.prototype);
  assert.notEqual(across.buffer, a.buffer);
  assert.equal(Buffer.from(across).toString(), 'efgh');
  assert.equal(Buffer.from(q.take(2)).toString(), 'ij');
});

test('msgappv2: an entry received whole in one chunk keeps its data as a view of that chunk', () => {
  const data = Buffer.alloc(1300, 0x5a);
  const entries: Entry[] = [1, 2, 3].map((i) => ({ term: 2, index: 10 + i, type: 0, data }));
  const enc = new MsgAppV2Encoder();
  const first = enc.encode(newMessage({ type: MessageType.MsgApp, from: 1n, to: 2n, term: 2, logTerm: 2, index: 10, entries: [], commit: 10 }));
  const frame = Buffer.from(enc.encode(newMessage({ type: MessageType.MsgApp, from: 1n, to: 2n, term: 2, logTerm: 2, index: 10, entries, commit: 12 })));
  const dec = new MsgAppV2Decoder(2n, 1n);
  dec.push(Buffer.from(first));
  assert.equal(dec.next()?.entries.length, 0);
  dec.push(frame);
  const m = dec.next();
  assert.ok(m);
  assert.deepEqual(m.entries.map((e) => e.index), [11, 12, 13]);
  assert.equal(m.commit, 12);
  for (const e of m.entries) {
    assert.deepEqual(Buffer.from(e.data!), data);
    assert.equal(e.data!.buffer, frame.buffer, 'no copy per entry');
  }
});
