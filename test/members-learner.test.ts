// A learner through the real API front end and a real client (grpc-js): etcd's unary and
// stream interceptors refuse it every call but Status and serializable Range with
// "etcdserver: rpc not supported for learner" (Unavailable), Watch included; the same member
// serves them again once promoted. (The unary table's gate is also pinned in api.test.ts.)
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type * as grpc from '@grpc/grpc-js';
import { GrpcCode } from '../src/errors/index.js';
import * as pb from '../src/proto/gen/etcdserverpb/rpc.js';
import { startFakeWatchApi, type FakeWatchApi } from './fake-watch-api.js';

let fake: FakeWatchApi;
let client: grpc.Client;

before(async () => {
  fake = await startFakeWatchApi({ hasLeader: () => true, electionTimeoutMs: 1000 });
  client = fake.client;
});

after(() => fake.close());

/** Opens a Watch on `key` and resolves with the stream's status, or 'created' once the watcher is. */
function watchOutcome(): Promise<{ code: number; details: string } | 'created'> {
  const call = client.makeBidiStreamRequest('/etcdserverpb.Watch/Watch', (b: Buffer) => b, (b: Buffer) => pb.WatchResponse.decode(b));
  return new Promise((resolve) => {
    call.on('data', (r: pb.WatchResponse) => { if (r.created) { resolve('created'); call.cancel(); } });
    call.on('status', (s: grpc.StatusObject) => resolve({ code: s.code, details: s.details }));
    call.on('error', () => {});
    call.write(Buffer.from(pb.WatchRequest.encode({ createRequest: pb.WatchCreateRequest.fromPartial({ key: Buffer.from('k') }), cancelRequest: undefined, progressRequest: undefined }).finish()));
  });
}

test('a learner refuses Watch with etcd\'s status; promoted, it serves it', async () => {
  fake.service.learner = true;
  try {
    assert.deepEqual(await watchOutcome(), { code: GrpcCode.Unavailable, details: 'etcdserver: rpc not supported for learner' });
  } finally {
    fake.service.learner = false;
  }
  assert.equal(await watchOutcome(), 'created');
});
