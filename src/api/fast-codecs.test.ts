import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeRangeRequest, encodeOneKeyRangeResponse, encodePutResponse, encodeRangeResponse, snapshotResponseToFill } from './fast-codecs.js';
import { KeyValue, PutResponse, RangeRequest, RangeResponse, etcdserverpb } from '../proto/index.js';

const { SnapshotResponse } = etcdserverpb;

/** A deterministic pseudo-random sequence (xorshift32), so a failure can be replayed. */
function rng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n) => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x % n; };
}

test('the hand-written PutResponse encoder is byte-identical to the generated one', () => {
  const ids = [0n, 1n, 0x7fn, 0x80n, 0x2e1259d415f2a040n, 0xffffffffffffffffn, 0x8000000000000000n];
  const nums = [0, 1, 127, 128, 16383, 16384, 2 ** 31, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER];
  for (const clusterId of ids) for (const memberId of [ids[4]!, ids[5]!, 0n]) for (const revision of nums) for (const raftTerm of [0, 2, 300]) {
    const r = PutResponse.fromPartial({ header: { clusterId, memberId, revision, raftTerm } });
    assert.deepEqual(Buffer.from(encodePutResponse(r)), Buffer.from(PutResponse.encode(r).finish()),
      JSON.stringify({ clusterId: String(clusterId), memberId: String(memberId), revision, raftTerm }));
  }
});

test('a PutResponse with prev_kv goes through the generated encoder', () => {
  const r = PutResponse.fromPartial({
    header: { clusterId: 5n, memberId: 6n, revision: 7, raftTerm: 2 },
    prevKv: { key: Buffer.from('k'), value: Buffer.from('v'), createRevision: 3, modRevision: 4, version: 2 },
  });
  assert.deepEqual(PutResponse.decode(encodePutResponse(r)), r);
});

test('a SnapshotResponse filled in place is byte-identical to the generated encoder', () => {
  for (const [remaining, blobBytes] of [[0, 0], [0, 32], [1, 32768], [127, 1], [128, 32768], [1 << 30, 32768], [2 ** 40, 5]] as const) {
    const blob = Buffer.alloc(blobBytes, 0xa5);
    const { message, blob: room } = snapshotResponseToFill(remaining, blobBytes);
    assert.equal(room.length, blobBytes);
    room.set(blob);
    const want = SnapshotResponse.encode(SnapshotResponse.fromPartial({ remainingBytes: remaining, blob })).finish();
    assert.deepEqual(Buffer.from(message), Buffer.from(want), `remaining ${remaining}, blob ${blobBytes}`);
  }
});

test('the hand-written RangeResponse encoder is byte-identical to the generated one', () => {
  const rand = rng(14);
  const nums = [0, 1, 127, 128, 16384, 2 ** 31, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER, -1];
  const leases = [0n, 1n, 0x7fn, 0x694d77a3e6b4c21fn, -1n, -(2n ** 63n)];
  const pick = <T>(xs: readonly T[]): T => xs[rand(xs.length)]!;
  const bytes = (): Buffer => Buffer.alloc(pick([0, 1, 3, 127, 128, 300, 20000]), rand(256));
  for (let i = 0; i < 2000; i++) {
    const kvs = Array.from({ length: pick([0, 1, 2, 5]) }, () => ({
      key: bytes(), value: bytes(), createRevision: pick(nums), modRevision: pick(nums), version: pick(nums), lease: pick(leases),
    }));
    const r = RangeResponse.fromPartial({
      header: rand(8) === 0 ? undefined : { clusterId: pick(leases) & 0xffffffffffffffffn, memberId: 0x2e1259d415f2a040n, revision: pick(nums), raftTerm: pick(nums) },
      kvs, more: rand(2) === 0, count: pick(nums),
    });
    let want: Buffer;
    try {
      want = Buffer.from(RangeResponse.encode(r).finish());
    } catch (e) {
      // A value the generated encoder refuses (a negative raft term) is refused alike.
      assert.throws(() => encodeRangeResponse(r), { message: (e as Error).message }, `case ${i}`);
      continue;
    }
    assert.deepEqual(Buffer.from(encodeRangeResponse(r)), want, `case ${i}`);
  }
});

test('the hand-written RangeRequest decoder gives what the generated one gives', () => {
  const rand = rng(41);
  const varint = (v: bigint): number[] => { const out: number[] = []; v = BigInt.asUintN(64, v); while (v >= 0x80n) { out.push(Number(v & 0x7fn) | 0x80); v >>= 7n; } out.push(Number(v)); return out; };
  const values = [0n, 1n, 127n, 128n, 2n ** 31n, 2n ** 32n + 7n, 2n ** 53n - 1n, -1n, -(2n ** 53n) + 1n];
  for (let i = 0; i < 3000; i++) {
    // Fields 1-13 in any order, repeated or of the wrong wire type, and unknown fields.
    const body: number[] = [];
    for (let f = 0; f < rand(12); f++) {
      const field = 1 + rand(15);
      const lengthDelimited = field <= 2 ? rand(8) !== 0 : rand(8) === 0;
      body.push(...varint(BigInt((field << 3) | (lengthDelimited ? 2 : 0))));
      if (lengthDelimited) {
        const len = rand(5) === 0 ? 200 : rand(6);
        body.push(...varint(BigInt(len)), ...Array.from({ length: len }, () => rand(256)));
      } else body.push(...varint(values[rand(values.length)]!));
    }
    const input = Buffer.from(body);
    assert.deepEqual(decodeRangeRequest(input), RangeRequest.decode(input), `case ${i}: ${input.toString('hex')}`);
  }
  // Beyond the safe integers both refuse, with ts-proto's wording.
  for (const v of [2n ** 53n, -(2n ** 53n) - 1n, 2n ** 63n - 1n]) {
    const input = Buffer.from([0x18, ...varint(v)]);
    assert.throws(() => RangeRequest.decode(input), (e: Error) => assert.throws(() => decodeRangeRequest(input), { message: e.message }) === undefined);
  }
});

test('a decoded RangeRequest holds views of the request, not copies', () => {
  const input = Buffer.from(RangeRequest.encode(RangeRequest.fromPartial({ key: Buffer.from('k1'), rangeEnd: Buffer.from('k9'), limit: 3 })).finish());
  const req = decodeRangeRequest(input);
  assert.equal(req.key.buffer, input.buffer);
  assert.equal(req.rangeEnd.toString(), 'k9');
});

test('a one-key RangeResponse made from the stored record is byte-identical to the generated encoder of the decoded KeyValue', () => {
  const rand = rng(15);
  const nums = [0, 1, 127, 128, 16384, 2 ** 31, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER, -1];
  const leases = [0n, 1n, 0x7fn, 0x694d77a3e6b4c21fn, -1n, -(2n ** 63n)];
  const pick = <T>(xs: readonly T[]): T => xs[rand(xs.length)]!;
  const bytes = (min: number): Buffer => Buffer.alloc(pick([min, 1, 3, 127, 128, 300, 20000]), rand(256));
  /** A record etcd would never write, that decodes to the same KeyValue: each changes what a copy would send. */
  const uncanonical: Array<(kv: Uint8Array) => Uint8Array> = [
    (kv) => Buffer.concat([kv, Buffer.from([0x10, 0x00])]), // an explicit zero, and out of order
    (kv) => Buffer.concat([Buffer.from([0x30, 0x00]), kv]), // zero lease first
    (kv) => Buffer.concat([kv, Buffer.from([0x38, 0x05])]), // an unknown field 7
    (kv) => Buffer.concat([kv, Buffer.from([0x98, 0x00, 0x07])]), // field 3 with a two-byte tag
    () => Buffer.from([0x0a, 0x01, 0x6b, 0x10, 0x85, 0x00, 0x18, 0x06]), // a non-minimal varint, in order
    () => Buffer.from([0x0a, 0x81, 0x00, 0x6b, 0x18, 0x06]), // a non-minimal length
    () => Buffer.from([0x0a, 0x01, 0x6b, 0x10, 0x00, 0x18, 0x06, 0x2a, 0x00]), // explicit zero and empty value, in order
  ];
  for (let i = 0; i < 3000; i++) {
    const kv = KeyValue.fromPartial({
      key: bytes(1), value: bytes(0), createRevision: pick(nums), modRevision: pick(nums), version: pick(nums), lease: pick(leases),
    });
    let record: Uint8Array | undefined = Buffer.from(KeyValue.encode(kv).finish());
    if (rand(4) === 0) record = pick(uncanonical)(record);
    if (rand(8) === 0) record = undefined; // not found, or count_only
    const keysOnly = rand(2) === 0;
    const count = record === undefined ? rand(2) : 1;
    const header = { clusterId: 0xcdf818194e3a8c32n, memberId: pick([0n, 0x2e1259d415f2a040n]), revision: pick(nums.slice(0, -1)), raftTerm: pick(nums.slice(0, -1)) };
    const decoded = record === undefined ? [] : [KeyValue.decode(record)];
    if (keysOnly && decoded.length > 0) decoded[0]!.value = Buffer.alloc(0);
    const want = Buffer.from(RangeResponse.encode(RangeResponse.fromPartial({ header, kvs: decoded, more: false, count })).finish());
    const got = Buffer.from(encodeOneKeyRangeResponse(header, record, count, keysOnly));
    assert.deepEqual(got, want, `case ${i}: record ${record === undefined ? '-' : Buffer.from(record).toString('hex').slice(0, 80)}, keysOnly ${keysOnly}`);
  }
});
