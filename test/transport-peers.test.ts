// Two PeerTransports in this process, each behind its own node:http server on loopback:
// streams both ways, the pipeline when a peer serves no streams, bounded send queues that
// drop with etcd's warning, snapshots (saved, and refused past their bound), reconnection
// after the peer's listener comes back, and hostile stream bytes that end one connection only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { freePort, sleep } from './harness.js';
import { createLogger } from '../src/log/index.js';
import { MessageType, newMessage, type Message } from '../src/proto/index.js';
import { PeerTransport, pipelineBufSize, connPerPipeline, type TransportHandlers } from '../src/transport/index.js';

const cid = 0x1234n;

interface Member {
  id: bigint;
  url: string;
  transport: PeerTransport;
  server: http.Server;
  got: Message[];
  unreachable: bigint[];
  snapshots: Array<'finish' | 'failure'>;
  saved: Buffer[];
  logs: string[];
  stop(): Promise<void>;
}

/** Serves `handle` on port (0 = any) until close. */
async function listen(port: number, handle: http.RequestListener): Promise<http.Server> {
  const server = http.createServer(handle);
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return server;
}

async function closeServer(s: http.Server): Promise<void> {
  s.closeAllConnections();
  await new Promise<void>((r) => s.close(() => r()));
}

async function member(id: bigint, opts: { port?: number; servePipelineOnly?: boolean; maxSnapshotBytes?: number } = {}): Promise<Member> {
  const port = opts.port ?? await freePort();
  const url = `http://127.0.0.1:${port}`;
  const logs: string[] = [];
  const m: Partial<Member> = { id, url, got: [], unreachable: [], snapshots: [], saved: [], logs };
  const handlers: TransportHandlers = {
    onMessage: (msg) => m.got!.push(msg),
    onUnreachable: (to) => m.unreachable!.push(to),
    onSnapshotStatus: (_to, outcome) => m.snapshots!.push(outcome),
    isIdRemoved: () => false,
    onRemovedFromCluster: () => {},
    saveSnapshot: async (_msg, db) => {
      const parts: Buffer[] = [];
      for await (const c of db) parts.push(Buffer.from(c));
      m.saved!.push(Buffer.concat(parts));
    },
  };
  const transport = new PeerTransport({
    local: { memberId: id, clusterId: cid, peerUrls: [url] },
    handlers,
    logger: createLogger({ stream: { write: (s: string) => { logs.push(s); } }, caller: false }),
    maxSnapshotBytes: opts.maxSnapshotBytes,
  });
  m.transport = transport;
  m.server = await listen(port, (req, res) => {
    if (opts.servePipelineOnly && req.url !== '/raft') return void res.writeHead(404).end();
    if (!transport.handle(req, res)) res.writeHead(404).end();
  });
  m.stop = async () => {
    transport.stop();
    await closeServer(m.server!);
  };
  return m as Member;
}

const heartbeat = (from: bigint, to: bigint, term = 1) => newMessage({ type: MessageType.MsgHeartbeat, from, to, term });
const app = (from: bigint, to: bigint, index: number) =>
  newMessage({ type: MessageType.MsgApp, from, to, term: 2, logTerm: 2, index, entries: [{ term: 2, index: index + 1, type: 0, data: new Uint8Array([index & 0xff]) }], commit: index });

async function until(what: string, cond: () => boolean, tries = 800): Promise<void> {
  for (let i = 0; i < tries && !cond(); i++) await sleep(25);
  assert.ok(cond(), what);
}

const established = (m: Member, key: 'stream-writer-type' | 'stream-reader-type') =>
  new Set(m.logs.filter((l) => l.includes('"established TCP streaming connection')).map((l) => JSON.parse(l)[key]).filter(Boolean));

test('two transports: both streams both ways, MsgApp on msgappv2, others on message', async () => {
  const a = await member(1n);
  const b = await member(2n);
  try {
    a.transport.addPeer(2n, [b.url]);
    b.transport.addPeer(1n, [a.url]);
    await until('a has both writers attached', () => established(a, 'stream-writer-type').size === 2);
    await until('b has both writers attached', () => established(b, 'stream-writer-type').size === 2);
    const sent: Message[] = [];
    for (let i = 0; i < 50; i++) sent.push(i % 2 === 0 ? app(1n, 2n, i) : heartbeat(1n, 2n));
    a.transport.send(sent);
    await until('b got all 50', () => b.got.length === 50);
    // Per stream, order is kept; across the two streams it is not (as in etcd).
    // Decoded byte fields are Buffers (views of what the socket gave): compare as plain arrays.
    const plain = (ms: Message[]) => ms.map((m) => ({ ...m, entries: m.entries.map((e) => ({ ...e, data: e.data && [...e.data] })) }));
    assert.deepEqual(plain(b.got.filter((m) => m.type === MessageType.MsgApp)), plain(sent.filter((m) => m.type === MessageType.MsgApp)));
    assert.deepEqual(b.got.filter((m) => m.type !== MessageType.MsgApp), sent.filter((m) => m.type !== MessageType.MsgApp));
    b.transport.send([heartbeat(2n, 1n, 7)]);
    await until('a got the reply', () => a.got.length === 1);
    assert.equal(a.got[0]!.term, 7);
  } finally {
    await a.stop();
    await b.stop();
  }
});

test('a peer that serves no streams gets messages through the pipeline', async () => {
  const a = await member(1n);
  const b = await member(2n, { servePipelineOnly: true });
  try {
    a.transport.addPeer(2n, [b.url]);
    a.transport.send([heartbeat(1n, 2n), app(1n, 2n, 3)]);
    await until('b got both by POST /raft', () => b.got.length === 2);
  } finally {
    await a.stop();
    await b.stop();
  }
});

test('a full pipeline drops with etcd\'s warning and reports the peer unreachable, without growing', async () => {
  // A peer that accepts requests and never answers: 4 posts in flight, 64 queued, rest dropped.
  const hung: http.ServerResponse[] = [];
  const silent = await listen(0, (_req, res) => { hung.push(res); });
  const a = await member(1n);
  try {
    a.transport.addPeer(2n, [`http://127.0.0.1:${(silent.address() as AddressInfo).port}`]);
    const n = 100;
    a.transport.send(Array.from({ length: n }, () => heartbeat(1n, 2n)));
    const dropped = n - connPerPipeline - pipelineBufSize;
    assert.equal(a.unreachable.length, dropped);
    const warnings = a.logs.filter((l) => l.includes('"msg":"dropped internal Raft message since sending buffer is full (overloaded network)"'));
    assert.equal(warnings.length, dropped);
    assert.equal(JSON.parse(warnings[0]!)['message-type'], 'MsgHeartbeat');
  } finally {
    await a.stop();
    await closeServer(silent);
  }
});

test('snapshots: the backend reaches saveSnapshot and raft hears finish; past the bound, failure', async () => {
  const a = await member(1n);
  const b = await member(2n, { maxSnapshotBytes: 1 << 20 });
  try {
    a.transport.addPeer(2n, [b.url]);
    const snap = (dbBytes: number) => ({
      message: newMessage({ type: MessageType.MsgSnap, from: 1n, to: 2n, term: 3, snapshot: { metadata: { index: 42, term: 3, confState: { voters: [1n, 2n], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false } } } }),
      db: (async function* () { for (let sent = 0; sent < dbBytes; sent += 64 * 1024) yield Buffer.alloc(Math.min(64 * 1024, dbBytes - sent), 7); })(),
      dbBytes,
    });
    assert.equal(await a.transport.sendSnapshot(snap(300_000)), true);
    assert.deepEqual(a.snapshots, ['finish']);
    assert.equal(b.saved.length, 1);
    assert.equal(b.saved[0]!.length, 300_000);
    assert.equal(b.got.length, 1);
    assert.equal(b.got[0]!.snapshot?.metadata.index, 42);
    assert.equal(await a.transport.sendSnapshot(snap(3 << 20)), false);
    assert.deepEqual(a.snapshots, ['finish', 'failure']);
    // The receiver answers 500 (its saveSnapshot saw the bound), as etcd's SaveDBFrom failure does.
    assert.ok(a.logs.some((l) => l.includes('"failed to send database snapshot"') && l.includes('unexpected http status Internal Server Error')), a.logs.join(''));
    assert.ok(b.logs.some((l) => l.includes('failed to save incoming database snapshot') && l.includes(`snapshot larger than ${1 << 20} bytes`)));
    assert.equal(b.got.length, 1);
  } finally {
    await a.stop();
    await b.stop();
  }
});

test('streams are dialed again after the peer\'s listener comes back', async () => {
  const a = await member(1n);
  const b = await member(2n);
  const port = Number(new URL(b.url).port);
  try {
    a.transport.addPeer(2n, [b.url]);
    b.transport.addPeer(1n, [a.url]);
    await until('b attached a\'s dials', () => established(b, 'stream-writer-type').size === 2);
    await b.stop();
    const b2 = await member(2n, { port });
    try {
      b2.transport.addPeer(1n, [a.url]);
      await until('a redialed b2\'s streams', () => established(b2, 'stream-writer-type').size === 2);
      b2.transport.send([heartbeat(2n, 1n, 9)]);
      await until('a got b2\'s message', () => a.got.some((m) => m.term === 9));
    } finally {
      await b2.stop();
    }
  } finally {
    await a.stop();
  }
});

test('hostile bytes on a stream end that connection only; the reader dials again', async () => {
  let dials = 0;
  const evil = await listen(0, (req, res) => {
    dials++;
    res.writeHead(200);
    // A message stream frame announcing 2^40 bytes, and garbage on msgapp.
    res.end(req.url!.includes('/message/') ? Buffer.from('0000010000000000', 'hex') : Buffer.from([9, 9, 9]));
  });
  const a = await member(1n);
  try {
    a.transport.addPeer(2n, [`http://127.0.0.1:${(evil.address() as AddressInfo).port}`]);
    await until('several dials', () => dials >= 6);
    assert.ok(a.logs.some((l) => l.includes('rafthttp: error limit exceeded')));
    assert.ok(a.logs.some((l) => l.includes('failed to parse type 9 in msgappv2 stream')));
    assert.equal(a.got.length, 0);
  } finally {
    await a.stop();
    await closeServer(evil);
  }
});
