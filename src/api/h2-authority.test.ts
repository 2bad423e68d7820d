import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { HpackError, clientPreface, rewriteAuthority } from './h2-authority.js';
import { HandshakeBuffer } from './h2-handshake.js';

const require = createRequire(import.meta.url);
const hpack = require('hpack.js') as {
  compressor: { create(o: { table: { size: number } }): { write(h: Array<{ name: string; value: string; huffman?: boolean }>): void; read(): Buffer } };
  decompressor: { create(o: { table: { size: number } }): { write(b: Buffer): void; execute(): void; read(): { name: string; value: string } | null } };
};

function headersOf(block: Buffer): Record<string, string> {
  const d = hpack.decompressor.create({ table: { size: 4096 } });
  d.write(block);
  d.execute();
  const out: Record<string, string> = {};
  for (let h = d.read(); h; h = d.read()) out[h.name] = h.value;
  return out;
}

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}

const request = (authority: string, huffman: boolean) => [
  { name: ':method', value: 'POST' }, { name: ':scheme', value: 'http' },
  { name: ':path', value: '/etcdserverpb.Maintenance/Status' },
  { name: ':authority', value: authority, huffman }, { name: 'content-type', value: 'application/grpc' },
];

test('a URL-shaped :authority is rewritten to one of the same length that nghttp2 accepts', () => {
  for (const huffman of [true, false]) {
    const c = hpack.compressor.create({ table: { size: 4096 } });
    c.write(request('http://127.0.0.1:2379', huffman));
    const block = c.read();
    const fixed = rewriteAuthority(block);
    assert.ok(fixed, 'expected a rewrite');
    const h = headersOf(fixed);
    assert.equal(h[':authority'], 'http:--127.0.0.1:2379');
    assert.equal(h[':authority']!.length, 'http://127.0.0.1:2379'.length);
    assert.equal(h[':path'], '/etcdserverpb.Maintenance/Status');
  }
});

test('an ordinary authority is left alone', () => {
  const c = hpack.compressor.create({ table: { size: 4096 } });
  c.write(request('127.0.0.1:2379', true));
  assert.equal(rewriteAuthority(c.read()), undefined);
});

test('the connection scan finds the ACK of our SETTINGS and the first request\'s authority', () => {
  const c = hpack.compressor.create({ table: { size: 4096 } });
  c.write(request('http://127.0.0.1:2379', true));
  const settings = frame(4, 0, 0, Buffer.alloc(0));
  const ack = frame(4, 1, 0, Buffer.alloc(0));
  const headers = frame(1, 0x4, 1, c.read());
  const buf = Buffer.concat([clientPreface, settings, ack, headers]);
  // Fed a byte at a time: the scan resumes where it stopped.
  const s = new HandshakeBuffer(1 << 16);
  for (let i = 0; i < buf.length - 3; i++) { assert.ok(s.push(buf.subarray(i, i + 1))); if (i >= clientPreface.length) s.scan(); }
  // Before the HEADERS frame is complete, nothing is decided about the authority.
  assert.equal(s.headersEnd, undefined);
  assert.equal(s.badAuthority, false);
  assert.ok(s.push(buf.subarray(buf.length - 3)));
  s.scan();
  assert.deepEqual(s.ack, { start: clientPreface.length + 9, end: clientPreface.length + 18 });
  assert.equal(s.headersEnd, buf.length);
  assert.equal(s.badAuthority, true);
  assert.deepEqual(s.bytes, buf);
});

test('the handshake buffer refuses bytes past its bound', () => {
  const s = new HandshakeBuffer(100);
  assert.ok(s.push(Buffer.alloc(60)));
  assert.equal(s.push(Buffer.alloc(41)), false);
  assert.equal(s.length, 60);
});

test('malformed header blocks are typed HPACK errors, never a crash or a read past the end', () => {
  const bad = [
    '000561', // literal, new name of length 5 with 1 byte present (the case)
    '82ff', // indexed with a truncated multi-byte integer
    '41', // literal with incremental indexing, value missing
    '0182ffff', // huffman :authority value with all-ones (EOS) padding longer than 7 bits
    '3fffffffffffff7f', // table size update whose integer overflows
    '418a' + 'ff'.repeat(10), // huffman string of EOS codes
  ];
  for (const hex of bad) assert.throws(() => rewriteAuthority(Buffer.from(hex, 'hex')), HpackError, hex);
  // A header block the scan cannot decode is left for node:http2 to refuse.
  const s = new HandshakeBuffer(1 << 16);
  s.push(Buffer.concat([clientPreface, frame(1, 0x4, 1, Buffer.from('000561', 'hex'))]));
  s.scan();
  assert.equal(s.headersEnd, s.length);
  assert.equal(s.badAuthority, false);
});
