// The real API front end over FakeService with a real WatchableStore (Watch served), on a
// temporary LMDB, and a grpc-js client to it: for tests of what the multi-process tests
// cannot set up (no leader, a learner).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Backend } from '../src/storage/index.js';
import { WatchableStore } from '../src/mvcc/index.js';
import type { WatchHost } from '../src/server/service.js';
import { startApi, type Api } from '../src/api/index.js';
import { FakeService } from '../src/api/testkit.js';

export interface FakeWatchApi {
  service: FakeService & { watch: WatchHost };
  watchable: WatchableStore;
  api: Api;
  client: grpc.Client;
  close(): Promise<void>;
}

export async function startFakeWatchApi(o: { hasLeader: () => boolean; electionTimeoutMs: number }): Promise<FakeWatchApi> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'concord-watchapi-'));
  const watchable = WatchableStore.open({ backend: Backend.open({ path: path.join(dir, 'db.lmdb') }) });
  const host: WatchHost = { watchable, hasLeader: o.hasLeader, progressNotifyIntervalMs: 600_000, electionTimeoutMs: o.electionTimeoutMs };
  const service = Object.assign(new FakeService(), { watch: host });
  const api = await startApi({ service, listen: [new URL('http://127.0.0.1:0')], thread: false });
  const client = new grpc.Client(api.addresses[0]!.replace('http://', ''), grpc.credentials.createInsecure());
  return {
    service, watchable, api, client,
    async close() {
      client.close();
      await api.close();
      await watchable.kv.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
