import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import http2 from 'node:http2';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import * as grpc from '@grpc/grpc-js';
import { HpackDecoder, HpackError, encodeHeaderBlock } from './hpack.js';
import { huffmanDecode, huffmanDecodedMax, huffmanEncode, huffmanEncodedLength, huffmanInvalid } from './huffman.js';
import { rng } from '../../testkit/index.js';

const require = createRequire(import.meta.url);
interface HpackJsHeader { name: string; value: string; huffman?: boolean; incremental?: boolean; neverIndex?: boolean }
const hpackJs = require('hpack.js') as {
  compressor: { create(o: { table: { maxSize: number } }): { write(h: HpackJsHeader[]): void; read(): Buffer | null; updateTableSize(n: number): void } };
  decompressor: { create(o: { table: { maxSize: number } }): { write(b: Buffer): void; execute(): void; read(): { name: string; value: string } | null } };
};

type Field = [string, string];
const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function decodeAll(d: HpackDecoder, block: Uint8Array): Field[] {
  const out: Field[] = [];
  d.decode(block, (name, value) => out.push([name, value]));
  return out;
}

/** The dynamic table as [name, value] from newest (index 62) to oldest. */
function tableOf(d: HpackDecoder): Field[] {
  const out: Field[] = [];
  for (let i = 62; d.tableEntry(i); i++) out.push([...d.tableEntry(i)!] as Field);
  return out;
}

// ---- RFC 7541 Appendix C ----

test('C.2: single representations (literal with, without, never indexed; indexed)', () => {
  let d = new HpackDecoder();
  assert.deepEqual(decodeAll(d, hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572')), [['custom-key', 'custom-header']]);
  assert.deepEqual(tableOf(d), [['custom-key', 'custom-header']]);
  assert.equal(d.tableBytes, 55);

  d = new HpackDecoder();
  assert.deepEqual(decodeAll(d, hex('040c 2f73 616d 706c 652f 7061 7468')), [[':path', '/sample/path']]);
  assert.equal(d.tableCount, 0);

  d = new HpackDecoder();
  assert.deepEqual(decodeAll(d, hex('1008 7061 7373 776f 7264 0673 6563 7265 74')), [['password', 'secret']]);
  assert.equal(d.tableCount, 0);

  d = new HpackDecoder();
  assert.deepEqual(decodeAll(d, hex('82')), [[':method', 'GET']]);
  assert.equal(d.tableCount, 0);
});

/** C.3 (plain) and C.4 (Huffman): three requests on one connection. */
const requestBlocks = {
  plain: [
    '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
    '8286 84be 5808 6e6f 2d63 6163 6865',
    '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65',
  ],
  huffman: [
    '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff',
    '8286 84be 5886 a8eb 1064 9cbf',
    '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf',
  ],
};
for (const [kind, blocks] of Object.entries(requestBlocks)) {
  test(`${kind === 'plain' ? 'C.3' : 'C.4'}: requests ${kind === 'plain' ? 'without' : 'with'} Huffman coding, table after each`, () => {
    const d = new HpackDecoder();
    assert.deepEqual(decodeAll(d, hex(blocks[0]!)), [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com']]);
    assert.deepEqual(tableOf(d), [[':authority', 'www.example.com']]);
    assert.equal(d.tableBytes, 57);
    assert.deepEqual(decodeAll(d, hex(blocks[1]!)), [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com'], ['cache-control', 'no-cache']]);
    assert.deepEqual(tableOf(d), [['cache-control', 'no-cache'], [':authority', 'www.example.com']]);
    assert.equal(d.tableBytes, 110);
    assert.deepEqual(decodeAll(d, hex(blocks[2]!)), [[':method', 'GET'], [':scheme', 'https'], [':path', '/index.html'], [':authority', 'www.example.com'], ['custom-key', 'custom-value']]);
    assert.deepEqual(tableOf(d), [['custom-key', 'custom-value'], ['cache-control', 'no-cache'], [':authority', 'www.example.com']]);
    assert.equal(d.tableBytes, 164);
  });
}

/** C.5 (plain) and C.6 (Huffman): three responses, table size 256, so entries are evicted. */
const responseBlocks = {
  plain: [
    `4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e
     1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d`,
    '4803 3330 37c1 c0bf',
    `88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d
     4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572
     7369 6f6e 3d31`,
  ],
  huffman: [
    `4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b
     97c8 e9ae 82ae 43d3`,
    '4883 640e ffc1 c0bf',
    `88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf
     cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07`,
  ],
};
const date1 = 'Mon, 21 Oct 2013 20:13:21 GMT';
const date2 = 'Mon, 21 Oct 2013 20:13:22 GMT';
const cookie = 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1';
for (const [kind, blocks] of Object.entries(responseBlocks)) {
  test(`${kind === 'plain' ? 'C.5' : 'C.6'}: responses ${kind === 'plain' ? 'without' : 'with'} Huffman coding, eviction at 256 bytes`, () => {
    const d = new HpackDecoder(256);
    assert.deepEqual(decodeAll(d, hex(blocks[0]!)), [[':status', '302'], ['cache-control', 'private'], ['date', date1], ['location', 'https://www.example.com']]);
    assert.deepEqual(tableOf(d), [['location', 'https://www.example.com'], ['date', date1], ['cache-control', 'private'], [':status', '302']]);
    assert.equal(d.tableBytes, 222);
    assert.deepEqual(decodeAll(d, hex(blocks[1]!)), [[':status', '307'], ['cache-control', 'private'], ['date', date1], ['location', 'https://www.example.com']]);
    assert.deepEqual(tableOf(d), [[':status', '307'], ['location', 'https://www.example.com'], ['date', date1], ['cache-control', 'private']]);
    assert.equal(d.tableBytes, 222);
    assert.deepEqual(decodeAll(d, hex(blocks[2]!)), [[':status', '200'], ['cache-control', 'private'], ['date', date2], ['location', 'https://www.example.com'], ['content-encoding', 'gzip'], ['set-cookie', cookie]]);
    assert.deepEqual(tableOf(d), [['set-cookie', cookie], ['content-encoding', 'gzip'], ['date', date2]]);
    assert.equal(d.tableBytes, 215);
  });
}

test('literals without indexing that repeat (nghttp2\'s :path) decode right when they change', () => {
  const d = new HpackDecoder();
  const lit = (prefix: number, value: string, huffman: boolean): Buffer => {
    if (!huffman) return Buffer.concat([Buffer.from([prefix, value.length]), Buffer.from(value, 'latin1')]);
    const h = Buffer.alloc(huffmanEncodedLength(value));
    huffmanEncode(value, h, 0);
    return Buffer.concat([Buffer.from([prefix, 0x80 | h.length]), h]);
  };
  const paths = ['/etcdserverpb.KV/Put', '/etcdserverpb.KV/Txn', '/etcdserverpb.KV/Put', '/a', '/etcdserverpb.KV/Put', 'x'.repeat(100), 'x'.repeat(100), '/etcdserverpb.KV/Put'];
  for (const huffman of [true, false, true]) {
    for (const p of paths) {
      for (const prefix of [0x04, 0x14]) { // without indexing, never indexed; name :path
        assert.deepEqual(decodeAll(d, lit(prefix, p, huffman)), [[':path', p]]);
      }
      // The same octets under another name are that name's.
      assert.deepEqual(decodeAll(d, lit(0x01, p, huffman)), [[':authority', p]]);
    }
  }
  assert.equal(d.tableCount, 0);
});

// ---- Huffman ----

test('Huffman: every octet round-trips; lengths match the code table', () => {
  const r = rng(7541);
  for (let len = 0; len < 300; len++) {
    let s = '';
    for (let i = 0; i < len; i++) s += String.fromCharCode(len < 256 && i === 0 ? len : Math.floor(r() * 256));
    const enc = Buffer.alloc(huffmanEncodedLength(s));
    assert.equal(huffmanEncode(s, enc, 0), enc.length);
    const dst = Buffer.alloc(huffmanDecodedMax(enc.length));
    const n = huffmanDecode(enc, 0, enc.length, dst);
    assert.equal(dst.toString('latin1', 0, n), s);
  }
  assert.equal(huffmanEncodedLength('www.example.com'), 12); // C.4.1
  const enc = Buffer.alloc(12);
  huffmanEncode('www.example.com', enc, 0);
  assert.equal(enc.toString('hex'), 'f1e3c2e5f23a6ba0ab90f4ff');
});

test('Huffman: EOS inside a string, padding over 7 bits, and padding that is not all ones are invalid', () => {
  const dst = Buffer.alloc(64);
  const dec = (h: string): number => { const b = hex(h); return huffmanDecode(b, 0, b.length, dst); };
  assert.equal(dec('ffffffff'), huffmanInvalid); // EOS (30 ones) + 2 bits of padding
  assert.equal(dec('fffffffc'), huffmanInvalid); // EOS then zero padding
  assert.equal(dec('1f'), 1); // 'a' (00011) + 3 bits of padding: valid
  assert.equal(dec('1fff'), huffmanInvalid); // 'a' + 11 bits of padding
  assert.equal(dec('ff'), huffmanInvalid); // 8 bits of padding alone
  assert.equal(dec('18'), huffmanInvalid); // 'a' + padding 000
  assert.equal(dec('1e'), huffmanInvalid); // 'a' + padding 110
  assert.equal(dec('fe'), huffmanInvalid); // 7 ones then a 0: not a prefix of EOS, and no symbol ends
  assert.equal(dec(''), 0);
});

// ---- hostile blocks ----

function hpackError(block: Buffer, d = new HpackDecoder(), pattern?: RegExp): void {
  assert.throws(() => d.decode(block, () => { /* ignored */ }), (e: unknown) => {
    assert.ok(e instanceof HpackError, `expected HpackError, got ${String(e)}`);
    if (pattern) assert.match((e as Error).message, pattern);
    return true;
  });
}

test('hostile blocks: every malformed representation is an HpackError', () => {
  hpackError(hex('ff'), undefined, /truncated HPACK integer/); // 7-bit prefix all ones, no continuation
  hpackError(hex('ff80'), undefined, /truncated/); // continuation bit set at the end
  hpackError(hex('ff ffffffff0f'), undefined, /above 2\^31-1/);
  hpackError(hex('ff 8080808080 00'), undefined, /too long/); // overlong zeros
  hpackError(hex('0005 6162'), undefined, /longer than its header block/); // new-name literal, name length 5, 2 octets
  hpackError(hex('41'), undefined, /truncated HPACK string/); // :authority literal, value missing
  hpackError(hex('007f ffffffff07'), undefined, /above 2\^31-1|longer than/);
  hpackError(hex('0085 ffffffff ff 00'), undefined, /Huffman/); // name = EOS
  hpackError(hex('0081 18 00'), undefined, /Huffman/); // name 'a' padded with zeros
  hpackError(hex('80'), undefined, /index 0/);
  hpackError(hex('00 00'), undefined, /truncated HPACK string/); // new name without its string
  hpackError(hex('be'), undefined, /index 62 past the table/); // dynamic table empty
  hpackError(hex('ff 8001'), undefined, /past the table/); // index 255
  hpackError(hex('7f 00 00'), undefined, /past the table/); // literal with indexing, name index 63
  hpackError(hex('3fe21f'), undefined, /above the limit of 4096/); // size update to 4097 (31 + 0x62 + 0x1f * 128)
  hpackError(hex('82 20'), undefined, /after a header field/);
  // A size update at the start (even two) is fine, and to the limit too.
  assert.deepEqual(decodeAll(new HpackDecoder(), hex('20 3fe11f 82')), [[':method', 'GET']]);
});

test('hostile blocks: the header list size bound counts name + value + 32 per field', () => {
  const fields: Field[] = [['a', 'x'.repeat(60)], ['b', 'y'.repeat(60)]]; // 93 + 93 bytes
  const block = encodeHeaderBlock(fields);
  assert.deepEqual(decodeAll(new HpackDecoder(4096, 186), block), fields);
  hpackError(block, new HpackDecoder(4096, 185), /header list larger than 185/);
  // Indexed references repeat a large entry cheaply in the encoding, not in the count.
  const d = new HpackDecoder(4096, 1000);
  const c = hpackJs.compressor.create({ table: { maxSize: 4096 } });
  c.write([{ name: 'a', value: 'z'.repeat(400), huffman: false }]);
  const first = c.read()!;
  assert.equal(decodeAll(d, first).length, 1);
  hpackError(hex('be be be'), d, /header list larger than 1000/); // 3 x 433 bytes
  // A Huffman string that would decode past the bound fails without decoding it all.
  const long = 'q'.repeat(5000);
  const enc = Buffer.alloc(huffmanEncodedLength(long));
  huffmanEncode(long, enc, 0);
  const lit = Buffer.concat([hex('00 01 61'), Buffer.from([0xff, ...varintTail(enc.length - 127)]), enc]);
  hpackError(lit, new HpackDecoder(4096, 1000), /header list larger than 1000/);
});

/** HPACK integer continuation octets for a value past the prefix. */
function varintTail(v: number): number[] {
  const out: number[] = [];
  for (; v >= 0x80; v = Math.floor(v / 128)) out.push((v & 0x7f) | 0x80);
  out.push(v);
  return out;
}

test('a table limit of 2^31-1 costs nothing up front; the table grows with its entries', () => {
  const d = new HpackDecoder(0x7fffffff);
  const c = hpackJs.compressor.create({ table: { maxSize: 0x7fffffff } });
  const fields: HpackJsHeader[] = Array.from({ length: 1000 }, (_, i) => ({ name: `n${i}`, value: `v${i}`, huffman: i % 2 === 0 }));
  c.write(fields);
  assert.deepEqual(decodeAll(d, c.read()!), fields.map((f) => [f.name, f.value]));
  assert.equal(d.tableCount, 1000);
  assert.deepEqual(d.tableEntry(62), ['n999', 'v999']);
  assert.deepEqual(d.tableEntry(62 + 999), ['n0', 'v0']);
});

test('the table ring grows while wrapped around (after evictions) and keeps every entry in order', () => {
  const d = new HpackDecoder(4096);
  const model: Field[] = []; // newest first
  let modelBytes = 0;
  const add = (name: string, value: string): void => {
    decodeAll(d, Buffer.concat([Buffer.from([0x40, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value)]));
    model.unshift([name, value]);
    modelBytes += name.length + value.length + 32;
    while (modelBytes > 4096) { const [n, v] = model.pop()!; modelBytes -= n.length + v.length + 32; }
  };
  for (let i = 0; i < 40; i++) add('a', `${i}`.padEnd(95, '.')); // 128 bytes each: 32 fit, the ring wraps
  for (let i = 0; i < 100; i++) add('b', `${i}`); // 34-35 bytes: more entries than slots, grown while wrapped
  assert.equal(d.tableCount, model.length);
  assert.ok(model.length > 64);
  assert.deepEqual(tableOf(d), model);
});

test('an HpackError, or onHeader throwing midway, leaves the decoder refusing later blocks (its table is out of step)', () => {
  const d = new HpackDecoder();
  hpackError(hex('80'), d);
  hpackError(hex('82'), d, /unusable/);
  const d2 = new HpackDecoder();
  assert.throws(() => d2.decode(hex(requestBlocks.plain[0]!), () => { throw new RangeError('handler bug'); }), RangeError);
  hpackError(hex('82'), d2, /unusable/);
});

test('random garbage: only HpackError or a result, never another exception (seeded)', () => {
  const r = rng(14);
  let ok = 0;
  for (let iter = 0; iter < 20000; iter++) {
    const d = new HpackDecoder(Math.floor(r() * 8192), 1 + Math.floor(r() * 8192));
    const block = Buffer.alloc(Math.floor(r() * 64));
    for (let i = 0; i < block.length; i++) block[i] = Math.floor(r() * 256);
    try {
      d.decode(block, () => { /* ignored */ });
      ok++;
    } catch (e) {
      if (!(e instanceof HpackError)) throw new Error(`iteration ${iter}: ${block.toString('hex')}: ${String(e)}`);
    }
  }
  assert.ok(ok > 0);
});

// ---- against hpack.js ----

test('round trip against hpack.js\'s compressor: random headers, indexing modes, Huffman, table sizes (seeded)', () => {
  const r = rng(20);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const names = [':path', ':authority', 'content-type', 'grpc-timeout', 'user-agent', 'x-custom', 'te', 'authorization', 'set-cookie', ':method'];
  const randomString = (max: number): string => {
    let s = '';
    const n = Math.floor(r() * max);
    const wide = r() < 0.3;
    for (let i = 0; i < n; i++) s += String.fromCharCode(wide ? Math.floor(r() * 256) : 0x20 + Math.floor(r() * 95));
    return s;
  };
  for (let conn = 0; conn < 40; conn++) {
    const tableSize = pick([0, 64, 256, 4096, 65536]);
    const c = hpackJs.compressor.create({ table: { maxSize: tableSize } });
    const d = new HpackDecoder(tableSize);
    const pool: Field[] = [];
    for (let i = 0; i < 30; i++) pool.push([r() < 0.7 ? pick(names) : randomString(20).toLowerCase(), randomString(r() < 0.1 ? 3000 : 60)]);
    for (let block = 0; block < 30; block++) {
      const fields: HpackJsHeader[] = [];
      const n = 1 + Math.floor(r() * 12);
      for (let i = 0; i < n; i++) {
        const [name, value] = pick(pool);
        const mode = r();
        fields.push({ name, value, huffman: r() < 0.6, incremental: mode < 0.8, neverIndex: mode > 0.95 });
      }
      // Now and then shrink the table first. hpack.js only announces an update to its maximum,
      // so announce it ourselves and tell its table.
      let update = Buffer.alloc(0);
      if (r() < 0.1) {
        const size = Math.floor(r() * (tableSize + 1));
        update = Buffer.from(size < 31 ? [0x20 | size] : [0x3f, ...varintTail(size - 31)]);
        c.updateTableSize(size);
      }
      c.write(fields);
      const bytes = Buffer.concat([update, c.read() ?? Buffer.alloc(0)]);
      assert.deepEqual(decodeAll(d, bytes), fields.map((f) => [f.name, f.value]), `connection ${conn} block ${block}`);
    }
  }
});

test('encodeHeaderBlock: static references and literals without indexing, read back by hpack.js and by us', () => {
  assert.equal(encodeHeaderBlock([[':status', '200']]).toString('hex'), '88');
  const trailers: Field[] = [['grpc-status', '0'], ['grpc-message', 'etcdserver: key not found%20x']];
  const response: Field[] = [[':status', '200'], ['content-type', 'application/grpc'], ['date', 'Tue, 01 Dec 2026 23:00:00 GMT']];
  // content-type: name index 31 (0f 10), literal "application/grpc".
  assert.equal(encodeHeaderBlock(response).subarray(0, 3).toString('hex'), '880f10');
  for (const fields of [trailers, response, [[':status', '404'], ['x-long', 'v'.repeat(300)], [':path', '/index.html']] as Field[]]) {
    const block = encodeHeaderBlock(fields);
    assert.deepEqual(decodeWithHpackJs(block), fields);
    const d = new HpackDecoder();
    assert.deepEqual(decodeAll(d, block), fields);
    assert.deepEqual(decodeAll(d, block), fields);
    assert.equal(d.tableCount, 0, 'nothing may enter the peer\'s dynamic table');
  }
  assert.deepEqual(encodeHeaderBlock([]), Buffer.alloc(0));
  // Latin1 is one octet per char, whatever the value.
  assert.deepEqual(decodeAll(new HpackDecoder(), encodeHeaderBlock([['x-bin', '\u00ff\u0000\u0080']])), [['x-bin', '\u00ff\u0000\u0080']]);
  // What HTTP/2 cannot carry as given is the caller's bug, refused loudly.
  assert.throws(() => encodeHeaderBlock([['Content-Type', 'application/grpc']]), TypeError);
  assert.throws(() => encodeHeaderBlock([['grpc-message', 'caf\u00e9 \u2603']]), TypeError);
});

/** The fields hpack.js's decompressor reads from a block (a second, independent decoder). */
function decodeWithHpackJs(block: Buffer): Field[] {
  const theirs = hpackJs.decompressor.create({ table: { maxSize: 4096 } });
  theirs.write(block);
  theirs.execute();
  const got: Field[] = [];
  for (let h = theirs.read(); h; h = theirs.read()) got.push([h.name, h.value]);
  return got;
}

test('encodeHeaderBlock round trip: random names (static and not) and latin1 values, through hpack.js and us (seeded)', () => {
  const r = rng(7540);
  const names = [':status', 'content-type', 'grpc-status', 'grpc-message', 'date', 'server', 'trailer', 'x-a', 'accept-encoding', 'www-authenticate', ':path'];
  const values = ['200', '', 'application/grpc', '0', 'gzip, deflate', '/index.html', '404'];
  for (let i = 0; i < 300; i++) {
    const fields: Field[] = [];
    for (let n = Math.floor(r() * 8); n > 0; n--) {
      const name = r() < 0.8 ? names[Math.floor(r() * names.length)]! : `x-${Math.floor(r() * 1e6)}`;
      let value = values[Math.floor(r() * values.length)]!;
      if (r() < 0.5) { value = ''; for (let k = Math.floor(r() * (r() < 0.1 ? 400 : 30)); k > 0; k--) value += String.fromCharCode(Math.floor(r() * 256)); }
      fields.push([name, value]);
    }
    const block = encodeHeaderBlock(fields);
    assert.deepEqual(decodeWithHpackJs(block), fields);
    assert.deepEqual(decodeAll(new HpackDecoder(), block), fields);
  }
});

// ---- real clients' header blocks ----

const settingsFrame = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);
const settingsAck = Buffer.from([0, 0, 0, 4, 1, 0, 0, 0, 0]);

/**
 * A raw TCP server that speaks just enough HTTP/2 (SETTINGS and its ACK) for a client to send
 * requests, and collects the header blocks (HEADERS + CONTINUATIONs joined) of its first
 * connection. Resolves once `count` blocks arrived.
 */
async function captureHeaderBlocks(count: number, drive: (port: number) => void | Promise<void>): Promise<Buffer[]> {
  const sockets = new Set<net.Socket>();
  const blocks: Buffer[] = [];
  let done!: () => void;
  const enough = new Promise<void>((resolve) => { done = resolve; });
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => { /* the client is killed at the end */ });
    if (sockets.size > 1) return;
    s.write(settingsFrame);
    let buf = Buffer.alloc(0);
    let prefaceLeft = 24;
    let block: Buffer[] = [];
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (prefaceLeft > 0) { const n = Math.min(prefaceLeft, buf.length); prefaceLeft -= n; buf = buf.subarray(n); }
      while (buf.length >= 9 && buf.length >= 9 + buf.readUIntBE(0, 3)) {
        const len = buf.readUIntBE(0, 3);
        const type = buf[3]!;
        const flags = buf[4]!;
        let payload = buf.subarray(9, 9 + len);
        buf = buf.subarray(9 + len);
        if (type === 4 && (flags & 1) === 0) s.write(settingsAck);
        if (type !== 1 && type !== 9) continue;
        if (type === 1) {
          if (flags & 0x8) payload = payload.subarray(1, payload.length - payload[0]!);
          if (flags & 0x20) payload = payload.subarray(5);
        }
        block.push(Buffer.from(payload));
        if (flags & 0x4) { blocks.push(Buffer.concat(block)); block = []; if (blocks.length === count) done(); }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  try {
    await drive(port);
    await enough;
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  return blocks;
}

/** Decodes a connection's blocks with hpack.js and with us; both must agree, block by block. */
function assertDecodesLikeHpackJs(blocks: Buffer[]): Field[][] {
  const theirs = hpackJs.decompressor.create({ table: { maxSize: 4096 } });
  const ours = new HpackDecoder();
  return blocks.map((block) => {
    theirs.write(block);
    theirs.execute();
    const want: Field[] = [];
    for (let h = theirs.read(); h; h = theirs.read()) want.push([h.name, h.value]);
    const got = decodeAll(ours, block);
    assert.deepEqual(got, want);
    return got;
  });
}

test('real blocks: a node:http2 client\'s requests on one connection', async () => {
  let session: http2.ClientHttp2Session | undefined;
  const blocks = await captureHeaderBlocks(3, (port) => {
    session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => { /* closed by the capture */ });
    for (let i = 0; i < 3; i++) {
      const req = session.request({ ':method': 'POST', ':path': '/etcdserverpb.KV/Range', 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': `${i + 1}S` });
      req.on('error', () => { /* closed by the capture */ });
      req.end();
    }
  });
  session?.destroy();
  const decoded = assertDecodesLikeHpackJs(blocks);
  assert.ok(decoded.every((fields) => fields.some(([n, v]) => n === ':path' && v === '/etcdserverpb.KV/Range')));
  assert.ok(blocks[2]!.length < blocks[0]!.length, 'later blocks refer to the dynamic table');
});

test('real blocks: a grpc-js client\'s unary calls on one channel', async () => {
  let client: grpc.Client | undefined;
  const blocks = await captureHeaderBlocks(2, (port) => {
    client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    for (let i = 0; i < 2; i++) {
      client.makeUnaryRequest('/etcdserverpb.KV/Put', (b: Buffer) => b, (b: Buffer) => b, Buffer.alloc(0), () => { /* no answer comes */ });
    }
  });
  client?.close();
  const decoded = assertDecodesLikeHpackJs(blocks);
  for (const fields of decoded) {
    const h = new Map(fields);
    assert.equal(h.get(':path'), '/etcdserverpb.KV/Put');
    assert.equal(h.get('content-type'), 'application/grpc');
    assert.match(h.get('user-agent') ?? '', /grpc-node-js/);
  }
});

test('real blocks: etcdctl\'s (grpc-go) request', async () => {
  let pid: number | undefined;
  const blocks = await captureHeaderBlocks(1, (port) => {
    const child = spawn('etcdctl', ['--endpoints', `127.0.0.1:${port}`, '--dial-timeout', '60s', '--command-timeout', '60s', 'put', 'k', 'v'], { stdio: 'ignore' });
    child.on('error', () => { /* reported by the missing block */ });
    pid = child.pid;
  });
  if (pid !== undefined) try { process.kill(pid); } catch { /* already gone */ }
  const [fields] = assertDecodesLikeHpackJs(blocks);
  const h = new Map(fields);
  assert.equal(h.get(':path'), '/etcdserverpb.KV/Put');
  assert.match(h.get('user-agent') ?? '', /grpc-go/);
});
