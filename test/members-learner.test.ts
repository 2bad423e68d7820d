// A learner through the real API front end and a real client (grpc-js): etcd's unary and
// stream interceptors refuse it every call but Status and serializable Range with
// "etcdserver: rpc not supported for learner" (Unavailable), Watch included; the same member
// serves them again once promoted. (The unary table's gate is also pinned in api.test.ts.)
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { GrpcCode } from '../src/errors/index.js';
import * as pb from '../src/proto/gen/etcdserverpb/rpc.js';
import { Backend } from '../src/storage/index.js';
import { WatchableStore } from '../src/mvcc/index.js';
import type { WatchHost } from '../src/server/service.js';
import { startApi, type Api } from '../src/api/index.js';
import { FakeService } from '../src/api/testkit.js';

let dir: string;
let watchable: WatchableStore;
let api: Api;
let client: grpc.Client;
let service: FakeService;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'concord-learner-'));
  watchable = WatchableStore.open({ backend: Backend.open({ path: path.join(dir, 'db.lmdb') }) });
  const host: WatchHost = { watchable, hasLeader: () => true, progressNotifyIntervalMs: 600_000, electionTimeoutMs: 1000 };
  service = Object.assign(new FakeService(), { watch: host });
  api = await startApi({ service, listen: [new URL('http://127.0.0.1:0')], thread: false });
  client = new grpc.Client(api.addresses[0]!.replace('http://', ''), grpc.credentials.createInsecure());
});

after(async () => {
  client.close();
  await api.close();
  await watchable.kv.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

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
  service.learner = true;
  try {
    assert.deepEqual(await watchOutcome(), { code: GrpcCode.Unavailable, details: 'etcdserver: rpc not supported for learner' });
  } finally {
    service.learner = false;
  }
  assert.equal(await watchOutcome(), 'created');
});
