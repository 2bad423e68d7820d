// Concord's own HTTP/2 server (src/api/h2/) in process, over real sockets: flow control both
// ways, stream ids, limits, and that a unary response leaves in one socket write. The same
// server (the default) runs under the gRPC suites; targetsWithBothH2 adds node:http2 beside it.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { Connection } from '../src/api/h2/connection.js';
import { OutputQueue } from '../src/api/h2/output.js';
import { clientPreface } from '../src/api/h2/frames.js';
import type { H2Stream, StreamHeaders } from '../src/api/grpc/transport.js';
import { defaultKeepalive } from '../src/api/keepalive.js';
import { FLAG, FRAME, RawConn, frame, grpcRequestHeaders, headerBlock } from './h2raw.js';

type Handler = (stream: H2Stream, headers: StreamHeaders) => void;

/** A server handing each socket to a Connection once the preface is in, as the listener does. */
class OwnServer {
  readonly server: net.Server;
  handler: Handler = () => { /* set per test */ };
  readonly sockets: net.Socket[] = [];
  writes = 0;
  maxConcurrentStreams = 1000;

  constructor() {
    this.server = net.createServer((socket) => {
      this.sockets.push(socket);
      let got = Buffer.alloc(0);
      const onData = (d: Buffer): void => {
        got = Buffer.concat([got, d]);
        if (got.length < clientPreface.length) return;
        socket.off('data', onData);
        socket.pause();
        const write = socket.write;
        socket.write = ((...args: Parameters<typeof write>) => { this.writes++; return write.apply(socket, args); }) as typeof write;
        new Connection(socket, got, {
          onStream: (s, h) => this.handler(s, h), maxConcurrentStreams: this.maxConcurrentStreams, keepalive: defaultKeepalive,
          maxBytesBeforeSettingsAck: 256 * 1024, settingsTimeoutMs: 10_000,
        });
      };
      socket.on('data', onData);
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return (this.server.address() as net.AddressInfo).port;
  }

  close(): void {
    for (const s of this.sockets) s.destroy();
    this.server.close();
  }
}

const echoHandler: Handler = (stream) => {
  const chunks: Buffer[] = [];
  stream.on('data', (d: Buffer) => chunks.push(d));
  stream.on('end', () => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true, sendDate: false });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(Buffer.concat(chunks));
  });
};

function windowUpdates(c: RawConn, stream: number): number {
  return c.frames.filter((f) => f.type === FRAME.window && f.stream === stream).reduce((n, f) => n + (f.payload.readUInt32BE(0) & 0x7fffffff), 0);
}

/** Sends a PING and waits for its ACK: every frame sent before it has been processed. */
async function sync(c: RawConn, tag: number): Promise<void> {
  const opaque = Buffer.alloc(8);
  opaque.writeUInt32BE(tag, 4);
  c.write(frame(FRAME.ping, 0, 0, opaque));
  const ack = await c.until((f) => f.type === FRAME.ping && (f.flags & FLAG.ack) !== 0 && f.payload.equals(opaque), 10_000);
  assert.ok(ack, `no PING ACK ${tag}`);
}

describe('own HTTP/2 server', () => {
  const srv = new OwnServer();
  let port = 0;
  before(async () => { port = await srv.listen(); });
  after(() => srv.close());

  test('echo through node:http2 as a client, and a unary-shaped response leaves in one socket write', async () => {
    srv.handler = echoHandler;
    const session = http2.connect(`http://127.0.0.1:${port}`);
    try {
      const call = (body: Buffer): Promise<{ body: Buffer; status: string | undefined }> => new Promise((resolve, reject) => {
        const req = session.request({ ':method': 'POST', ':path': '/x', 'content-type': 'application/grpc' });
        const got: Buffer[] = [];
        let status: string | undefined;
        req.on('data', (d: Buffer) => got.push(d));
        req.on('trailers', (t) => { status = String(t['grpc-status']); });
        req.on('close', () => resolve({ body: Buffer.concat(got), status }));
        req.on('error', reject);
        req.end(body);
      });
      const first = await call(Buffer.from('warm up'));
      assert.equal(first.status, '0');
      const before = srv.writes;
      const r = await call(Buffer.from('hello'));
      assert.equal(r.body.toString(), 'hello');
      assert.equal(r.status, '0');
      assert.equal(srv.writes - before, 1, 'HEADERS, DATA and trailers in one write');
      // Larger than every window at its start: flow control both ways.
      const big = Buffer.alloc(3 * 1024 * 1024 + 17, 0x5a);
      const echoed = await call(big);
      assert.ok(echoed.body.equals(big));
    } finally { session.close(); }
  });

  test('SETTINGS advertise the header list bound the decoder enforces (64 KiB), so a client knows it before sending', async () => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    try {
      const settings = await new Promise<http2.Settings>((resolve) => session.once('remoteSettings', resolve));
      assert.equal(settings.maxHeaderListSize, 64 * 1024);
      assert.equal(settings.maxConcurrentStreams, srv.maxConcurrentStreams);
    } finally { session.close(); }
  });

  test('a paused stream pushes back: no window returned while its data is unread, FLOW_CONTROL_ERROR past it, windows back on resume', async () => {
    let held: H2Stream | undefined;
    let received = 0;
    srv.handler = (stream) => { held = stream; stream.pause(); stream.on('data', (d: Buffer) => { received += d.length; }); };
    const c = await RawConn.handshake(port);
    try {
      c.write(frame(FRAME.headers, FLAG.endHeaders, 1, headerBlock(grpcRequestHeaders('/p'))));
      const piece = Buffer.alloc(16_384);
      for (let sent = 0; sent < 1 << 20; sent += piece.length) c.write(frame(FRAME.data, 0, 1, piece));
      await sync(c, 1);
      assert.equal(received, 0);
      assert.equal(windowUpdates(c, 1), 0, 'no stream window returned while paused');
      held!.resume();
      assert.equal(received, 1 << 20);
      await sync(c, 2);
      assert.ok(windowUpdates(c, 1) >= 1 << 19, 'window returned once consumed');
      // A client past its window: FLOW_CONTROL_ERROR on that stream.
      c.write(frame(FRAME.headers, FLAG.endHeaders, 3, headerBlock(grpcRequestHeaders('/p'), true, false)));
      for (let sent = 0; sent <= 1 << 20; sent += piece.length) c.write(frame(FRAME.data, 0, 3, piece));
      const rst = await c.until((f) => f.type === FRAME.rst && f.stream === 3, 10_000);
      assert.equal(rst?.payload.readUInt32BE(0), 0x3);
    } finally { c.destroy(); }
  });

  test('sends no more than the client\'s windows allow, and more as they grow (WINDOW_UPDATE, SETTINGS_INITIAL_WINDOW_SIZE)', async () => {
    srv.handler = (stream) => { stream.respond({ ':status': 200 }); stream.end(Buffer.alloc(1000, 1)); };
    const c = await RawConn.connect(port);
    try {
      c.write(Buffer.concat([clientPreface, frame(FRAME.settings, 0, 0, Buffer.from([0, 4, 0, 0, 0, 100]))]));
      c.write(frame(FRAME.headers, FLAG.endHeaders | FLAG.endStream, 1, headerBlock(grpcRequestHeaders('/w'))));
      await sync(c, 3);
      const dataBytes = (): number => c.frames.filter((f) => f.type === FRAME.data && f.stream === 1).reduce((n, f) => n + f.payload.length, 0);
      assert.equal(dataBytes(), 100);
      c.write(frame(FRAME.window, 0, 1, Buffer.from([0, 0, 0, 50])));
      await sync(c, 4);
      assert.equal(dataBytes(), 150);
      c.write(frame(FRAME.settings, 0, 0, Buffer.from([0, 4, 0, 0, 0x10, 0])));
      const end = await c.until((f) => f.type === FRAME.data && f.stream === 1 && (f.flags & FLAG.endStream) !== 0, 10_000);
      assert.ok(end);
      assert.equal(dataBytes(), 1000);
    } finally { c.destroy(); }
  });

  test('stream ids: an even or a reused id ends the connection with PROTOCOL_ERROR', async () => {
    srv.handler = echoHandler;
    for (const ids of [[2], [5, 3]]) {
      const c = await RawConn.handshake(port);
      try {
        for (const id of ids) c.write(frame(FRAME.headers, FLAG.endHeaders, id, headerBlock(grpcRequestHeaders('/i'), true, false)));
        assert.ok(await c.waitClosed(10_000), `closed after ids ${ids}`);
        assert.equal(c.goaway()?.code, 0x1);
      } finally { c.destroy(); }
    }
  });

  test('past max concurrent streams: REFUSED_STREAM; a rapid-reset flood: GOAWAY ENHANCE_YOUR_CALM', async () => {
    srv.handler = () => { /* never answers */ };
    srv.maxConcurrentStreams = 2;
    const c = await RawConn.handshake(port);
    try {
      for (const id of [1, 3, 5]) c.write(frame(FRAME.headers, FLAG.endHeaders, id, headerBlock(grpcRequestHeaders('/c'), true, false)));
      const rst = await c.until((f) => f.type === FRAME.rst, 10_000);
      assert.equal(rst?.stream, 5);
      assert.equal(rst?.payload.readUInt32BE(0), 0x7);
    } finally { c.destroy(); srv.maxConcurrentStreams = 1000; }
    const d = await RawConn.handshake(port);
    try {
      const block = headerBlock(grpcRequestHeaders('/r'), true, false);
      const batch: Buffer[] = [];
      for (let id = 1; id < 2 * 3000; id += 2) batch.push(frame(FRAME.headers, FLAG.endHeaders, id, block), frame(FRAME.rst, 0, id, Buffer.from([0, 0, 0, 8])));
      d.write(Buffer.concat(batch));
      assert.ok(await d.waitClosed(10_000));
      assert.equal(d.goaway()?.code, 0xb);
    } finally { d.destroy(); }
  });

  test('past 64 MiB written and unsent on a connection, new streams are refused', async () => {
    const big = Buffer.alloc(8 * 1024 * 1024); // one buffer, written on every stream
    srv.handler = (stream) => { stream.respond({ ':status': 200 }); stream.write(big); };
    const c = await RawConn.connect(port);
    try {
      c.write(Buffer.concat([clientPreface, frame(FRAME.settings, 0, 0, Buffer.from([0, 4, 0, 0, 0, 0]))]));
      const block = headerBlock(grpcRequestHeaders('/held'), true, false);
      for (let id = 1; id <= 21; id += 2) c.write(frame(FRAME.headers, FLAG.endHeaders | FLAG.endStream, id, block));
      await sync(c, 5);
      const refused = c.frames.filter((f) => f.type === FRAME.rst && f.payload.readUInt32BE(0) === 0x7).map((f) => f.stream);
      // 8 streams hold 64 MiB; the 9th takes it past; the 10th and 11th are refused.
      assert.deepEqual(refused, [19, 21]);
    } finally { c.destroy(); }
  });
});

describe('OutputQueue', () => {
  test('a peer that does not read: past its bound in bytes the queue overflows, instead of growing', async () => {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const peer = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    const [socket] = await new Promise<[net.Socket]>((r) => server.once('connection', (s) => r([s])));
    peer.pause(); // never reads
    try {
      let overflowed = false;
      const q = new OutputQueue(socket, 4 * 1024 * 1024, 64 * 1024, () => { overflowed = true; }, () => { /* no data */ });
      const chunk = Buffer.alloc(64 * 1024);
      let pushed = 0;
      while (!overflowed && pushed < 1024 * 1024 * 1024) {
        q.push(chunk);
        pushed += chunk.length;
        await new Promise<void>((r) => setImmediate(r)); // the flush runs; the socket keeps what the peer does not take
      }
      assert.ok(overflowed, 'overflow reported');
      assert.ok(q.queuedBytes <= 4 * 1024 * 1024 + chunk.length);
    } finally { peer.destroy(); socket.destroy(); server.close(); }
  });
});

describe('own HTTP/2 server behind the ClientListener', () => {
  test('close(): GOAWAY to the client, the stream in flight still answered, then the connection ends', async () => {
    const { ClientListener } = await import('../src/api/listener.js');
    let release: (() => void) | undefined;
    const listener = new ClientListener({
      h2Server: 'own',
      onRequest: (_q, r) => { r.writeHead(404); r.end(); },
      onStream: (stream) => {
        stream.on('data', () => { /* drained */ });
        stream.on('end', () => {
          release = () => { stream.respond({ ':status': 200 }); stream.end('late'); };
        });
      },
    });
    const url = await listener.listen(new URL('http://127.0.0.1:0'));
    const c = await RawConn.handshake(Number(url.port));
    try {
      c.write(frame(FRAME.headers, FLAG.endHeaders | FLAG.endStream, 1, headerBlock(grpcRequestHeaders('/slow'))));
      await sync(c, 9);
      assert.ok(release, 'the request arrived');
      const closing = listener.close(10_000);
      const goaway = await c.until((f) => f.type === FRAME.goaway, 10_000);
      assert.equal(goaway?.payload.readUInt32BE(0), 1, 'last stream id 1');
      assert.equal(goaway?.payload.readUInt32BE(4), 0, 'NO_ERROR');
      assert.equal(c.isClosed, false, 'open while its stream is');
      release!();
      assert.ok(await c.waitClosed(10_000), 'closed once the stream ended');
      const data = c.frames.filter((f) => f.type === FRAME.data && f.stream === 1).map((f) => f.payload.toString()).join('');
      assert.equal(data, 'late');
      await closing;
    } finally { c.destroy(); }
  });
});
