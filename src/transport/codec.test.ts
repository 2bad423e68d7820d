// The stream codecs against bytes etcd's own encoders produce (msg_codec.go,
// msgappv2_codec.go, with gogoproto's raftpb bytes written out by hand from raft.proto), the
// message sequence of etcd's msgappv2_codec_test.go, and seeded fuzzing: any input either
// decodes or throws TransportDecodeError, and never buffers past its bound.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageType, newMessage, type Message, type Entry } from '../proto/index.js';
import { rng } from '../testkit/index.js';
import { StreamMessageDecoder, encodeStreamMessage, isLinkHeartbeat } from './message-codec.js';
import { MsgAppV2Decoder, MsgAppV2Encoder } from './msgappv2-codec.js';
import { TransportDecodeError } from './errors.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
// Plain Uint8Arrays in, so decoded byte fields compare equal to the Uint8Arrays sent.
const cat = (frames: Uint8Array[]) => new Uint8Array(Buffer.concat(frames));
const hexOf = (b: Uint8Array) => Buffer.from(b).toString('hex');
const data = new TextEncoder().encode('some data');
const entry = (term: number, index: number): Entry => ({ term, index, type: 0, data });
const app = (f: Partial<Message>) => newMessage({ type: MessageType.MsgApp, from: 1n, to: 2n, ...f });
const linkHeartbeat = newMessage({ type: MessageType.MsgHeartbeat });

// raftpb.Entry{Term:1, Index:4, Data:"some data"}: type, term, index, data (gogoproto order).
const entry4 = '0800 1001 1804 2209' + Buffer.from(data).toString('hex');
// The empty Snapshot gogoproto always writes: metadata{conf_state{auto_leave:false}, index, term}.
const emptySnapshot = '4a0a 1208 0a02 2800 1000 1800';
// raftpb.Message{Type:MsgApp, To:2, From:1, Term:1, LogTerm:1, Index:3, Entries:[entry4]}.
const msgApp3 = '0803 1002 1801 2001 2801 3003 3a11' + entry4 + '4000' + emptySnapshot + '5000 5800';

test('message stream: 8-byte big-endian length, then the message (msg_codec.go)', () => {
  const m = app({ term: 1, logTerm: 1, index: 3, entries: [entry(1, 4)] });
  const frame = cat([encodeStreamMessage(m)]);
  assert.equal(hexOf(frame), hexOf(hex('0000000000000031' + msgApp3)));
  const dec = new StreamMessageDecoder();
  dec.push(frame);
  assert.deepEqual(dec.next(), m);
  assert.equal(dec.next(), undefined);
});

test('message stream: a length above the limit is etcd\'s ErrExceedSizeLimit, before the body arrives', () => {
  const dec = new StreamMessageDecoder(1024);
  dec.push(hex('0000000000000401'));
  assert.throws(() => dec.next(), (e: unknown) => e instanceof TransportDecodeError && e.kind === 'exceeds-limit' && e.message === 'rafthttp: error limit exceeded');
  const huge = new StreamMessageDecoder();
  huge.push(hex('ffffffffffffffff'));
  assert.throws(() => huge.next(), TransportDecodeError);
});

test('message stream: a byte at a time decodes the same', () => {
  const ms = [app({ term: 1, logTerm: 1, index: 3, entries: [entry(1, 4)] }), linkHeartbeat, newMessage({ type: MessageType.MsgVote, from: 3n, to: 2n, term: 5, logTerm: 4, index: 9 })];
  const bytes = cat(ms.map((m) => encodeStreamMessage(m)));
  const dec = new StreamMessageDecoder();
  const out: Message[] = [];
  for (const b of bytes) {
    dec.push(Uint8Array.of(b));
    for (let m = dec.next(); m; m = dec.next()) out.push(m);
  }
  assert.deepEqual(out, ms);
  assert.ok(isLinkHeartbeat(out[1]!));
});

test('msgappv2: frames as etcd writes them (app, then app entries, then link heartbeat)', () => {
  const enc = new MsgAppV2Encoder();
  // Index 0 != carried term: a whole message (type 2).
  const first = app({ term: 1, logTerm: 1, index: 0, entries: [entry(1, 1), entry(1, 2), entry(1, 3)] });
  const f1 = cat([enc.encode(first)]);
  assert.equal(f1[0], 2);
  assert.equal(Buffer.from(f1).readBigUInt64BE(1), BigInt(f1.length - 9));
  // Carried (term 1, index 3) matches: type 1, count 1, size 17, entry, commit 0.
  const f2 = cat([enc.encode(app({ term: 1, logTerm: 1, index: 3, entries: [entry(1, 4)] }))]);
  assert.equal(hexOf(f2), hexOf(hex('01 0000000000000001 0000000000000011' + entry4 + '0000000000000000')));
  assert.equal(hexOf(cat([enc.encode(linkHeartbeat)])), '00');
});

test('msgappv2: etcd\'s msgappv2_codec_test.go sequence round-trips', () => {
  const tests: Message[] = [
    app({ term: 1, logTerm: 1, index: 0, entries: [entry(1, 1), entry(1, 2), entry(1, 3)] }),
    app({ term: 1, logTerm: 1, index: 3, entries: [entry(1, 4)] }),
    linkHeartbeat,
    app({ term: 1, logTerm: 1, index: 4, entries: [entry(1, 5)] }),
    app({ term: 3, logTerm: 1, index: 5, entries: [entry(3, 6)] }),
    linkHeartbeat,
    app({ term: 3, logTerm: 2, index: 6, entries: [entry(3, 7)] }),
    app({ term: 3, logTerm: 2, index: 7, entries: [] }),
    linkHeartbeat,
  ];
  const enc = new MsgAppV2Encoder();
  const dec = new MsgAppV2Decoder(2n, 1n);
  for (const [i, m] of tests.entries()) {
    dec.push(cat([enc.encode(m)]));
    assert.deepEqual(dec.next(), m, `#${i}`);
    assert.equal(dec.next(), undefined);
  }
});

test('msgappv2: an unknown frame type and hostile counts are typed errors', () => {
  const bad = new MsgAppV2Decoder(2n, 1n);
  bad.push(Uint8Array.of(7));
  assert.throws(() => bad.next(), (e: unknown) => e instanceof TransportDecodeError && e.message === 'failed to parse type 7 in msgappv2 stream');
  const count = new MsgAppV2Decoder(2n, 1n, 1 << 20);
  count.push(hex('01 00000000ffffffff'));
  assert.throws(() => count.next(), (e: unknown) => e instanceof TransportDecodeError && e.kind === 'exceeds-limit');
  const size = new MsgAppV2Decoder(2n, 1n, 1 << 20);
  size.push(hex('01 0000000000000002 0000000000100000'));
  assert.throws(() => size.next(), TransportDecodeError);
  const entryJunk = new MsgAppV2Decoder(2n, 1n);
  entryJunk.push(hex('01 0000000000000001 0000000000000002 ffff'));
  assert.throws(() => entryJunk.next(), (e: unknown) => e instanceof TransportDecodeError && e.kind === 'bad-protobuf');
});

function randomMessage(r: () => number, carried: { term: number; index: number }): Message {
  const roll = r();
  if (roll < 0.1) return linkHeartbeat;
  const term = roll < 0.6 ? carried.term : carried.term + Math.floor(r() * 2);
  const index = roll < 0.6 ? carried.index : Math.floor(r() * 100);
  const n = Math.floor(r() * 4);
  const entries = Array.from({ length: n }, (_, i) => ({ term, index: index + i + 1, type: 0, data: new TextEncoder().encode(String(r())) }));
  const m = app({ term, logTerm: roll < 0.6 ? term : Math.floor(r() * (term + 1)), index, entries, commit: Math.floor(r() * 1000) });
  return m;
}

test('fuzz: random MsgApp sequences round-trip through msgappv2 in random chunks', () => {
  const r = rng(20261201);
  for (let round = 0; round < 50; round++) {
    const enc = new MsgAppV2Encoder();
    const dec = new MsgAppV2Decoder(2n, 1n);
    const carried = { term: 1, index: 0 };
    const sent: Message[] = [];
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < 30; i++) {
      const m = randomMessage(r, carried);
      if (m.type === MessageType.MsgApp) {
        carried.term = m.term;
        carried.index = m.entries.length > 0 ? m.entries[m.entries.length - 1]!.index : m.index;
      }
      sent.push(m);
      chunks.push(enc.encode(m));
    }
    const bytes = cat(chunks);
    const got: Message[] = [];
    for (let pos = 0; pos < bytes.length;) {
      const len = 1 + Math.floor(r() * 40);
      dec.push(bytes.subarray(pos, pos + len));
      pos += len;
      for (let m = dec.next(); m; m = dec.next()) got.push(m);
    }
    assert.deepEqual(got, sent, `round ${round}`);
  }
});

test('fuzz: random and mutated bytes decode or throw TransportDecodeError, bounded', () => {
  const r = rng(7);
  const limit = 4096;
  const valid = cat([encodeStreamMessage(app({ term: 1, logTerm: 1, index: 3, entries: [entry(1, 4)] }))]);
  const v2 = cat([new MsgAppV2Encoder().encode(app({ term: 1, logTerm: 1, index: 0, entries: [entry(1, 1)] }))]);
  for (let i = 0; i < 3000; i++) {
    const base = i % 3 === 0 ? Buffer.from(Array.from({ length: Math.floor(r() * 64) }, () => Math.floor(r() * 256))) : Buffer.from(i % 3 === 1 ? valid : v2);
    for (let k = 0; k < 3; k++) base[Math.floor(r() * base.length)] = Math.floor(r() * 256);
    for (const dec of [new StreamMessageDecoder(limit), new MsgAppV2Decoder(2n, 1n, limit)]) {
      try {
        dec.push(base);
        for (let m = dec.next(); m; m = dec.next()) assert.ok(m);
      } catch (err) {
        assert.ok(err instanceof TransportDecodeError, `input ${hexOf(base)}: ${String(err)}`);
      }
      assert.ok(dec.bufferedBytes <= base.length);
    }
  }
});
