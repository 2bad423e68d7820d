import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeRaftRequest, decodeRaftRequest, decodeEntryRequest, decodeTxnRequestBody } from './request-codec.js';
import { DeleteRangeRequest, PutRequest, TxnRequest } from '../proto/index.js';
import { InternalRaftRequest, RequestHeader } from '../proto/index.js';
import { BinaryWriter } from '@bufbuild/protobuf/wire';

test('the request id and put are read from the first bytes of an encoded entry', () => {
  for (const id of [1n, 127n, 128n, 0xffffn << 48n | 12345n, 0xffffffffffffffffn, 0x8000000000000000n]) {
    const data = encodeRaftRequest(id, { kind: 'put', req: PutRequest.fromPartial({ key: Buffer.from('k'), value: Buffer.from('v') }) });
    assert.equal(decodeEntryRequest(data).id, id);
    const d = decodeRaftRequest(data);
    assert.equal(d.id, id);
    assert.equal(d.request.kind, 'put');
  }
});

test('entries encoded header-first decode as an ordinary InternalRaftRequest', () => {
  const data = encodeRaftRequest(42n, { kind: 'put', req: PutRequest.fromPartial({ key: Buffer.from('a'), value: Buffer.from('b'), prevKv: true }) });
  const m = InternalRaftRequest.decode(data);
  assert.equal(m.header?.ID, 42n);
  assert.equal(Buffer.from(m.put!.key).toString(), 'a');
  assert.equal(m.put!.prevKv, true);
});

test('an entry written by etcd (header last) decodes in full', () => {
  // gogoproto marshals in field-number order: put (4) before header (100).
  const w = new BinaryWriter();
  PutRequest.encode(PutRequest.fromPartial({ key: Buffer.from('x'), value: Buffer.from('y') }), w.uint32((4 << 3) | 2).fork()).join();
  RequestHeader.encode(RequestHeader.fromPartial({ ID: 7n }), w.uint32((100 << 3) | 2).fork()).join();
  const etcdStyle = w.finish();
  assert.equal(decodeEntryRequest(etcdStyle).id, 7n);
  assert.equal(decodeRaftRequest(etcdStyle).id, 7n);
});

test('an entry with more than one request set applies the one etcd\'s applier picks', () => {
  // applyEntryNormal: a v2 request first; then applierV3's switch: range, put, deleteRange,
  // txn, compaction, lease grant/revoke/checkpoint, alarm. No proposer writes such an entry,
  // but a mixed cluster must not apply one two ways.
  const both = (fields: object): string => {
    const d = decodeRaftRequest(InternalRaftRequest.encode(InternalRaftRequest.fromPartial({ header: { ID: 5n }, ...fields } as never)).finish());
    return d.request.kind;
  };
  const put = { key: Buffer.from('k'), value: Buffer.from('v') };
  assert.equal(both({ put, range: { key: Buffer.from('k') } }), 'range');
  assert.equal(both({ txn: {}, deleteRange: { key: Buffer.from('k') } }), 'deleteRange');
  assert.equal(both({ put, txn: {} }), 'put');
  assert.equal(both({ alarm: { action: 1, memberID: 1n, alarm: 1 }, leaseGrant: { TTL: 5, ID: 1n } }), 'leaseGrant');
  assert.equal(both({ put, v2: { ID: 9n, Method: 'PUT' } }), 'v2');
  // The id: the top-level ID when set, else the header's.
  const withId = (fields: object): bigint =>
    decodeRaftRequest(InternalRaftRequest.encode(InternalRaftRequest.fromPartial({ put, ...fields } as never)).finish()).id;
  assert.equal(withId({ ID: 3n, header: { ID: 5n } }), 3n);
  assert.equal(withId({ header: { ID: 5n } }), 5n);
});

test('a put carried as the client\'s raw bytes encodes like the re-encoded request', () => {
  const req = PutRequest.fromPartial({ key: Buffer.from('key'), value: Buffer.alloc(300, 7), lease: 0x694d7b5c5a6ef404n, prevKv: true });
  const raw = PutRequest.encode(req).finish();
  for (const id of [1n, 300n, 0xffffn << 48n | 99n, 0xffffffffffffffffn, 0x0000000100000000n, 0x7ffffffffn]) {
    const viaRaw = encodeRaftRequest(id, { kind: 'put', req, raw });
    assert.deepEqual(Buffer.from(viaRaw), Buffer.from(encodeRaftRequest(id, { kind: 'put', req })), `id ${id}`);
    assert.equal(decodeEntryRequest(viaRaw).id, id);
  }
});

test('the hand-decoded put equals the generated decoder\'s, every field and unknown ones too', () => {
  const cases = [
    PutRequest.fromPartial({ key: Buffer.from('k'), value: Buffer.from('v') }),
    PutRequest.fromPartial({ key: Buffer.from('key'), value: Buffer.alloc(300, 7), lease: 0x694d7b5c5a6ef404n, prevKv: true }),
    PutRequest.fromPartial({ key: Buffer.from('a'), lease: -5n, ignoreValue: true, ignoreLease: true }),
    PutRequest.fromPartial({ key: Buffer.from('empty') }),
  ];
  for (const req of cases) {
    const w = new BinaryWriter();
    PutRequest.encode(req, w);
    w.uint32((99 << 3) | 0).uint32(5); // an unknown field is skipped, as protobuf requires
    const raw = w.finish();
    const data = encodeRaftRequest(9n, { kind: 'put', req, raw });
    const fast = decodeEntryRequest(data);
    const full = decodeRaftRequest(data);
    assert.equal(fast.id, 9n);
    assert.deepEqual(fast.request, full.request);
  }
});

test('a truncated entry fails to decode with an error instead of reading past its end', () => {
  const data = encodeRaftRequest(9n, { kind: 'put', req: PutRequest.fromPartial({ key: Buffer.from('key'), value: Buffer.from('value') }) });
  // Cut inside the put's value: its length prefix promises more bytes than there are.
  for (let n = data.length - 5; n < data.length; n++) assert.throws(() => decodeEntryRequest(data.subarray(0, n)), /truncated/);
});

test('a put whose client bytes are malformed (a tag of 0, wire type 7) is proposed re-encoded, and the entry applies', () => {
  // Found by the front-end fuzz: the generated decoder stops at a tag of 0, so the request it
  // returned was fine while the raw bytes proposed as they were stopped the applier for good.
  const raw = Buffer.from('0a0666757a7a2f6b0001ff2001', 'hex');
  const req = PutRequest.fromPartial({ key: Buffer.from('fuzz/k') });
  const data = encodeRaftRequest(3n, { kind: 'put', req, raw });
  const decoded = decodeEntryRequest(data);
  assert.equal(decoded.id, 3n);
  assert.deepEqual(decoded.request, decodeRaftRequest(data).request);
  assert.deepEqual(Buffer.from(data), Buffer.from(encodeRaftRequest(3n, { kind: 'put', req })));
});

test('a writing txn carried as the client\'s raw bytes is proposed as they are, and decodes as the re-encoded request', () => {
  const req = TxnRequest.fromPartial({
    compare: [{ result: 0, target: 1, key: Buffer.from('c'), createRevision: 5n }],
    success: [
      { requestPut: { key: Buffer.from('k'), value: Buffer.alloc(300, 7), prevKv: true } },
      { requestTxn: { success: [{ requestDeleteRange: { key: Buffer.from('d') } }] } },
    ],
    failure: [{ requestRange: { key: Buffer.from('r'), limit: 3 } }],
  });
  const w = new BinaryWriter();
  TxnRequest.encode(req, w);
  w.uint32((99 << 3) | 0).uint32(5); // an unknown field goes into the log with the rest
  const raw = w.finish();
  for (const id of [1n, 300n, 0xffffn << 48n | 99n, 0xffffffffffffffffn]) {
    const data = encodeRaftRequest(id, { kind: 'txn', req, raw });
    const m = InternalRaftRequest.decode(data);
    assert.equal(m.header?.ID, id);
    assert.ok(Buffer.from(data).includes(Buffer.from(raw)), 'the client\'s bytes, whole');
    const decoded = decodeEntryRequest(data);
    assert.equal(decoded.id, id);
    assert.deepEqual(decoded.request, decodeRaftRequest(encodeRaftRequest(id, { kind: 'txn', req })).request);
  }
});

test('a txn whose client bytes gogoproto would refuse is proposed re-encoded', () => {
  // A nested put's value sent as a varint: the generated decoder skips it (value empty);
  // etcd's Unmarshal fails on it, so those bytes must never reach the log.
  const raw = Buffer.from('12071205' + '0a016b1005', 'hex');
  const req = TxnRequest.decode(raw);
  assert.equal(req.success[0]!.requestPut!.value.length, 0);
  const data = encodeRaftRequest(4n, { kind: 'txn', req, raw });
  assert.deepEqual(Buffer.from(data), Buffer.from(encodeRaftRequest(4n, { kind: 'txn', req })));
  // With an auth header the request is re-encoded too (the raw form carries the ID alone).
  const ok = TxnRequest.encode(TxnRequest.fromPartial({ success: [{ requestPut: { key: Buffer.from('k') } }] })).finish();
  const auth = { username: 'u', revision: 3 };
  assert.deepEqual(
    Buffer.from(encodeRaftRequest(5n, { kind: 'txn', req: TxnRequest.decode(ok), raw: ok }, auth)),
    Buffer.from(encodeRaftRequest(5n, { kind: 'txn', req: TxnRequest.decode(ok) }, auth)));
});

/** A random TxnRequest (seeded): compares of every target, ops of every kind, nested txns. */
function randomTxn(next: () => number, depth = 0): TxnRequest {
  const bytes = (max: number): Buffer => Buffer.from(Array.from({ length: Math.floor(next() * max) }, () => Math.floor(next() * 256)));
  const big = (): bigint => BigInt(Math.floor(next() * 2 ** 40)) - (next() < 0.1 ? 2n ** 41n : 0n);
  const op = (): Record<string, unknown> => {
    const k = Math.floor(next() * (depth < 2 ? 4 : 3));
    if (k === 0) return { requestRange: { key: bytes(8), rangeEnd: bytes(3), limit: Math.floor(next() * 9), revision: Math.floor(next() * 5), keysOnly: next() < 0.5, countOnly: next() < 0.2 } };
    if (k === 1) return { requestPut: { key: bytes(12), value: bytes(300), lease: next() < 0.3 ? big() : 0n, prevKv: next() < 0.5, ignoreValue: next() < 0.2, ignoreLease: next() < 0.2 } };
    if (k === 2) return { requestDeleteRange: { key: bytes(8), rangeEnd: bytes(3), prevKv: next() < 0.5 } };
    return { requestTxn: randomTxn(next, depth + 1) };
  };
  const n = (max: number): number => Math.floor(next() * max);
  return TxnRequest.fromPartial({
    compare: Array.from({ length: n(3) }, () => ({ result: n(4), target: n(5), key: bytes(8), version: big(), createRevision: big(), modRevision: big(), value: bytes(5), lease: big(), rangeEnd: bytes(3) })),
    success: Array.from({ length: n(4) }, op),
    failure: Array.from({ length: n(3) }, op),
  });
}

test('the txn decoder (puts in place) gives the generated decoder\'s request, from a client and from the log', () => {
  let seed = 7;
  const next = (): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
  for (let i = 0; i < 300; i++) {
    const w = new BinaryWriter();
    TxnRequest.encode(randomTxn(next), w);
    if (i % 3 === 0) w.uint32((99 << 3) | 0).uint32(i); // an unknown field, skipped by both
    const raw = w.finish();
    const want = TxnRequest.decode(raw);
    assert.deepEqual(decodeTxnRequestBody(raw), want, `txn ${i}`);
    const entry = decodeEntryRequest(encodeRaftRequest(BigInt(i + 1), { kind: 'txn', req: want, raw }));
    assert.deepEqual(entry, { id: BigInt(i + 1), request: { kind: 'txn', req: want } }, `entry ${i}`);
  }
});

test('the txn decoder keeps the generated decoder\'s quirks: both oneof fields set, a nesting limit', () => {
  // A RequestOp carrying a range and then a put: the generated decoder sets both.
  const op = Buffer.concat([Buffer.from('0a030a0172', 'hex'), Buffer.from('12030a0170', 'hex')]);
  const raw = Buffer.concat([Buffer.from([0x12, op.length]), op]);
  assert.deepEqual(decodeTxnRequestBody(raw), TxnRequest.decode(raw));
  // Nested txns: 49 levels decode (TxnRequest and RequestOp count one each), 50 are refused alike.
  const nest = (levels: number): Uint8Array => {
    let t: Record<string, unknown> = { success: [{ requestPut: { key: Buffer.from('k') } }] };
    for (let i = 1; i < levels; i++) t = { success: [{ requestTxn: t }] };
    return TxnRequest.encode(TxnRequest.fromPartial(t)).finish();
  };
  assert.deepEqual(decodeTxnRequestBody(nest(49)), TxnRequest.decode(nest(49)));
  assert.throws(() => TxnRequest.decode(nest(50)), /recursion limit/);
  assert.throws(() => decodeTxnRequestBody(nest(50)), /recursion limit/);
});

test('an entry whose header is empty (request ID 0) decodes instead of stopping the applier', () => {
  const put = PutRequest.fromPartial({ key: Buffer.from('k'), value: Buffer.from('v') });
  const data = encodeRaftRequest(0n, { kind: 'put', req: put });
  const { id, request } = decodeEntryRequest(data);
  assert.equal(id, 0n);
  assert.equal(request.kind, 'put');
  const grant = decodeEntryRequest(encodeRaftRequest(0n, { kind: 'leaseGrant', req: { ID: 5n, TTL: 10 } }));
  assert.deepEqual(grant, { id: 0n, request: { kind: 'leaseGrant', req: { ID: 5n, TTL: 10 } } });
});

test('a fully decoded entry shares no bytes with the log chunk it was read from', () => {
  // The raft log holds payloads as views of big chunks (raft/payload-arena.ts), and some
  // decoded bytes fields are kept (auth's permissions): a view would pin a whole chunk. The
  // generated decoders copy bytes fields (Buffer.from); this keeps them doing so.
  const data = encodeRaftRequest(9n, { kind: 'deleteRange', req: DeleteRangeRequest.fromPartial({ key: Buffer.from('k1'), rangeEnd: Buffer.from('k9') }) });
  const chunk = new Uint8Array(4096);
  chunk.set(data, 100);
  const d = decodeRaftRequest(chunk.subarray(100, 100 + data.length));
  assert.equal(d.request.kind, 'deleteRange');
  const req = (d.request as { req: { key: Uint8Array; rangeEnd: Uint8Array } }).req;
  assert.deepEqual([...req.key], [...Buffer.from('k1')]);
  assert.notEqual(req.key.buffer, chunk.buffer);
  assert.notEqual(req.rangeEnd.buffer, chunk.buffer);
});
