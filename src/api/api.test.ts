import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import http2 from 'node:http2';
import { after, before, describe, test } from 'node:test';
import { GrpcCode } from '../errors/index.js';
import { etcdserverpb as pb } from '../proto/index.js';
import { Api, startApi } from './index.js';
import * as grpc from '@grpc/grpc-js';
import { FakeService, TestClient, grpcFailure } from './testkit.js';
import { relayWindowBytes } from './bridge.js';

const maxRequestBytes = 4096;
const snapshotData = randomBytes(3 * 32 * 1024 + 1696);

function httpGet(address: string, path: string, method = 'GET'): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${address}${path}`, { method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode!, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

for (const [thread, h2Server] of [[false, 'node'], [false, 'own'], [true, 'node']] as const) {
  const mode = thread ? ' (transport on a worker thread)' : h2Server === 'own' ? ' (own HTTP/2)' : '';
  describe(`etcd API over our gRPC server${mode}`, () => {
    let service: FakeService;
    let api: Api;
    let client: TestClient;
    let address: string;
    before(async () => {
      service = new FakeService({ maxRequestBytes, snapshot: snapshotData, snapshotPieceBytes: 10_000 });
      api = await startApi({ thread, h2Server, service, listen: [new URL('http://127.0.0.1:0')] });
      address = api.addresses[0]!;
      client = new TestClient(new URL(address).host);
    });
    after(async () => {
      client.close();
      await api.close();
    });

    test('addresses are the bound URLs with the real port', () => {
      assert.match(address, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.notEqual(new URL(address).port, '0');
    });

    test('Put then Range go through the service with headers filled', async () => {
      const put = await client.put({ key: Buffer.from('foo'), value: Buffer.from('bar') });
      assert.equal(put.header!.memberId, 0x8e9e05c52164694dn);
      const res = await client.range({ key: Buffer.from('foo') });
      assert.equal(res.kvs[0]!.value.toString(), 'bar');
      assert.equal(res.header!.revision, put.header!.revision);
    });

    test('a service error reaches the client as etcd sends it', async () => {
      const [code, msg] = await grpcFailure(client.unary('/etcdserverpb.KV/Compact', pb.CompactionRequest, pb.CompactionResponse,
        pb.CompactionRequest.fromPartial({ revision: 1e6 })));
      assert.equal(code, GrpcCode.OutOfRange);
      assert.equal(msg, 'etcdserver: mvcc: required revision is a future revision');
    });

    test('an empty key is refused before the service sees it', async () => {
      let seen = 0;
      service.before = () => { seen++; };
      try {
        // Three calls in flight at once, each awaited for its failure from the start: their
        // answers may come in any order (a put refused in its handler answers at once).
        const failures = [client.range({}), client.put({ value: Buffer.from('v') }),
          client.unary('/etcdserverpb.KV/DeleteRange', pb.DeleteRangeRequest, pb.DeleteRangeResponse, pb.DeleteRangeRequest.fromPartial({}))]
          .map((p) => grpcFailure(p));
        for (const f of failures) {
          const [code, msg] = await f;
          assert.equal(code, GrpcCode.InvalidArgument);
          assert.equal(msg, 'etcdserver: key is not provided');
        }
        assert.equal(seen, 0);
      } finally { service.before = undefined; }
    });

    test('txn validation errors are etcd\'s', async () => {
      const put = (k: string) => ({ requestPut: { key: Buffer.from(k), value: Buffer.from('v') } });
      const cases: [pb.DeepPartial<pb.TxnRequest>, string][] = [
        [{ success: Array.from({ length: 129 }, (_, i) => put(`k${i}`)) }, 'etcdserver: too many operations in txn request'],
        [{ success: [put('a'), put('a')] }, 'etcdserver: duplicate key given in txn request'],
        [{ success: [{}] }, 'etcdserver: key not found'],
        [{ compare: [{ key: Buffer.alloc(0) }] }, 'etcdserver: key is not provided'],
      ];
      for (const [req, want] of cases) {
        const [code, msg] = await grpcFailure(client.txn(req));
        assert.equal(code, GrpcCode.InvalidArgument);
        assert.equal(msg, want);
      }
      const ok = await client.txn({ success: [put('a'), put('b')] });
      assert.equal(ok.succeeded, true);
    });

    test('a write over max-request-bytes is "request is too large"; past the gRPC limit it is ResourceExhausted', async () => {
      const [code, msg] = await grpcFailure(client.put({ key: Buffer.from('big'), value: Buffer.alloc(maxRequestBytes) }));
      assert.equal(code, GrpcCode.InvalidArgument);
      assert.equal(msg, 'etcdserver: request is too large');
      // A read of the same size is not proposed through raft, so etcd serves it.
      await client.range({ key: Buffer.alloc(maxRequestBytes, 1) });
      const [code2, msg2] = await grpcFailure(client.put({ key: Buffer.from('huge'), value: Buffer.alloc(maxRequestBytes + 512 * 1024) }));
      assert.equal(code2, GrpcCode.ResourceExhausted);
      assert.match(msg2, new RegExp(`^grpc: received message larger than max \\(\\d+ vs\\. ${maxRequestBytes + 512 * 1024}\\)$`));
    });

    test('Snapshot streams 32 KiB blobs with remaining_bytes, then the sha256 of all blobs', async () => {
      const closedBefore = service.snapshotClosed;
      const stream = client.serverStream('/etcdserverpb.Maintenance/Snapshot', pb.SnapshotRequest, pb.SnapshotResponse, {});
      const msgs: pb.SnapshotResponse[] = [];
      for await (const m of stream) msgs.push(m as pb.SnapshotResponse);
      assert.deepEqual(msgs.map((m) => m.blob.length), [32768, 32768, 32768, 1696, 32]);
      assert.deepEqual(msgs.map((m) => m.remainingBytes), [snapshotData.length - 32768, snapshotData.length - 65536, 1696, 0, 0]);
      const body = Buffer.concat(msgs.slice(0, -1).map((m) => m.blob));
      assert.deepEqual(body, snapshotData);
      assert.deepEqual(msgs.at(-1)!.blob, createHash('sha256').update(snapshotData).digest());
      assert.equal(service.snapshotClosed, closedBefore + 1);
    });

    test('a client that cancels a Snapshot mid-stream stops the send and releases the backend snapshot', async () => {
      // 32 MiB: far more than the HTTP/2 windows, so the server must wait for the client.
      const big = new FakeService({ snapshot: Buffer.alloc(32 << 20), snapshotPieceBytes: 1 << 20 });
      const api2 = await startApi({ thread, h2Server, service: big, listen: [new URL('http://127.0.0.1:0')] });
      const c2 = new TestClient(new URL(api2.addresses[0]!).host);
      try {
        const stream = c2.serverStream('/etcdserverpb.Maintenance/Snapshot', pb.SnapshotRequest, pb.SnapshotResponse, {});
        stream.on('error', () => {});
        await new Promise<void>((r) => stream.once('data', () => r()));
        stream.cancel();
        while (big.snapshotClosed === 0) await new Promise((r) => setTimeout(r, 2));
        assert.ok(big.snapshotPiecesYielded < 32, `yielded ${big.snapshotPiecesYielded} of 32 pieces`);
      } finally {
        c2.close();
        await api2.close();
      }
    });

    test('Maintenance and Cluster unary calls reach the service', async () => {
      const st = await client.unary('/etcdserverpb.Maintenance/Status', pb.StatusRequest, pb.StatusResponse, {});
      assert.equal(st.version, '3.4.23');
      const ml = await client.unary('/etcdserverpb.Cluster/MemberList', pb.MemberListRequest, pb.MemberListResponse, {});
      assert.equal(ml.members[0]!.name, 'default');
      const h = await client.unary('/etcdserverpb.Maintenance/HashKV', pb.HashKVRequest, pb.HashKVResponse, pb.HashKVRequest.fromPartial({}));
      assert.equal(h.hash, 43);
    });

    test('a learner serves Status and serializable ranges only (etcd: rpc not supported for learner)', async () => {
      service.learner = true;
      try {
        const refused = [
          client.unary('/etcdserverpb.KV/Put', pb.PutRequest, pb.PutResponse, pb.PutRequest.fromPartial({ key: Buffer.from('k'), value: Buffer.from('v') })),
          client.unary('/etcdserverpb.KV/Range', pb.RangeRequest, pb.RangeResponse, pb.RangeRequest.fromPartial({ key: Buffer.from('k') })),
          client.unary('/etcdserverpb.Cluster/MemberList', pb.MemberListRequest, pb.MemberListResponse, {}),
        ];
        for (const call of refused) {
          assert.deepEqual(await grpcFailure(call), [GrpcCode.Unavailable, 'etcdserver: rpc not supported for learner']);
        }
        const snap = client.serverStream('/etcdserverpb.Maintenance/Snapshot', pb.SnapshotRequest, pb.SnapshotResponse, {});
        const status = await new Promise<{ code: number; details: string }>((r) => { snap.on('status', r); snap.on('error', () => {}); snap.on('data', () => {}); });
        assert.deepEqual([status.code, status.details], [GrpcCode.Unavailable, 'etcdserver: rpc not supported for learner']);
        await client.unary('/etcdserverpb.KV/Range', pb.RangeRequest, pb.RangeResponse, pb.RangeRequest.fromPartial({ key: Buffer.from('k'), serializable: true }));
        await client.unary('/etcdserverpb.Maintenance/Status', pb.StatusRequest, pb.StatusResponse, {});
      } finally {
        service.learner = false;
      }
    });

    test('a leaderless learner refuses as etcd does: the learner check before hasleader', async () => {
      // etcd's interceptor: learner refusal (a linearizable Range included) first, then hasleader.
      const withLeaderRequired = <Req, Res>(path: string, req: { encode(m: Req): { finish(): Uint8Array } }, res: { decode(b: Uint8Array): Res }, message: Req) => {
        const md = new grpc.Metadata();
        md.set('hasleader', 'true');
        return new Promise<Res>((resolve, reject) => {
          client.raw.makeUnaryRequest(path, (m: Req) => Buffer.from(req.encode(m).finish()), (b: Buffer) => res.decode(b), message, md, {},
            (err, value) => (err ? reject(err) : resolve(value!)));
        });
      };
      service.learner = true;
      service.leaderKnown = false;
      try {
        const range = (serializable: boolean) => withLeaderRequired('/etcdserverpb.KV/Range', pb.RangeRequest, pb.RangeResponse, pb.RangeRequest.fromPartial({ key: Buffer.from('k'), serializable }));
        assert.deepEqual(await grpcFailure(range(false)), [GrpcCode.Unavailable, 'etcdserver: rpc not supported for learner']);
        assert.deepEqual(await grpcFailure(withLeaderRequired('/etcdserverpb.KV/Put', pb.PutRequest, pb.PutResponse, pb.PutRequest.fromPartial({ key: Buffer.from('k'), value: Buffer.from('v') }))),
          [GrpcCode.Unavailable, 'etcdserver: rpc not supported for learner']);
        assert.deepEqual(await grpcFailure(range(true)), [GrpcCode.Unavailable, 'etcdserver: no leader']);
      } finally {
        service.learner = false;
        service.leaderKnown = true;
      }
    });

    test('services of later issues answer Unimplemented', async () => {
      for (const path of ['/etcdserverpb.Lease/LeaseGrant']) {
        const [code, msg] = await grpcFailure(client.unary(path, pb.LeaseGrantRequest, pb.LeaseGrantResponse, pb.LeaseGrantRequest.fromPartial({ TTL: 5 })));
        assert.equal(code, GrpcCode.Unimplemented);
        assert.match(msg, /is not implemented yet$/);
      }
      const watch = client.bidi('/etcdserverpb.Watch/Watch', pb.WatchRequest, pb.WatchResponse);
      const status = await new Promise<{ code: number }>((r) => { watch.on('status', r); watch.on('error', () => {}); });
      assert.equal(status.code, GrpcCode.Unimplemented);
    });

    test('grpc.health.v1 Check answers SERVING for the empty service', async () => {
      const codec = { encode: () => ({ finish: () => new Uint8Array(0) }), decode: (b: Uint8Array) => Buffer.from(b) };
      const res = await client.unary('/grpc.health.v1.Health/Check', codec, codec, undefined);
      assert.deepEqual([...res], [8, 1]);
    });

    test('GET /health and /version over HTTP/1.1 on the gRPC port answer as etcd 3.4', async () => {
      const h = await httpGet(address, '/health');
      assert.equal(h.status, 200);
      assert.equal(h.body, '{"health":"true"}');
      assert.equal(h.headers['content-type'], 'text/plain; charset=utf-8');
      const v = await httpGet(address, '/version');
      assert.equal(v.status, 200);
      assert.equal(v.body, '{"etcdserver":"3.4.23","etcdcluster":"3.4.0"}');
      assert.equal(v.headers['content-type'], 'application/json');
      const nf = await httpGet(address, '/nothing');
      assert.equal(nf.status, 404);
      assert.equal(nf.body, '404 page not found\n');
      const post = await httpGet(address, '/health', 'POST');
      assert.equal(post.status, 405);
      assert.equal(post.headers.allow, 'GET');
    });

    test('an unhealthy member answers /health 503 with etcd 3.4\'s body (no reason field)', async () => {
      service.healthReport = { health: false, reason: 'NOSPACE' };
      try {
        const h = await httpGet(address, '/health');
        assert.equal(h.status, 503);
        assert.equal(h.body, '{"health":"false"}\n');
      } finally { service.healthReport = { health: true, reason: '' }; }
    });

    test('h2c GET /health is served on the same port', async () => {
      const session = http2.connect(address);
      try {
        const req = session.request({ ':method': 'GET', ':path': '/health' });
        let body = '';
        req.setEncoding('utf8');
        req.on('data', (c) => { body += c; });
        const headers = await new Promise<http2.IncomingHttpHeaders>((r) => req.on('response', r));
        await new Promise((r) => req.on('end', r));
        assert.equal(headers[':status'], 200);
        assert.equal(body, '{"health":"true"}');
      } finally { session.close(); }
    });

    test('HTTP/1.1 keep-alive serves several requests on one connection', async () => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const sockets = new Set<unknown>();
        for (let i = 0; i < 3; i++) {
          const body = await new Promise<string>((resolve, reject) => {
            const req = http.get(`${address}/version`, { agent }, (res) => {
              sockets.add(res.socket);
              let b = '';
              res.on('data', (c) => { b += c; });
              res.on('end', () => resolve(b));
            });
            req.on('error', reject);
          });
          assert.equal(body, '{"etcdserver":"3.4.23","etcdcluster":"3.4.0"}');
        }
        assert.equal(sockets.size, 1);
      } finally { agent.destroy(); }
    });
  });

  describe(`startApi lifecycle${mode}`, () => {
    test('close waits for an in-flight request, then the port refuses connections', async () => {
      const service = new FakeService();
      let release!: () => void;
      let arrived!: () => void;
      const arrival = new Promise<void>((r) => { arrived = r; });
      service.before = (m) => (m === 'put' ? new Promise<void>((r) => { release = r; arrived(); }) : undefined);
      const api = await startApi({ thread, h2Server, service, listen: [new URL('http://127.0.0.1:0')] });
      const client = new TestClient(new URL(api.addresses[0]!).host);
      try {
        const put = client.put({ key: Buffer.from('k'), value: Buffer.from('v') });
        await arrival;
        const closed = api.close();
        release();
        assert.equal((await put).header!.revision, 2);
        await closed;
        await assert.rejects(httpGet(api.addresses[0]!, '/health'), /ECONNREFUSED/);
      } finally { client.close(); }
    });

    test('HTTP/1.1 keep-alive: gateway bodies larger than the relay window both ways, then /health, on one connection', async () => {
      // On the worker thread every HTTP/1.1 connection is relayed to this thread (h1-relay.ts).
      const api = await startApi({ thread, h2Server, service: new FakeService(), listen: [new URL('http://127.0.0.1:0')] });
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const value = randomBytes(relayWindowBytes * 3);
      const request = (method: string, path: string, body?: string) => new Promise<{ status: number; body: string; reused: boolean }>((resolve, reject) => {
        const req = http.request(`${api.addresses[0]}${path}`, { method, agent }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString(), reused: req.reusedSocket }));
        });
        req.on('error', reject);
        req.end(body);
      });
      try {
        const put = await request('POST', '/v3/kv/put', JSON.stringify({ key: Buffer.from('big').toString('base64'), value: value.toString('base64') }));
        assert.equal(put.status, 200, put.body);
        const range = await request('POST', '/v3/kv/range', JSON.stringify({ key: Buffer.from('big').toString('base64') }));
        assert.equal(range.status, 200);
        assert.deepEqual(Buffer.from(JSON.parse(range.body).kvs[0].value, 'base64'), value);
        const health = await request('GET', '/health');
        assert.deepEqual([health.status, JSON.parse(health.body)], [200, { health: 'true' }]);
        assert.deepEqual([range.reused, health.reused], [true, true], 'one connection');
      } finally {
        agent.destroy();
        await api.close();
      }
    });

    test('a listen address in use fails startApi', async () => {
      const a = await startApi({ thread, h2Server, service: new FakeService(), listen: [new URL('http://127.0.0.1:0')] });
      try {
        await assert.rejects(startApi({ thread, h2Server, service: new FakeService(), listen: [new URL(a.addresses[0]!)] }), /EADDRINUSE/);
      } finally { await a.close(); }
    });
  });
}

describe('transport worker thread', () => {
  test('a worker that dies while serving is reported (the server exits rather than serve nothing)', async () => {
    const { startThreadApi } = await import('./thread.js');
    let failure: Error | undefined;
    const reported = new Promise<void>((r) => {
      void startThreadApi({
        service: new FakeService(), listen: [new URL('http://127.0.0.1:0')], closeGraceMs: 100,
        maxReceiveMessageBytes: 1 << 20, onWorkerFailure: (e) => { failure = e; r(); },
      }).then((api) => api.worker.terminate());
    });
    await reported;
    assert.match(failure!.message, /worker thread exited/);
  });

  test('close() ends the worker thread', async () => {
    const { startThreadApi } = await import('./thread.js');
    const api = await startThreadApi({
      service: new FakeService(), listen: [new URL('http://127.0.0.1:0')], closeGraceMs: 100, maxReceiveMessageBytes: 1 << 20,
    });
    const exited = new Promise<number>((r) => api.worker.once('exit', r));
    await api.close();
    await exited;
    await assert.rejects(httpGet(api.addresses[0]!, '/version'), /ECONNREFUSED/);
  });
});
