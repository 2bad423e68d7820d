// The write path where the gRPC call itself waits for its apply (Put, DeleteRange, Txn:
// ServerCall as the proposal's Waiter, no promise per call), over a real in-process member
// (raft loop, applier, MVCC on LMDB, in-memory WAL) behind the real gRPC server and HTTP/2
// listener, driven by a raw HTTP/2 client. What it must keep of the promise path: the same
// response bytes; a client gone mid-put gets nothing and leaves no waiter behind; a deadline
// that passes before the apply answers grpc-go's status and frees the waiter at the apply;
// a member that stops fails every waiting call with etcd's "server stopped".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { etcdserverpb as pb } from '../proto/index.js';
import { startTestMember, type TestMember } from '../server/index.js';
import { GrpcServer, frameBytes } from './grpc/index.js';
import { ClientListener } from './listener.js';
import { registerEtcdServices } from './services.js';
import { encodePutResponse } from './fast-codecs.js';

const b = (s: string): Buffer => Buffer.from(s);

interface Served { m: TestMember; address: string; close(): Promise<void> }

async function serve(): Promise<Served> {
  const m = await startTestMember();
  const g = new GrpcServer();
  registerEtcdServices(g, m.server);
  const listener = new ClientListener({ onStream: g.handleStream, onRequest: (_q, r) => { r.writeHead(404); r.end(); }, h2Server: 'own' });
  const url = await listener.listen(new URL('http://127.0.0.1:0'));
  return { m, address: url.host, close: async () => { await listener.close(1000); await m.close(); } };
}

/** Runs `fn` against a served member over one HTTP/2 session, then closes both (releasing a held WAL first). */
async function withServed(fn: (s: Served, session: http2.ClientHttp2Session) => Promise<void>): Promise<void> {
  const s = await serve();
  const session = http2.connect(`http://${s.address}`);
  try {
    await fn(s, session);
  } finally {
    session.close();
    s.m.wal.release();
    await s.close();
  }
}

interface Answer { status: number; message: string | undefined; body: Buffer; responded: boolean }

/** One unary call: the request's message bytes in, the response's bytes (prefix stripped) and status out. */
function call(session: http2.ClientHttp2Session, method: string, message: Uint8Array, headers: http2.OutgoingHttpHeaders = {}):
  { stream: http2.ClientHttp2Stream; answer: Promise<Answer> } {
  const stream = session.request({ ':method': 'POST', ':path': `/etcdserverpb.KV/${method}`, 'content-type': 'application/grpc', te: 'trailers', ...headers });
  const chunks: Buffer[] = [];
  let head: http2.IncomingHttpHeaders = {};
  let trailers: http2.IncomingHttpHeaders = {};
  let responded = false;
  stream.on('response', (h) => { head = h; responded = true; });
  stream.on('trailers', (t) => { trailers = t; });
  stream.on('data', (c: Buffer) => chunks.push(c));
  stream.end(frameBytes(message));
  const answer = new Promise<Answer>((resolve) => {
    stream.on('error', () => undefined); // a cancelled stream errors; 'close' follows
    stream.on('close', () => resolve({
      status: Number(trailers['grpc-status'] ?? head['grpc-status']),
      message: (trailers['grpc-message'] ?? head['grpc-message']) as string | undefined,
      body: Buffer.concat(chunks).subarray(5),
      responded,
    }));
  });
  return { stream, answer };
}

/** Polls `cond` every 5 ms for up to 10 s (the machine is loaded: a generous bound, no timing asserted). */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.fail(`gave up waiting: ${what}`);
}

const put = (k: string, v: string, prevKv = false): pb.PutRequest => pb.PutRequest.fromPartial({ key: b(k), value: b(v), prevKv });
const txn = pb.TxnRequest.fromPartial({
  compare: [{ key: b('a'), target: pb.Compare_CompareTarget.VALUE, result: pb.Compare_CompareResult.EQUAL, value: b('2') }],
  success: [{ requestPut: { key: b('t'), value: b('yes') } }, { requestRange: { key: b('a') } }],
  failure: [{ requestDeleteRange: { key: b('a') } }],
});

test('Put, DeleteRange and Txn answer the same bytes as the promise path with the codecs it used', async () => {
  const viaCalls = await serve();
  const viaPromises = await startTestMember();
  const session = http2.connect(`http://${viaCalls.address}`);
  try {
    const got: Buffer[] = [];
    const steps: [string, Uint8Array, () => Promise<Uint8Array>][] = [
      ['Put', pb.PutRequest.encode(put('a', '1')).finish(), async () => encodePutResponse(await viaPromises.server.put(put('a', '1')))],
      ['Put', pb.PutRequest.encode(put('a', '2', true)).finish(), async () => encodePutResponse(await viaPromises.server.put(put('a', '2', true)))],
      ['Txn', pb.TxnRequest.encode(txn).finish(), async () => pb.TxnResponse.encode(await viaPromises.server.txn(txn)).finish()],
      ['DeleteRange', pb.DeleteRangeRequest.encode({ key: b('a'), rangeEnd: b('z'), prevKv: true }).finish(),
        async () => pb.DeleteRangeResponse.encode(await viaPromises.server.deleteRange(pb.DeleteRangeRequest.fromPartial({ key: b('a'), rangeEnd: b('z'), prevKv: true }))).finish()],
    ];
    for (const [method, request, expected] of steps) {
      const a = await call(session, method, request).answer;
      assert.equal(a.status, 0, `${method}: ${a.message}`);
      got.push(a.body);
      assert.deepEqual(a.body, Buffer.from(await expected()), `${method}: the same response bytes`);
    }
    const tr = pb.TxnResponse.decode(got[2]!);
    assert.equal(tr.succeeded, true);
    assert.equal(tr.responses[1]!.responseRange!.kvs[0]!.value.toString(), '2');
    assert.equal(pb.DeleteRangeResponse.decode(got[3]!).deleted, 2);
    assert.equal(viaCalls.m.waits.size, 0);
  } finally {
    session.close();
    await viaCalls.close();
    await viaPromises.close();
  }
});

test('a client gone mid-put gets nothing; the put is applied and its waiter freed, the registry empty', () => withServed(async (s, session) => {
  s.m.wal.hold(); // nothing becomes durable, so the put waits in the registry
  const gone = call(session, 'Put', pb.PutRequest.encode(put('gone', 'v')).finish());
  await until(() => s.m.waits.size === 1, 'the put registered');
  gone.stream.close(http2.constants.NGHTTP2_CANCEL);
  const a = await gone.answer;
  assert.equal(a.responded, false, 'no response headers reach a client that cancelled');
  s.m.wal.release();
  await until(() => s.m.waits.size === 0, 'the put applied');
  assert.equal(s.m.waits.bytes, 0);
  // etcd applies a proposal whose client went: the key is there, and the member serves on.
  const r = await call(session, 'Range', pb.RangeRequest.encode(pb.RangeRequest.fromPartial({ key: b('gone') })).finish()).answer;
  assert.equal(pb.RangeResponse.decode(r.body).kvs[0]?.value.toString(), 'v');
  const next = await call(session, 'Put', pb.PutRequest.encode(put('after', 'v')).finish()).answer;
  assert.equal(next.status, 0);
}));

test('a deadline that passes before the apply answers "context deadline exceeded"; the waiter goes at the apply', () => withServed(async (s, session) => {
  s.m.wal.hold();
  const late = call(session, 'Put', pb.PutRequest.encode(put('late', 'v')).finish(), { 'grpc-timeout': '50m' });
  const a = await late.answer;
  assert.deepEqual([a.status, a.message], [4, 'context deadline exceeded']);
  assert.equal(s.m.waits.size, 1, 'the proposal is still in raft: its waiter stays until the apply');
  s.m.wal.release();
  await until(() => s.m.waits.size === 0, 'the put applied');
  assert.equal(s.m.waits.bytes, 0);
}));

test('a member that stops fails every call waiting for its apply with etcd\'s "server stopped"', () => withServed(async (s, session) => {
  s.m.wal.hold();
  const waiting = [
    call(session, 'Put', pb.PutRequest.encode(put('p', 'v')).finish()),
    call(session, 'DeleteRange', pb.DeleteRangeRequest.encode({ key: b('p'), rangeEnd: Buffer.alloc(0), prevKv: false }).finish()),
    call(session, 'Txn', pb.TxnRequest.encode(txn).finish()),
  ];
  await until(() => s.m.waits.size === 3, 'three proposals registered');
  s.m.server.stop();
  for (const w of waiting) assert.deepEqual(await w.answer.then((a) => [a.status, a.message]), [14, 'etcdserver: server stopped']);
  assert.deepEqual([s.m.waits.size, s.m.waits.bytes], [0, 0]);
}));
