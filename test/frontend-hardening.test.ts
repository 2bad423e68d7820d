// Front-end defects of issue 6, pinned against real processes (Concord and, where the
// behaviour is visible on the wire, real etcd 3.4 as the oracle):
//  1. a malformed HPACK header block ends that connection only (the process keeps serving);
//  2. a truncated HealthCheckRequest is refused as etcd refuses it (it used to spin forever);
//  3. a large response does not make the server refuse other streams on the connection,
//     also when the client reads it slowly;
//  4. a connection that never ACKs our SETTINGS is bounded in bytes (and time).
// Knob: CONCORD_HARDENING_BIG_VALUES (default 100 values of 1 MiB for defect 3).

import { test, describe, after, before } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { startServer, targetsWithBothH2, runConcord, b, sleep, type Server, type TargetVariant } from './harness.js';
import { FLAG, FRAME, RawConn, frame, grpcMessage, grpcRequestHeaders, headerBlock, rawCall, rssBytes, send } from './h2raw.js';
import { RangeRequest, RangeResponse } from '../src/proto/gen/etcdserverpb/rpc.js';

const servers = new Map<string, Server>();
after(async () => { for (const s of servers.values()) await s.destroy(); });

async function server(v: TargetVariant): Promise<Server> {
  let s = servers.get(v.label);
  if (s === undefined) {
    s = await startServer({ target: v.target, ...(v.env ? { env: v.env } : {}) });
    servers.set(v.label, s);
  }
  return s;
}

/** A fresh client gets an answer, and the process is still the one we started. */
async function assertServing(s: Server): Promise<void> {
  assert.ok(s.running, `${s.target} exited:\n${s.log.slice(-2000)}`);
  const c = s.client();
  try {
    const st = await c.status();
    assert.ok(st.header!.revision >= 1);
  } finally { c.close(); }
}

/**
 * The server closed the connection or sent GOAWAY (node:http2 leaves the socket open after
 * nghttp2's GOAWAY for a connection error; clients close on it).
 */
async function connectionEnded(c: RawConn): Promise<boolean> {
  await c.until((f) => f.type === FRAME.goaway, 10_000);
  return c.isClosed || c.goaway() !== undefined;
}

describe('defect 1: a malformed header block ends that connection only', () => {
  const badBlocks: Array<[string, Buffer]> = [
    ['a literal whose name string is cut short (00 05 61)', Buffer.from('000561', 'hex')],
    ['an indexed field with a truncated integer', Buffer.from('82ff', 'hex')],
    ['a Huffman :authority value with bad padding', Buffer.from('4182ffff', 'hex')],
  ];
  for (const v of targetsWithBothH2()) {
    for (const [name, block] of badBlocks) {
      test(`${v.label}: ${name}`, async () => {
        const s = await server(v);
        const c = await RawConn.handshake(s.clientPort);
        try {
          c.write(frame(FRAME.headers, FLAG.endHeaders | FLAG.endStream, 1, block));
          assert.equal(await connectionEnded(c), true, 'the server should end the connection');
          // etcd (grpc-go) closes without a GOAWAY; nghttp2 sends GOAWAY COMPRESSION_ERROR, as RFC 7540 §4.3 asks.
          if (v.target === 'concord') assert.equal(c.goaway()?.code, 0x9 /* COMPRESSION_ERROR */);
        } finally { c.destroy(); }
        await assertServing(s);
      });
    }

    test(`${v.label}: a bad block after a URL-shaped :authority (the rewriting path)`, async () => {
      const s = await server(v);
      const c = await RawConn.handshake(s.clientPort);
      try {
        const first = headerBlock(grpcRequestHeaders('/etcdserverpb.Maintenance/Status', `http://127.0.0.1:${s.clientPort}`));
        c.write(frame(FRAME.headers, FLAG.endHeaders, 1, first));
        c.write(frame(FRAME.data, FLAG.endStream, 1, grpcMessage(Buffer.alloc(0))));
        assert.ok(await c.until((f) => f.stream === 1 && f.type === FRAME.headers, 10_000), 'the first request is answered');
        c.write(frame(FRAME.headers, FLAG.endHeaders | FLAG.endStream, 3, Buffer.from('000561', 'hex')));
        assert.equal(await connectionEnded(c), true);
      } finally { c.destroy(); }
      await assertServing(s);
    });

    test(`${v.label}: a PING before any request is answered at once, not after the wait for a first request`, async () => {
      const s = await server(v);
      const c = await RawConn.handshake(s.clientPort);
      try {
        c.write(frame(FRAME.ping, 0, 0, Buffer.from('0123456789abcdef', 'hex')));
        // Concord waits up to 5 s for a first request before handing an idle connection to
        // node:http2; a frame that wants an answer must end that wait.
        const ack = await c.until((f) => f.type === FRAME.ping && (f.flags & FLAG.ack) !== 0, 4_000);
        assert.equal(ack?.payload.toString('hex'), '0123456789abcdef');
      } finally { c.destroy(); }
    });

    // A loaded machine (a full test run) once delayed a client's first request past the
    // listener's 50 ms wait for it; the connection then went to node:http2 unexamined and its
    // URL-shaped :authority was refused with RST_STREAM. etcdctl's maintenance calls hit the
    // same when the client is slow. Here the delay is made on purpose.
    test(`${v.label}: a URL-shaped :authority in a first request sent late is still answered`, async () => {
      const s = await server(v);
      const c = await RawConn.handshake(s.clientPort);
      try {
        await sleep(300);
        const first = headerBlock(grpcRequestHeaders('/etcdserverpb.Maintenance/Status', `http://127.0.0.1:${s.clientPort}`));
        c.write(frame(FRAME.headers, FLAG.endHeaders, 1, first));
        c.write(frame(FRAME.data, FLAG.endStream, 1, grpcMessage(Buffer.alloc(0))));
        const answer = await c.until((f) => f.stream === 1 && (f.type === FRAME.headers || f.type === FRAME.rst), 10_000);
        assert.equal(answer?.type, FRAME.headers, `the first request is answered (got frame type ${answer?.type})`);
      } finally { c.destroy(); }
      await assertServing(s);
    });
  }
});

describe('defect 2: a truncated HealthCheckRequest', () => {
  for (const v of targetsWithBothH2()) {
    test(`${v.label}: body 0a 80 is refused with etcd's unmarshal error`, async () => {
      const s = await server(v);
      const r = await rawCall(s.endpoint, '/grpc.health.v1.Health/Check', grpcMessage(Buffer.from('0a80', 'hex')), {}, 10_000);
      assert.equal(r.error, undefined);
      assert.equal(r.grpcStatus, '13');
      assert.equal(r.grpcMessage, 'grpc: error unmarshalling request: unexpected EOF');
      await assertServing(s);
    });
  }
});

describe('defect 3: a large response and other streams on the same connection', () => {
  const bigValues = Number(process.env.CONCORD_HARDENING_BIG_VALUES ?? 100);
  const rangeAll = grpcMessage(Buffer.from(RangeRequest.encode(RangeRequest.fromPartial({ key: b('big/'), rangeEnd: b('big0') })).finish()));
  const rangeSmall = grpcMessage(Buffer.from(RangeRequest.encode(RangeRequest.fromPartial({ key: b('small') })).finish()));

  before(async () => {
    for (const v of targetsWithBothH2()) {
      const s = await server(v);
      const c = s.client();
      try {
        const value = Buffer.alloc(1024 * 1024, 0x61);
        for (let i = 0; i < bigValues; i++) await c.put({ key: b(`big/${String(i).padStart(3, '0')}`), value });
        await c.put({ key: b('small'), value: b('v') });
      } finally { c.close(); }
    }
  });

  for (const v of targetsWithBothH2()) {
    test(`${v.label}: 40 small ranges while ranging ${bigValues} MiB all succeed`, async () => {
      const s = await server(v);
      const session = http2.connect(s.endpoint);
      session.on('error', () => { /* reported per stream */ });
      try {
        const big = rawCall(session, '/etcdserverpb.KV/Range', rangeAll, {}, 60_000);
        const small = await Promise.all(Array.from({ length: 40 }, () => rawCall(session, '/etcdserverpb.KV/Range', rangeSmall, {}, 60_000)));
        const ok = small.filter((r) => r.grpcStatus === '0' && RangeResponse.decode(r.body.subarray(5)).kvs.length === 1).length;
        assert.equal(ok, 40, JSON.stringify(small.find((r) => r.grpcStatus !== '0')));
        const r = await big;
        assert.equal(r.grpcStatus, '0', JSON.stringify({ ...r, body: r.body.length }));
        assert.equal(RangeResponse.decode(r.body.subarray(5)).kvs.length, bigValues);
      } finally { session.close(); }
    });

    test(`${v.label}: with a client that does not read the large response, small ranges still succeed`, async () => {
      const s = await server(v);
      const session = http2.connect(s.endpoint);
      session.on('error', () => { /* reported per stream */ });
      try {
        const req = session.request({ ':method': 'POST', ':path': '/etcdserverpb.KV/Range', 'content-type': 'application/grpc', te: 'trailers' });
        req.end(rangeAll);
        req.pause(); // read nothing: only the stream's window (64 KiB) gets through
        let got = 0;
        const done = new Promise<void>((resolve) => req.on('close', resolve));
        req.on('data', (d: Buffer) => { got += d.length; });
        const small = [];
        for (let i = 0; i < 40; i++) small.push(await rawCall(session, '/etcdserverpb.KV/Range', rangeSmall, {}, 30_000));
        assert.equal(small.filter((r) => r.grpcStatus === '0').length, 40, JSON.stringify(small.find((r) => r.grpcStatus !== '0')));
        req.resume();
        await done;
        assert.ok(got > bigValues * 1024 * 1024, `got ${got} bytes of the large response`);
      } finally { session.close(); }
    });
  }
});

describe('defect 4: a connection that never ACKs our SETTINGS', () => {
  for (const v of targetsWithBothH2().filter((t) => t.target === 'concord')) test(`${v.label}: is bounded in bytes: it is closed long before 16 MB of PINGs are taken, and RSS stays bounded`, { skip: !runConcord() }, async () => {
    const s = await server(v);
    const before = await rssBytes(s.pid!);
    const c = await RawConn.connect(s.clientPort);
    const ping = frame(FRAME.ping, 0, 0, Buffer.alloc(8));
    const burst = Buffer.concat(Array.from({ length: 1024 }, () => ping)); // 17 KiB
    c.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'), frame(FRAME.settings, 0, 0)]));
    let sent = 0;
    let peak = before;
    try {
      while (sent < 16 * 1024 * 1024 && !c.isClosed) {
        if (!await send(c, burst)) break;
        sent += burst.length;
        if (sent % (1024 * 1024) < burst.length) peak = Math.max(peak, await rssBytes(s.pid!));
      }
      assert.equal(await c.waitClosed(10_000), true, 'the server should drop the connection');
      assert.ok(sent < 16 * 1024 * 1024, `the server took all ${sent} bytes`);
      assert.ok(peak - before < 32 * 1024 * 1024, `RSS grew by ${peak - before} bytes`);
    } finally { c.destroy(); }
    await assertServing(s);
  });
});
