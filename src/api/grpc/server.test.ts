import assert from 'node:assert/strict';
import { createHook, executionAsyncId } from 'node:async_hooks';
import http2 from 'node:http2';
import { gzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { EtcdError, GrpcCode, etcdError } from '../../errors/index.js';
import { RangeRequest, RangeResponse } from '../../proto/index.js';
import { ClientListener } from '../listener.js';
import { TestClient, grpcFailure } from '../testkit.js';
import { GrpcServer, ServerCall } from './server.js';
import { frameBytes } from './framing.js';

/** A server with test methods on RangeRequest/RangeResponse: the value echoes the key. */
async function startTestServer(opts: { maxReceiveMessageBytes?: number; unaryCallsPerTurn?: number; unaryResponsesPerTurn?: number } = {}) {
  const g = new GrpcServer({ maxReceiveMessageBytes: opts.maxReceiveMessageBytes ?? 1 << 20,
    ...(opts.unaryCallsPerTurn === undefined ? {} : { unaryCallsPerTurn: opts.unaryCallsPerTurn }),
    ...(opts.unaryResponsesPerTurn === undefined ? {} : { unaryResponsesPerTurn: opts.unaryResponsesPerTurn }) });
  const echo = (req: RangeRequest): RangeResponse =>
    RangeResponse.fromPartial({ kvs: [{ key: req.key, value: req.key }], count: req.limit });
  const hooks = {
    heldCalls: [] as ServerCall<any, any>[],
    release: [] as (() => void)[],
    turnMarks: [] as string[],
    /** Async id of the callback each /test.T/Where call started in. */
    startedIn: [] as number[],
  };
  g.addUnary('/test.T/Echo', RangeRequest, RangeResponse, (req) => echo(req));
  g.addUnary('/test.T/Fail', RangeRequest, RangeResponse, (req) => {
    const m = req.key.toString();
    if (m === 'etcd') throw etcdError('Compacted');
    throw new Error(m);
  });
  g.addUnary('/test.T/Hold', RangeRequest, RangeResponse, (req, call) => new Promise((resolve) => {
    hooks.heldCalls.push(call);
    hooks.release.push(() => resolve(echo(req)));
  }));
  // Records each start, and (in a later macrotask) that the event loop got a turn in between.
  g.addUnary('/test.T/Turn', RangeRequest, RangeResponse, (req) => {
    hooks.turnMarks.push(`start ${req.key.toString()}`);
    setImmediate(() => hooks.turnMarks.push('turn'));
    return echo(req);
  });
  g.addUnary('/test.T/Where', RangeRequest, RangeResponse, (req) => {
    hooks.startedIn.push(executionAsyncId());
    return echo(req);
  });
  g.addServerStream('/test.T/Count', RangeRequest, RangeResponse, async (req, call) => {
    for (let i = 0; i < req.limit; i++) await call.write(RangeResponse.fromPartial({ count: i }));
  });
  g.addBidi('/test.T/Chat', RangeRequest, RangeResponse, async (call) => {
    for await (const m of call.messages()) await call.write(echo(m));
  });
  // CONCORD_H2=node runs this file against node:http2 (the own HTTP/2 server is the default).
  const listener = new ClientListener({ onStream: g.handleStream, onRequest: (_q, r) => { r.writeHead(404); r.end(); },
    h2Server: process.env.CONCORD_H2 === 'node' ? 'node' : 'own' });
  const url = await listener.listen(new URL('http://127.0.0.1:0'));
  return { g, listener, hooks, address: url.host };
}

/** A raw HTTP/2 exchange, for what grpc-js will not send (bad encodings, no client deadline). */
async function rawCall(address: string, path: string, headers: http2.OutgoingHttpHeaders, body: Buffer) {
  const session = http2.connect(`http://${address}`);
  try {
    const req = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...headers });
    let resHeaders: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    req.on('response', (h) => { resHeaders = h; });
    req.on('trailers', (t) => { trailers = t; });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.end(body);
    await new Promise<void>((resolve, reject) => { req.on('close', resolve); req.on('error', reject); });
    // Trailers-only responses carry the status in the headers.
    const status = trailers['grpc-status'] ?? resHeaders['grpc-status'];
    const message = trailers['grpc-message'] ?? resHeaders['grpc-message'];
    return { status: Number(status), message: message as string | undefined, body: Buffer.concat(chunks), headers: resHeaders };
  } finally {
    session.close();
  }
}

const rangeBytes = (key: string): Buffer => Buffer.from(RangeRequest.encode(RangeRequest.fromPartial({ key: Buffer.from(key) })).finish());

describe('grpc server', () => {
  let s: Awaited<ReturnType<typeof startTestServer>>;
  let client: TestClient;
  before(async () => {
    s = await startTestServer();
    client = new TestClient(s.address);
  });
  after(async () => {
    client.close();
    await s.listener.close(1000);
  });

  const echo = (key: string, opts?: grpc.CallOptions) =>
    client.unary('/test.T/Echo', RangeRequest, RangeResponse, RangeRequest.fromPartial({ key: Buffer.from(key) }), opts);

  test('a unary call returns the handler response', async () => {
    const res = await echo('hello');
    assert.equal(res.kvs[0]!.value.toString(), 'hello');
  });

  test('an EtcdError becomes its gRPC code and exact message', async () => {
    const [code, msg] = await grpcFailure(client.unary('/test.T/Fail', RangeRequest, RangeResponse, RangeRequest.fromPartial({ key: Buffer.from('etcd') })));
    assert.equal(code, GrpcCode.OutOfRange);
    assert.equal(msg, 'etcdserver: mvcc: required revision has been compacted');
  });

  test('any other error becomes Unknown with its message, percent-encoded on the wire', async () => {
    const text = 'broken: 100% ünïcode\nline';
    const [code, msg] = await grpcFailure(client.unary('/test.T/Fail', RangeRequest, RangeResponse, RangeRequest.fromPartial({ key: Buffer.from(text) })));
    assert.equal(code, GrpcCode.Unknown);
    assert.equal(msg, text);
    const raw = await rawCall(s.address, '/test.T/Fail', {}, frameBytes(rangeBytes('a%b')));
    assert.equal(raw.message, 'a%25b');
  });

  test('an unknown method or service is Unimplemented with grpc-go wording', async () => {
    const [c1, m1] = await grpcFailure(client.unary('/test.T/Nope', RangeRequest, RangeResponse, RangeRequest.fromPartial({})));
    assert.equal(c1, GrpcCode.Unimplemented);
    assert.equal(m1, 'unknown method Nope for service test.T');
    const [c2, m2] = await grpcFailure(client.unary('/no.Such/Thing', RangeRequest, RangeResponse, RangeRequest.fromPartial({})));
    assert.equal(c2, GrpcCode.Unimplemented);
    assert.equal(m2, 'unknown service no.Such');
  });

  test('a client deadline ends the call with DeadlineExceeded and cancels the handler', async () => {
    // Long enough for the call to reach its handler on a loaded machine (50 ms was not: the
    // test then looked at an older call); the handler holds it, so the deadline still ends it.
    const n = s.hooks.heldCalls.length;
    const [code] = await grpcFailure(echoHold('slow', { deadline: Date.now() + 1000 }));
    assert.equal(code, GrpcCode.DeadlineExceeded);
    assert.equal(s.hooks.heldCalls.length, n + 1, 'the call reached its handler before the deadline');
    const call = s.hooks.heldCalls.at(-1)!;
    await waitFor(() => call.cancelled);
    s.hooks.release.at(-1)!();
  });

  test('the server enforces grpc-timeout itself when the client does not', async () => {
    const raw = await rawCall(s.address, '/test.T/Hold', { 'grpc-timeout': '20m' }, frameBytes(rangeBytes('x')));
    assert.equal(raw.status, GrpcCode.DeadlineExceeded);
    assert.equal(raw.message, 'context deadline exceeded');
    const call = s.hooks.heldCalls.at(-1)!;
    assert.equal(call.signal.aborted, true);
    s.hooks.release.at(-1)!();
  });

  test('client cancellation (RST_STREAM) aborts the handler', async () => {
    const n = s.hooks.heldCalls.length;
    const c = client.raw.makeUnaryRequest('/test.T/Hold', (b: Buffer) => b, (b: Buffer) => b, rangeBytes('c'), () => {});
    await waitFor(() => s.hooks.heldCalls.length > n);
    const call = s.hooks.heldCalls.at(-1)!;
    const aborted = new Promise<void>((resolve) => call.signal.addEventListener('abort', () => resolve()));
    c.cancel();
    await aborted;
    assert.equal(call.cancelled, true);
    s.hooks.release.at(-1)!(); // a late answer is dropped, not written to a dead stream
  });

  test('a unary handler that asks for signal only after its client went finds it aborted', async () => {
    // Unary calls listen for 'close' only once signal is asked for (one listener fewer per call).
    const n = s.hooks.heldCalls.length;
    const c = client.raw.makeUnaryRequest('/test.T/Hold', (b: Buffer) => b, (b: Buffer) => b, rangeBytes('late'), () => {});
    await waitFor(() => s.hooks.heldCalls.length > n);
    const call = s.hooks.heldCalls.at(-1)!;
    c.cancel();
    await waitFor(() => call.stream.destroyed);
    assert.equal(call.signal.aborted, true);
    assert.equal(call.cancelled, true);
    s.hooks.release.at(-1)!();
  });

  test('a message larger than the HTTP/2 window arrives whole across DATA frames', async () => {
    const big = 'k'.repeat(900 * 1024);
    const res = await echo(big);
    assert.equal(res.kvs[0]!.key.length, big.length);
    assert.equal(res.kvs[0]!.value.toString(), big);
  });

  test('a message over the receive limit is ResourceExhausted with grpc-go wording', async () => {
    const [code, msg] = await grpcFailure(echo('k'.repeat((1 << 20) + 10)));
    assert.equal(code, GrpcCode.ResourceExhausted);
    assert.match(msg, /^grpc: received message larger than max \(\d+ vs\. 1048576\)$/);
    // The connection still serves calls.
    assert.equal((await echo('after')).kvs[0]!.value.toString(), 'after');
  });

  test('a client still sending after an error status is reset instead of read to the end', async () => {
    const session = http2.connect(`http://${s.address}`);
    try {
      const req = session.request({ ':method': 'POST', ':path': '/test.T/Echo', 'content-type': 'application/grpc', te: 'trailers' });
      const head = Buffer.alloc(5);
      head.writeUInt32BE(64 << 20, 1); // announces 64 MiB, over the 1 MiB limit
      req.write(head);
      const headers = await new Promise<http2.IncomingHttpHeaders>((r) => req.on('response', r));
      assert.equal(headers['grpc-status'], String(GrpcCode.ResourceExhausted));
      req.on('error', () => {});
      await new Promise((r) => req.on('close', r));
      assert.equal(req.rstCode, http2.constants.NGHTTP2_NO_ERROR);
    } finally { session.close(); }
  });

  test('a compressed message in an encoding the server lacks is Unimplemented', async () => {
    const body = frameBytes(rangeBytes('z'));
    body[0] = 1;
    const raw = await rawCall(s.address, '/test.T/Echo', { 'grpc-encoding': 'snappy' }, body);
    assert.equal(raw.status, GrpcCode.Unimplemented);
    assert.equal(raw.message, 'grpc: Decompressor is not installed for grpc-encoding "snappy"');
    const noEnc = await rawCall(s.address, '/test.T/Echo', {}, body);
    assert.equal(noEnc.status, GrpcCode.Internal);
  });

  test('compressed requests are refused as etcd 3.4 refuses them (no decompressor registered)', async () => {
    const zipped = frameBytes(gzipSync(rangeBytes('zipped')));
    zipped[0] = 1;
    const gz = await rawCall(s.address, '/test.T/Echo', { 'grpc-encoding': 'gzip' }, zipped);
    assert.equal(gz.status, GrpcCode.Unimplemented);
    assert.equal(gz.message, 'grpc: Decompressor is not installed for grpc-encoding "gzip"');
    const none = await rawCall(s.address, '/test.T/Echo', {}, zipped);
    assert.equal(none.status, GrpcCode.Internal);
    assert.equal(none.message, 'grpc: compressed flag set with identity or empty encoding');
  });

  test('a unary message split at every byte boundary is reassembled', async () => {
    const session = http2.connect(`http://${s.address}`);
    try {
      const req = session.request({ ':method': 'POST', ':path': '/test.T/Echo', 'content-type': 'application/grpc', te: 'trailers' });
      const framed = frameBytes(rangeBytes('piecewise'));
      const chunks: Buffer[] = [];
      let trailers: http2.IncomingHttpHeaders = {};
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('trailers', (t) => { trailers = t; });
      for (let i = 0; i < framed.length; i++) {
        req.write(framed.subarray(i, i + 1));
        await new Promise((r) => setImmediate(r));
      }
      req.end();
      await new Promise((r) => req.on('close', r));
      assert.equal(trailers['grpc-status'], '0');
      assert.equal(RangeResponse.decode(Buffer.concat(chunks).subarray(5)).kvs[0]!.value.toString(), 'piecewise');
    } finally { session.close(); }
  });

  test('a unary call ended before its message is whole gets grpc-go 1.26\'s EOF or unexpected EOF', async () => {
    // The whole-message fast path makes no MessageReader: the ending must still tell "no byte
    // at all" (EOF) from "a message begun" (unexpected EOF), as grpc-go's recvMsg does.
    const framed = frameBytes(rangeBytes('cut short'));
    const none = await rawCall(s.address, '/test.T/Echo', {}, Buffer.alloc(0));
    assert.deepEqual([none.status, none.message], [GrpcCode.Unknown, 'EOF']);
    for (const cut of [3, 5, framed.length - 1]) {
      const r = await rawCall(s.address, '/test.T/Echo', {}, framed.subarray(0, cut));
      assert.deepEqual([r.status, r.message], [GrpcCode.Unknown, 'unexpected EOF'], `cut at ${cut}`);
    }
    const whole = await rawCall(s.address, '/test.T/Echo', {}, framed);
    assert.equal(whole.status, GrpcCode.OK);
    assert.equal(RangeResponse.decode(whole.body.subarray(5)).kvs[0]!.value.toString(), 'cut short');
  });

  test('many concurrent calls over one connection all complete', async () => {
    const keys = Array.from({ length: 500 }, (_, i) => `key-${i}`);
    const res = await Promise.all(keys.map((k) => echo(k)));
    assert.deepEqual(res.map((r) => r.kvs[0]!.value.toString()), keys);
  });

  test('a server-streaming call delivers every message then OK', async () => {
    const stream = client.serverStream('/test.T/Count', RangeRequest, RangeResponse, RangeRequest.fromPartial({ limit: 300 }));
    const got: number[] = [];
    for await (const m of stream) got.push((m as RangeResponse).count);
    assert.deepEqual(got, Array.from({ length: 300 }, (_, i) => i));
  });

  test('a bidi call answers each message in order and ends when the client half-closes', async () => {
    const call = client.bidi('/test.T/Chat', RangeRequest, RangeResponse);
    const got: string[] = [];
    const done = (async () => { for await (const m of call) got.push((m as RangeResponse).kvs[0]!.value.toString()); })();
    for (let i = 0; i < 100; i++) call.write(RangeRequest.fromPartial({ key: Buffer.from(`m${i}`) }));
    call.end();
    await done;
    assert.deepEqual(got, Array.from({ length: 100 }, (_, i) => `m${i}`));
  });

  test('HTTP/2 PING frames are answered', async () => {
    const session = http2.connect(`http://${s.address}`);
    try {
      await new Promise((r) => session.once('connect', r));
      const ok = await new Promise<boolean>((resolve) => session.ping((err) => resolve(!err)));
      assert.equal(ok, true);
    } finally { session.close(); }
  });

  test('a request that is not application/grpc gets 415', async () => {
    const session = http2.connect(`http://${s.address}`);
    try {
      const req = session.request({ ':method': 'POST', ':path': '/test.T/Echo', 'content-type': 'text/plain' });
      req.end('x');
      const headers = await new Promise<http2.IncomingHttpHeaders>((r) => req.on('response', r));
      assert.equal(headers[':status'], 415);
      req.resume();
    } finally { session.close(); }
  });

  async function echoHold(key: string, opts: grpc.CallOptions) {
    return client.unary('/test.T/Hold', RangeRequest, RangeResponse, RangeRequest.fromPartial({ key: Buffer.from(key) }), opts);
  }
});

describe('grpc server shutdown', () => {
  test('close lets an in-flight unary call finish, ends bidi streams, and refuses new connections', async () => {
    const s = await startTestServer();
    const client = new TestClient(s.address);
    try {
      const pending = client.unary('/test.T/Hold', RangeRequest, RangeResponse, RangeRequest.fromPartial({ key: Buffer.from('inflight') }));
      const chat = client.bidi('/test.T/Chat', RangeRequest, RangeResponse);
      const chatStatus = new Promise<grpc.StatusObject>((r) => chat.on('status', r));
      chat.on('error', () => {});
      chat.on('data', () => {});
      chat.write(RangeRequest.fromPartial({ key: Buffer.from('hi') }));
      await waitFor(() => s.hooks.heldCalls.length === 1 && s.g.openStreams === 1);
      const closed = s.listener.close(5000);
      s.g.endStreams(GrpcCode.Unavailable, 'etcdserver: server stopped');
      assert.equal((await chatStatus).code, GrpcCode.Unavailable);
      s.hooks.release[0]!();
      assert.equal((await pending).kvs[0]!.value.toString(), 'inflight');
      await closed;
      const late = new TestClient(s.address);
      const [code] = await grpcFailure(late.unary('/test.T/Echo', RangeRequest, RangeResponse, RangeRequest.fromPartial({ key: Buffer.from('x') }), { deadline: Date.now() + 2000 }));
      late.close();
      assert.equal(code, GrpcCode.Unavailable);
    } finally {
      client.close();
    }
  });
});

async function waitFor(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 2));
}

// Keep the imports used in type positions only from being elided in a confusing way.
void EtcdError;

/** Sends `total` unary calls on one session in one go; resolves with their grpc-status values. */
function callsInOneGo(session: http2.ClientHttp2Session, path: string, total: number): Promise<Array<string | undefined>> {
  const done: Promise<string | undefined>[] = [];
  for (let i = 0; i < total; i++) {
    const req = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' });
    req.end(frameBytes(rangeBytes(`k${i}`)));
    done.push(new Promise((resolve, reject) => {
      let status: string | undefined;
      req.on('trailers', (t) => { status = t['grpc-status'] as string; });
      req.on('data', () => {});
      req.on('close', () => resolve(status));
      req.on('error', reject);
    }));
  }
  return Promise.all(done);
}

/** The longest run of marks other than 'turn' (work done without the event loop getting a turn). */
function longestRunWithoutTurn(marks: string[]): number {
  let run = 0, longest = 0;
  for (const m of marks) { run = m === 'turn' ? 0 : run + 1; longest = Math.max(longest, run); }
  return longest;
}

describe('grpc server: bounded work per event-loop turn', () => {
  test('unary calls arriving in one read start a bounded number per turn, in arrival order', async () => {
    const perTurn = 4;
    const s = await startTestServer({ unaryCallsPerTurn: perTurn });
    const session = http2.connect(`http://${s.address}`);
    try {
      // Written in one go: node:http2 flushes a session's frames together, so the server
      // reads many requests at once (the case that used to run them all in one macrotask).
      const total = 64;
      assert.deepEqual(await callsInOneGo(session, '/test.T/Turn', total), Array(total).fill('0'));
      const marks = s.hooks.turnMarks;
      const starts = marks.filter((m) => m !== 'turn');
      assert.deepEqual(starts, Array.from({ length: total }, (_, i) => `start k${i}`), 'started in arrival order');
      const longest = longestRunWithoutTurn(marks);
      assert.ok(longest <= perTurn, `at most ${perTurn} calls started without a turn between, saw ${longest}`);
    } finally {
      session.close();
      await s.listener.close(1000);
    }
  });

  test('a lone unary call starts in the callback that read it, not in a later setImmediate', async () => {
    // A put's handler proposes, which books the raft loop's setImmediate: booked from the
    // poll phase it runs in the same loop iteration, booked from a setImmediate one iteration
    // later (one more epoll_wait and timers pass per put at one client; issue 14).
    const s = await startTestServer();
    const types = new Map<number, string>();
    const hook = createHook({ init(id, type) { if (type !== 'PROMISE') types.set(id, type); } }).enable();
    try {
      const raw = await rawCall(s.address, '/test.T/Where', {}, frameBytes(rangeBytes('w')));
      assert.equal(raw.status, 0);
      assert.equal(s.hooks.startedIn.length, 1);
      const startedIn = types.get(s.hooks.startedIn[0]!);
      assert.notEqual(startedIn, 'Immediate', 'the call waited for a setImmediate although the turn had budget left');
    } finally {
      hook.disable();
      await s.listener.close(1000);
    }
  });

  test('responses completed together (a raft batch applied) are sent a bounded number per turn', async () => {
    const perTurn = 4;
    const s = await startTestServer({ unaryResponsesPerTurn: perTurn });
    const session = http2.connect(`http://${s.address}`);
    const marks: string[] = [];
    const send = ServerCall.prototype.sendUnary;
    ServerCall.prototype.sendUnary = function (this: ServerCall, res: unknown) {
      marks.push('send');
      setImmediate(() => marks.push('turn'));
      send.call(this, res);
    };
    try {
      const total = 64;
      const statuses = callsInOneGo(session, '/test.T/Hold', total);
      await waitFor(() => s.hooks.release.length === total);
      for (const release of s.hooks.release) release(); // all complete in one macrotask
      assert.deepEqual(await statuses, Array(total).fill('0'));
      assert.equal(marks.filter((m) => m === 'send').length, total);
      const longest = longestRunWithoutTurn(marks);
      assert.ok(longest <= perTurn, `at most ${perTurn} responses sent without a turn between, saw ${longest}`);
    } finally {
      ServerCall.prototype.sendUnary = send;
      session.close();
      await s.listener.close(1000);
    }
  });
});
