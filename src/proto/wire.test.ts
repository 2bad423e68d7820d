import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Reader, Writer, sizeVarint, sizeVarintBig, wireShapeError, writeVarint, writeVarintBig } from './wire.js';

/** The plain definition, one BigInt step per byte: what the fast paths must equal. */
function referenceVarint(v: bigint): number[] {
  v = BigInt.asUintN(64, v);
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}

const edges: bigint[] = [0n, 1n, 0x7fn, 0x80n, 0x3fffn, 0x4000n, 0xfffffffn, 0x10000000n, 0xffffffffn, 0x100000000n,
  0x7ffffffffn, 0x800000000n, (1n << 53n) - 1n, 1n << 53n, 0x694d71ddb4a1ba0bn, (1n << 63n) - 1n, 1n << 63n,
  (1n << 64n) - 1n, -1n, -5n, -(1n << 63n)];
for (let i = 0; i < 64; i++) edges.push(1n << BigInt(i), (1n << BigInt(i)) - 1n, (1n << BigInt(i)) + 1n);

test('64-bit varints: size, write and read equal the per-byte definition at every bit boundary', () => {
  for (const v of edges) {
    const want = referenceVarint(v);
    assert.equal(sizeVarintBig(v), want.length, `size of ${v}`);
    const buf = new Uint8Array(12);
    assert.equal(writeVarintBig(buf, 1, v), 1 + want.length, `end of ${v}`);
    assert.deepEqual([...buf.subarray(1, 1 + want.length)], want, `bytes of ${v}`);
    const r = new Reader(buf, 1, 1 + want.length);
    assert.equal(r.varintBig(), BigInt.asUintN(64, v), `read of ${v}`);
    assert.ok(r.done());
    const w = new Writer(want.length);
    w.varintBig(v);
    assert.deepEqual([...w.finish()], want);
  }
});

test('safe-integer varints: size, write and read equal the definition', () => {
  for (const v of edges.filter((x) => x >= 0n && x <= BigInt(Number.MAX_SAFE_INTEGER))) {
    const n = Number(v);
    const want = referenceVarint(v);
    assert.equal(sizeVarint(n), want.length);
    const buf = Buffer.alloc(want.length);
    assert.equal(writeVarint(buf, 0, n), want.length);
    assert.deepEqual([...buf], want);
    assert.equal(new Reader(buf).varint(), n);
  }
});

test('a varint past 64 bits keeps the low 64 (as Go), one past 10 bytes is refused, a cut one is truncated', () => {
  const eleven = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
  assert.throws(() => new Reader(eleven).varintBig(), /varint too long/);
  const ten = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
  assert.equal(new Reader(ten).varintBig(), (1n << 64n) - 1n);
  assert.throws(() => new Reader(new Uint8Array([0x80, 0x80])).varintBig(), /truncated varint/);
  assert.throws(() => new Reader(new Uint8Array([0x80])).varint(), /truncated varint/);
  assert.throws(() => new Reader(new Uint8Array([0x05, 1, 2])).view(), /truncated bytes/);
});

test('wireShapeError words malformed fields as gogoproto does, and accepts well-formed ones', () => {
  const hex = (h: string): Buffer => Buffer.from(h, 'hex');
  // The wording of each case is what etcd 3.4 answered for the same bytes (session 28 checked
  // each one against a real etcd: test/request-wire.test.ts runs them against both servers).
  assert.equal(wireShapeError(hex('0a0666757a7a2f6b0001ff2001'), 'PutRequest'), 'proto: PutRequest: illegal tag 0 (wire type 0)');
  assert.equal(wireShapeError(hex('0a01'), 'PutRequest'), 'unexpected EOF');
  // A length is a Go int to gogo: bit 63 set is negative, whatever follows (9 x 0xff then 0x01,
  // and 2^63 exactly). Below that, a length past the end is too long (etcd 3.4's generated code
  // overflows its index on lengths near 2^63 and panics; Concord answers "unexpected EOF").
  const negative = 'proto: negative length found during unmarshaling';
  assert.equal(wireShapeError(hex('0a' + 'ffffffffffffffffff01'), 'PutRequest'), negative);
  assert.equal(wireShapeError(hex('0a' + '80808080808080808001'), 'PutRequest'), negative);
  assert.equal(wireShapeError(hex('9a01' + 'ffffffffffffffffff01'), 'PutRequest'), negative); // an unknown field
  assert.equal(wireShapeError(hex('0a' + 'ffffffffffffffff7f'), 'PutRequest'), 'unexpected EOF');
  assert.equal(wireShapeError(hex('0a' + 'ffffffffffffffffff03'), 'PutRequest'), negative); // bit 64 dropped, 63 set
  assert.equal(wireShapeError(hex('0a' + 'ffffffffffffffffff02'), 'PutRequest'), 'unexpected EOF'); // only bit 64: dropped
  assert.equal(wireShapeError(hex('0c'), 'PutRequest'), 'proto: PutRequest: wiretype end group for non-group');
  assert.equal(wireShapeError(hex('76'), 'PutRequest'), 'proto: illegal wireType 6'); // field 14, unknown
  assert.equal(wireShapeError(hex('80'), 'PutRequest'), 'unexpected EOF');
  assert.equal(wireShapeError(hex('0a0161120162180120012801300150e807'), 'PutRequest'), undefined);
  assert.equal(wireShapeError(hex('7b08017c'), 'PutRequest'), undefined); // a group at unknown field 15, skipped
  assert.equal(wireShapeError(Buffer.alloc(0), 'PutRequest'), undefined);
  // A known field with another wire type than its own.
  assert.equal(wireShapeError(hex('0e'), 'PutRequest'), 'proto: wrong wireType = 6 for field Key');
  assert.equal(wireShapeError(hex('110102'), 'PutRequest'), 'proto: wrong wireType = 1 for field Value');
  assert.equal(wireShapeError(hex('0b08010c'), 'PutRequest'), 'proto: wrong wireType = 3 for field Key');
  assert.equal(wireShapeError(hex('0a016b1005'), 'PutRequest'), 'proto: wrong wireType = 0 for field Value');
  assert.equal(wireShapeError(hex('0a016b1a0101'), 'PutRequest'), 'proto: wrong wireType = 2 for field Lease');
  assert.equal(wireShapeError(hex('0a016b1a0100'), 'RangeRequest'), 'proto: wrong wireType = 2 for field Limit');
  // Nested messages are walked, and their errors name them.
  assert.equal(wireShapeError(hex('12071205' + '0a016b1005'), 'TxnRequest'), 'proto: wrong wireType = 0 for field Value');
  assert.equal(wireShapeError(hex('0a021805'), 'TxnRequest'), 'proto: wrong wireType = 0 for field Key'); // a Compare's key
  assert.equal(wireShapeError(hex('0a020b0c'), 'TxnRequest'), 'proto: wrong wireType = 3 for field Result');
  assert.equal(wireShapeError(hex('12020000'), 'TxnRequest'), 'proto: RequestOp: illegal tag 0 (wire type 0)');
  assert.equal(wireShapeError(hex('120422020000'), 'TxnRequest'), 'proto: TxnRequest: illegal tag 0 (wire type 0)');
  assert.equal(wireShapeError(hex('1205120a'), 'TxnRequest'), 'unexpected EOF'); // the nested length past its parent
  assert.equal(wireShapeError(hex('0a041a056b6b'), 'TxnRequest'), 'unexpected EOF'); // a Compare's key past the Compare
  assert.equal(wireShapeError(hex('0a032a0101'), 'TxnRequest'), 'proto: wrong wireType = 2 for field CreateRevision');
  assert.equal(wireShapeError(hex('0a09080110011a016b2800' + '120512030a016b'), 'TxnRequest'), undefined); // compare + put
  // Messages without rules are walked for framing only, as before.
  assert.equal(wireShapeError(hex('0e'), 'StatusRequest'), 'proto: illegal wireType 6');
  assert.equal(wireShapeError(hex('0a01'), 'StatusRequest'), 'unexpected EOF');
});
