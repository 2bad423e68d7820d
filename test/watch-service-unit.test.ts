// The Watch service over a real WatchableStore, on the real API front end, with grpc-js:
// what needs a member state the multi-process tests cannot set up (no leader), the
// fragment splitter on its own, and a hostile request ending only its own stream.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { GrpcCode } from '../src/errors/index.js';
import * as pb from '../src/proto/gen/etcdserverpb/rpc.js';
import { Event_EventType } from '../src/proto/gen/mvccpb/kv.js';
import { WatchableStore } from '../src/mvcc/index.js';
import { startFakeWatchApi, type FakeWatchApi } from './fake-watch-api.js';
import { fragments } from '../src/api/watch-service.js';

let watchable: WatchableStore;
let client: grpc.Client;
let leader = true;
let fake: FakeWatchApi;

before(async () => {
  fake = await startFakeWatchApi({ hasLeader: () => leader, electionTimeoutMs: 20 });
  ({ watchable, client } = fake);
});

after(() => fake.close());

function open(metadata: Record<string, string> = {}): { call: grpc.ClientDuplexStream<Buffer, pb.WatchResponse>; responses: pb.WatchResponse[]; status: Promise<grpc.StatusObject> } {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(metadata)) md.set(k, v);
  const call = client.makeBidiStreamRequest('/etcdserverpb.Watch/Watch', (b: Buffer) => b, (b: Buffer) => pb.WatchResponse.decode(b), md);
  const responses: pb.WatchResponse[] = [];
  call.on('data', (r: pb.WatchResponse) => responses.push(r));
  const status = new Promise<grpc.StatusObject>((resolve) => { call.on('status', resolve); call.on('error', () => {}); });
  return { call, responses, status };
}

const createBytes = (key: string) => Buffer.from(pb.WatchRequest.encode({ createRequest: pb.WatchCreateRequest.fromPartial({ key: Buffer.from(key) }), cancelRequest: undefined, progressRequest: undefined }).finish());

async function until(pred: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !pred(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(pred());
}

test('hasleader metadata: without a leader the stream is closed with "etcdserver: no leader"; without the metadata it is served', async () => {
  leader = false;
  try {
    const s = open({ hasleader: 'true' });
    const st = await s.status;
    assert.equal(st.code, GrpcCode.Unavailable);
    assert.equal(st.details, 'etcdserver: no leader');
    const plain = open();
    plain.call.write(createBytes('k'));
    await until(() => plain.responses.length === 1);
    assert.equal(plain.responses[0]!.created, true);
    plain.call.cancel();
  } finally {
    leader = true;
  }
});

test('hasleader metadata: a stream whose member loses its leader is ended with "etcdserver: no leader"', async () => {
  const s = open({ hasleader: 'true' });
  s.call.write(createBytes('k'));
  await until(() => s.responses.length === 1);
  leader = false;
  try {
    const st = await s.status;
    assert.equal(st.code, GrpcCode.Unavailable);
    assert.equal(st.details, 'etcdserver: no leader');
    await until(() => watchable.counts.synced === 0); // the session let go of its watcher
  } finally {
    leader = true;
  }
});

test('a malformed request ends its own stream with Internal; other streams keep their events', async () => {
  const good = open();
  good.call.write(createBytes('g'));
  await until(() => good.responses.length === 1);
  const bad = open();
  bad.call.write(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f])); // a length far past the message
  const st = await bad.status;
  assert.equal(st.code, GrpcCode.Internal);
  watchable.kv.put(pb.PutRequest.fromPartial({ key: Buffer.from('g'), value: Buffer.from('v') }));
  await until(() => good.responses.length === 2);
  assert.equal(good.responses[1]!.events[0]!.kv!.value.toString(), 'v');
  good.call.cancel();
});

test('fragments: under the limit or one event goes whole; otherwise parts under the limit, all but the last marked', () => {
  const ev = (i: number) => ({ type: Event_EventType.PUT, kv: { key: Buffer.from(`k${i}`), value: Buffer.alloc(100), createRevision: 2, modRevision: 2, version: 1, lease: 0n }, prevKv: undefined });
  const wr = pb.WatchResponse.fromPartial({ header: { revision: 2 }, watchId: 1, events: Array.from({ length: 10 }, (_, i) => ev(i)) });
  assert.equal(fragments(wr, 1 << 20).length, 1);
  assert.equal(fragments({ ...wr, events: [ev(0)] }, 10).length, 1);
  const parts = fragments(wr, 400);
  assert.ok(parts.length > 1);
  assert.deepEqual(parts.map((p) => p.fragment), parts.map((_, i) => i < parts.length - 1));
  assert.deepEqual(parts.flatMap((p) => p.events), wr.events);
  for (const p of parts) if (p.events.length > 1) assert.ok(pb.WatchResponse.encode(p).finish().length < 400);
});
