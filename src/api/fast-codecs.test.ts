import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodePutResponse, snapshotResponseToFill } from './fast-codecs.js';
import { PutResponse, etcdserverpb } from '../proto/index.js';

const { SnapshotResponse } = etcdserverpb;

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
