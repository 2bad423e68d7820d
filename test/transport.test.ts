// The peer transport against REAL etcd 3.4. A real etcd is started whose --initial-cluster
// names a second member served by this test process: our PeerTransport on a loopback port,
// driving a src/raft RawNode over MemoryStorage. etcd dials our /raft/stream/* endpoints, we
// dial its; it must elect a leader with our vote and replicate to us before it is ready, and
// a put through real etcdctl commits only with our acknowledgement: the protocol end to end.
// Then the refusals: the same hostile requests to etcd's peer port and to ours get the same
// status and body.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { Server, freePort, sleep } from './harness.js';
import { memberId, clusterId } from '../src/server/ids.js';
import { RawNode, MemoryStorage } from '../src/raft/index.js';
import { createLogger } from '../src/log/index.js';
import {
  EntryType, MessageType, decodeConfChange, encodeMessage, newMessage, InternalRaftRequest, type Message,
} from '../src/proto/index.js';
import { PeerTransport, encodeStreamMessage, idString } from '../src/transport/index.js';
import { rng } from '../src/testkit/index.js';

const token = 'transport-interop';
let etcd: Server;
let peerServer: http.Server;
let transport: PeerTransport;
let tick: NodeJS.Timeout;
let ourUrl: string;
let id1: bigint; // etcd
let id2: bigint; // us
let cid: bigint;
const received: Message[] = [];
const logLines: string[] = [];
const storage = new MemoryStorage();
let node: RawNode;

/** Our member's raft loop: persist to memory, send through the transport, apply conf changes. */
function pump(): void {
  while (node.hasReady()) {
    const rd = node.ready();
    if (rd.hardState) storage.setHardState(rd.hardState);
    storage.append(rd.entries);
    transport.send(rd.messages);
    for (const e of rd.committedEntries) {
      if (e.type === EntryType.EntryConfChange && e.data) node.applyConfChange(decodeConfChange(e.data));
    }
    node.advance(rd);
  }
}

before(async () => {
  etcd = new Server({ target: 'etcd', name: 'e1', readyTimeoutMs: 60_000 });
  etcd.clientPort = await freePort();
  etcd.peerPort = await freePort();
  const ourPort = await freePort();
  ourUrl = `http://127.0.0.1:${ourPort}`;
  id1 = memberId([etcd.peerUrl], token);
  id2 = memberId([ourUrl], token);
  cid = clusterId([id1, id2]);
  etcd.extraArgs.push('--initial-cluster', `e1=${etcd.peerUrl},t2=${ourUrl}`, '--initial-cluster-token', token);

  node = new RawNode({
    id: id2, electionTick: 50, heartbeatTick: 1, storage, maxSizePerMsg: 1 << 20, maxInflightMsgs: 256,
    checkQuorum: false, preVote: false, random: rng(2),
  });
  node.bootstrap([id1, id2].sort((a, b) => (a < b ? -1 : 1)).map((id) => ({ id })));
  const logger = createLogger({ stream: { write: (s: string) => { logLines.push(s); } }, caller: false, level: 'debug' });
  transport = new PeerTransport({
    local: { memberId: id2, clusterId: cid, peerUrls: [ourUrl] },
    logger,
    handlers: {
      onMessage: (m) => { received.push(m); node.step(m); pump(); },
      onUnreachable: (id) => node.reportUnreachable(id),
      onSnapshotStatus: () => {},
      isIdRemoved: (id) => id === 0xdeadn,
      onRemovedFromCluster: () => {},
    },
  });
  transport.addPeer(id1, [etcd.peerUrl]);
  peerServer = http.createServer((req, res) => {
    if (transport.handle(req, res)) return;
    // What the member serves beside /raft (etcdserver's peer handler); etcd asks for it.
    if (req.url === '/version') return void res.end(JSON.stringify({ etcdserver: '3.4.23', etcdcluster: '3.4.0' }));
    res.writeHead(404).end('404 page not found\n');
  });
  await new Promise<void>((r) => peerServer.listen(ourPort, '127.0.0.1', r));
  tick = setInterval(() => { node.tick(); pump(); }, 100);
  pump();
  await etcd.start();
});

after(async () => {
  clearInterval(tick);
  await etcd?.destroy();
  transport?.stop();
  peerServer?.closeAllConnections();
  await new Promise<void>((r) => (peerServer ? peerServer.close(() => r()) : r()));
});

test('real etcd elects a leader with our vote over our transport and replicates to us', () => {
  const types = new Set(received.map((m) => m.type));
  assert.ok(types.has(MessageType.MsgVote) || types.has(MessageType.MsgPreVote), 'etcd asked for our vote');
  assert.ok(types.has(MessageType.MsgApp), 'etcd replicated entries to us');
  for (const m of received) {
    assert.equal(m.from, id1, `every message comes from etcd's id: ${MessageType[m.type]}`);
    assert.equal(m.to, id2);
  }
  assert.equal(node.status().softState.lead, id1);
  assert.ok(storage.lastIndex() > 2, 'entries appended beyond the two bootstrap conf changes');
});

test('both streams are dialed both ways (etcd attached our writers; we attached to its)', async () => {
  // Heartbeats keep flowing: wait for at least one more batch after the election.
  for (let i = 0; i < 400 && !received.some((m) => m.type === MessageType.MsgHeartbeat); i++) await sleep(50);
  const established = logLines.filter((l) => l.includes('"established TCP streaming connection with remote peer"'));
  const kinds = (key: string) => new Set(established.map((l) => JSON.parse(l)[key]).filter(Boolean));
  assert.deepEqual([...kinds('stream-writer-type')].sort(), ['stream Message', 'stream MsgApp v2']);
  assert.deepEqual([...kinds('stream-reader-type')].sort(), ['stream Message', 'stream MsgApp v2']);
  const counts = new Map<string, number>();
  for (const m of received) counts.set(MessageType[m.type]!, (counts.get(MessageType[m.type]!) ?? 0) + 1);
  assert.ok(received.some((m) => m.type === MessageType.MsgHeartbeat), `heartbeats on the message stream: ${JSON.stringify([...counts])}\n${logLines.join('')}`);
});

test('a put through real etcdctl commits with our acknowledgement and reaches our log', async () => {
  const put = await etcd.etcdctl(['put', 'transport-key', 'transport-value'], { timeoutMs: 15_000 });
  assert.equal(put.code, 0, put.stderr);
  assert.equal(put.stdout.trim(), 'OK');
  const get = await etcd.etcdctl(['get', 'transport-key', '--print-value-only']);
  assert.equal(get.stdout.trim(), 'transport-value');
  // The committed entry is in our storage, and our commit index covers it.
  let found = false;
  for (let i = 0; i < 400 && !found; i++) {
    const ents = storage.entries(storage.firstIndex(), storage.lastIndex() + 1, Infinity);
    found = ents.some((e) => {
      if (e.type !== EntryType.EntryNormal || !e.data?.length) return false;
      let r: InternalRaftRequest;
      try { r = InternalRaftRequest.decode(e.data); } catch { return false; } // etcd's v2 requests (publish)
      return r.put !== undefined && Buffer.from(r.put.key).toString() === 'transport-key' && e.index <= node.status().hardState.commit;
    });
    if (!found) await sleep(50);
  }
  assert.ok(found, 'the put is a committed entry of our log');
});

test('a proposal made on our member is forwarded to etcd, the leader, and committed there', async () => {
  // What a Concord follower does with a client write: raft forwards MsgProp to the leader.
  const req = InternalRaftRequest.fromPartial({
    header: { ID: 0x7e57n },
    put: { key: Buffer.from('proposed-by-member-2'), value: Buffer.from('over-our-stream') },
  });
  node.propose(InternalRaftRequest.encode(req).finish());
  pump();
  let value = '';
  for (let i = 0; i < 100 && value === ''; i++) {
    value = (await etcd.etcdctl(['get', 'proposed-by-member-2', '--print-value-only'])).stdout.trim();
    if (value === '') await sleep(100);
  }
  assert.equal(value, 'over-our-stream');
});

interface Probe {
  name: string;
  method: string;
  path: (from: string) => string;
  headers: (h: Record<string, string>) => Record<string, string>;
  body?: Uint8Array;
}

/** One request to a peer port as member `from` asking member `to`; status, body, cluster header. */
function request(port: number, p: Probe, from: bigint, to: bigint): Promise<{ status: number; body: string; cluster: string | undefined }> {
  const base: Record<string, string> = {
    'X-Server-From': idString(from), 'X-Server-Version': '3.4.23', 'X-Min-Cluster-Version': '3.0.0',
    'X-Etcd-Cluster-ID': idString(cid), 'X-Raft-To': idString(to),
  };
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: p.method, path: p.path(idString(from)), headers: p.headers(base) }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (s: string) => { body += s; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, cluster: res.headers['x-etcd-cluster-id'] as string | undefined }));
    });
    req.on('error', reject);
    req.end(p.body);
  });
}

const without = (h: Record<string, string>, k: string) => Object.fromEntries(Object.entries(h).filter(([n]) => n !== k));
const probes: Probe[] = [
  { name: 'wrong cluster id on a stream', method: 'GET', path: (f) => `/raft/stream/message/${f}`, headers: (h) => ({ ...h, 'X-Etcd-Cluster-ID': 'abc' }) },
  { name: 'no cluster id on msgapp', method: 'GET', path: (f) => `/raft/stream/msgapp/${f}`, headers: (h) => without(h, 'X-Etcd-Cluster-ID') },
  { name: 'remote version too low', method: 'GET', path: (f) => `/raft/stream/message/${f}`, headers: (h) => ({ ...h, 'X-Server-Version': '2.3.0' }) },
  { name: 'no version headers (2.0.0)', method: 'GET', path: (f) => `/raft/stream/message/${f}`, headers: (h) => without(without(h, 'X-Server-Version'), 'X-Min-Cluster-Version') },
  { name: 'min cluster version above ours', method: 'POST', path: () => '/raft', headers: (h) => ({ ...h, 'X-Min-Cluster-Version': '3.5.0' }) },
  { name: 'X-Raft-To names another member', method: 'GET', path: (f) => `/raft/stream/message/${f}`, headers: (h) => ({ ...h, 'X-Raft-To': '1234' }) },
  { name: 'unknown stream type', method: 'GET', path: (f) => `/raft/stream/foo/${f}`, headers: (h) => h },
  { name: 'from is not an id', method: 'GET', path: () => '/raft/stream/message/xyz', headers: (h) => h },
  { name: 'stream from an unknown member', method: 'GET', path: () => '/raft/stream/message/777', headers: (h) => h },
  { name: 'POST to a stream', method: 'POST', path: (f) => `/raft/stream/message/${f}`, headers: (h) => h },
  { name: 'GET on the pipeline', method: 'GET', path: () => '/raft', headers: (h) => h },
  { name: 'GET on the snapshot path', method: 'GET', path: () => '/raft/snapshot', headers: (h) => h },
  { name: 'pipeline body that is no raft message', method: 'POST', path: () => '/raft', headers: (h) => h, body: Buffer.from('\xff\xff\xff\xff', 'latin1') },
  {
    name: 'snapshot path with a non-MsgSnap message', method: 'POST', path: () => '/raft/snapshot', headers: (h) => h,
    body: Buffer.from(encodeStreamMessage(newMessage({ type: MessageType.MsgHeartbeat, from: 0xabcn, to: 0xdefn }))),
  },
  { name: 'snapshot path with a truncated head', method: 'POST', path: () => '/raft/snapshot', headers: (h) => h, body: Buffer.from([0, 0, 0]) },
];

test('hostile peer requests: our answers equal etcd\'s (status, body, cluster header)', async () => {
  const ourPort = Number(new URL(ourUrl).port);
  for (const p of probes) {
    const theirs = await request(etcd.peerPort, p, id2, id1);
    const ours = await request(ourPort, p, id1, id2);
    assert.deepEqual({ status: ours.status, body: ours.body, cluster: ours.cluster }, { status: theirs.status, body: theirs.body, cluster: theirs.cluster }, p.name);
  }
});

test('a removed member: its stream gets 410 "removed member", its message 403', async () => {
  const ourPort = Number(new URL(ourUrl).port);
  const r = await request(ourPort, { name: 'removed', method: 'GET', path: () => '/raft/stream/message/dead', headers: (h) => h }, 0xdeadn, id2);
  assert.deepEqual({ status: r.status, body: r.body }, { status: 410, body: 'removed member\n' });  // And a pipeline message from it is refused by Process, with etcd's HTTPError JSON.
  const body = encodeMessage(newMessage({ type: MessageType.MsgHeartbeat, from: 0xdeadn, to: id2 }));
  const p = await request(ourPort, { name: 'removed post', method: 'POST', path: () => '/raft', headers: (h) => h, body }, 0xdeadn, id2);
  assert.deepEqual({ status: p.status, body: p.body }, { status: 403, body: '{"message":"cannot process message from removed member"}' });
});

test('/raft/probing answers as xiang90/probing does', async () => {
  const res = await fetch(`${ourUrl}/raft/probing`);
  const theirs = await fetch(`${etcd.peerUrl}/raft/probing`);
  const [a, b] = [await res.json() as Record<string, unknown>, await theirs.json() as Record<string, unknown>];
  assert.deepEqual(Object.keys(a), Object.keys(b));
  assert.equal(a.OK, true);
  assert.ok(!Number.isNaN(Date.parse(String(a.Now))));
});


test('dialing etcd with another cluster id: etcd refuses, our reader logs etcd\'s reason, the pipeline reports unreachable', async () => {
  const lines: string[] = [];
  const unreachable: bigint[] = [];
  const stranger = new PeerTransport({
    local: { memberId: id2, clusterId: cid + 1n, peerUrls: [] },
    logger: createLogger({ stream: { write: (s: string) => { lines.push(s); } }, caller: false }),
    handlers: {
      onMessage: () => assert.fail('etcd sent a message to another cluster'),
      onUnreachable: (id) => unreachable.push(id),
      onSnapshotStatus: () => {},
      isIdRemoved: () => false,
      onRemovedFromCluster: () => {},
    },
  });
  try {
    stranger.addPeer(id1, [etcd.peerUrl]);
    stranger.send([newMessage({ type: MessageType.MsgHeartbeat, from: id2, to: id1, term: 1 })]);
    const refused = () => lines.filter((l) => l.includes('"request sent was ignored by remote peer due to cluster ID mismatch"'));
    for (let i = 0; i < 400 && (refused().length < 2 || unreachable.length === 0); i++) await sleep(50);
    assert.ok(refused().length >= 2, `both stream dials refused: ${lines.join('')}`);
    assert.equal(JSON.parse(refused()[0]!)['remote-peer-cluster-id'], idString(cid));
    assert.deepEqual(unreachable.slice(0, 1), [id1]);
  } finally {
    stranger.stop();
  }
});
