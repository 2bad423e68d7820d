import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ErrorCode, Flag, FrameReader, FrameType, H2Error, frame } from './frames.js';

interface Frame { type: number; flags: number; stream: number; payload: Buffer }
interface HeaderBlock { stream: number; endStream: boolean; block: Buffer }

function collect(maxFrame = 16_384, maxBlock = 1024): { reader: FrameReader; frames: Frame[]; blocks: HeaderBlock[] } {
  const frames: Frame[] = [];
  const blocks: HeaderBlock[] = [];
  const reader = new FrameReader({
    onFrame: (type, flags, stream, payload) => frames.push({ type, flags, stream, payload: Buffer.from(payload) }),
    onHeaderBlock: (stream, endStream, block) => blocks.push({ stream, endStream, block: Buffer.from(block) }),
  }, maxFrame, maxBlock);
  return { reader, frames, blocks };
}

function h2Code(fn: () => void): number {
  try { fn(); } catch (e) { if (e instanceof H2Error) return e.code; throw e; }
  return -1;
}

const sample = Buffer.concat([
  frame(FrameType.settings, 0, 0, Buffer.from([0, 4, 0, 1, 0, 0])),
  frame(FrameType.headers, Flag.padded | Flag.priority, 1, Buffer.concat([Buffer.from([2, 0, 0, 0, 0, 16]), Buffer.from('abc'), Buffer.alloc(2)])),
  frame(FrameType.continuation, Flag.endHeaders, 1, Buffer.from('def')),
  frame(FrameType.data, Flag.endStream, 1, Buffer.from('hello')),
  frame(FrameType.ping, 0, 0, Buffer.alloc(8, 7)),
  frame(FrameType.headers, Flag.endHeaders | Flag.endStream, 3, Buffer.from('xyz')),
]);

describe('FrameReader', () => {
  test('the same frames and header blocks whatever the chunking', () => {
    const whole = collect();
    whole.reader.push(sample);
    assert.deepEqual(whole.frames.map((f) => f.type), [FrameType.settings, FrameType.data, FrameType.ping]);
    assert.deepEqual(whole.blocks.map((b) => [b.stream, b.endStream, b.block.toString()]), [[1, false, 'abcdef'], [3, true, 'xyz']]);
    for (let seed = 1; seed < 200; seed++) {
      const split = collect();
      let at = 0;
      let s = seed;
      while (at < sample.length) {
        s = (s * 1103515245 + 12345) % 2 ** 31;
        const n = 1 + (s % 23);
        split.reader.push(sample.subarray(at, at + n));
        at += n;
      }
      assert.deepEqual(split.frames, whole.frames, `seed ${seed}`);
      assert.deepEqual(split.blocks, whole.blocks, `seed ${seed}`);
      assert.equal(split.reader.midFrame, false);
    }
  });

  test('a frame longer than the size we announced is FRAME_SIZE_ERROR, even before its payload arrives', () => {
    const big = frame(FrameType.data, 0, 1, Buffer.alloc(101));
    assert.equal(h2Code(() => collect(100).reader.push(big)), ErrorCode.frameSize);
    assert.equal(h2Code(() => collect(100).reader.push(big.subarray(0, 9))), ErrorCode.frameSize);
    const r = collect(100).reader;
    r.push(big.subarray(0, 4));
    assert.equal(h2Code(() => r.push(big.subarray(4, 9))), ErrorCode.frameSize);
  });

  test('padding past the payload is PROTOCOL_ERROR', () => {
    assert.equal(h2Code(() => collect().reader.push(frame(FrameType.headers, Flag.padded | Flag.endHeaders, 1, Buffer.from([5, 1, 2])))), ErrorCode.protocol);
    assert.equal(h2Code(() => collect().reader.push(frame(FrameType.headers, Flag.priority | Flag.endHeaders, 1, Buffer.from([1, 2])))), ErrorCode.protocol);
  });

  test('a header block is not interrupted, not continued without HEADERS, and bounded in bytes', () => {
    const open = frame(FrameType.headers, 0, 1, Buffer.from('a'));
    assert.equal(h2Code(() => collect().reader.push(Buffer.concat([open, frame(FrameType.ping, 0, 0, Buffer.alloc(8))]))), ErrorCode.protocol);
    assert.equal(h2Code(() => collect().reader.push(Buffer.concat([open, frame(FrameType.continuation, 0, 3, Buffer.from('b'))]))), ErrorCode.protocol);
    assert.equal(h2Code(() => collect().reader.push(frame(FrameType.continuation, Flag.endHeaders, 1, Buffer.from('b')))), ErrorCode.protocol);
    const r = collect(16_384, 1024).reader;
    r.push(open);
    const more = frame(FrameType.continuation, 0, 1, Buffer.alloc(600));
    r.push(more);
    assert.equal(h2Code(() => r.push(more)), ErrorCode.enhanceYourCalm);
  });

  test('HEADERS making its stream depend on itself is PROTOCOL_ERROR', () => {
    assert.equal(h2Code(() => collect().reader.push(frame(FrameType.headers, Flag.priority | Flag.endHeaders, 3, Buffer.from([0, 0, 0, 3, 16, 0x82])))), ErrorCode.protocol);
    assert.equal(h2Code(() => collect().reader.push(frame(FrameType.headers, Flag.priority | Flag.endHeaders, 3, Buffer.from([0, 0, 0, 1, 16, 0x82])))), -1);
  });

  test('HEADERS on stream 0 is PROTOCOL_ERROR', () => {
    assert.equal(h2Code(() => collect().reader.push(frame(FrameType.headers, Flag.endHeaders, 0, Buffer.from('a')))), ErrorCode.protocol);
  });
});
