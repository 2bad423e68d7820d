import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { clientPreface, rewriteAuthority, scanClientStart } from './h2-authority.js';

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
  const s = scanClientStart(buf);
  assert.deepEqual(s.ack, { start: clientPreface.length + 9, end: clientPreface.length + 18 });
  assert.equal(s.headersEnd, buf.length);
  assert.equal(s.badAuthority, true);
  // Before the HEADERS frame is complete, nothing is decided about the authority.
  const partial = scanClientStart(buf.subarray(0, buf.length - 3));
  assert.equal(partial.headersEnd, undefined);
  assert.equal(partial.badAuthority, false);
});
