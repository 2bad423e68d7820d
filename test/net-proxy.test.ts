// The peer proxy (test/net-proxy.ts): first over plain loopback TCP with an HTTP-like first
// request carrying X-Server-From (as rafthttp sends it), then in front of a real 3-member etcd
// cluster, where an isolated leader loses its leadership and a healed one catches up.

import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { createHash } from 'node:crypto';
import { PeerProxies, etcdMemberId } from './net-proxy.js';
import { startCluster, type Cluster } from './cluster-harness.js';
import { b, mk, freePort, sleep, GrpcError } from './harness.js';
import { PutRequest, PutResponse } from '../src/proto/gen/etcdserverpb/rpc.js';

const ids = [etcdMemberId(['http://127.0.0.1:1'], 't'), etcdMemberId(['http://127.0.0.1:2'], 't')];
const hello = (from: bigint | null) => `POST /raft HTTP/1.1\r\n${from === null ? '' : `X-Server-From: ${from.toString(16)}\r\n`}\r\n`;

/** An upstream that records what it receives and echoes it back. */
async function echoServer() {
  const received: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    sockets.add(s);
    s.on('data', (d) => { received.push(d); s.write(d); });
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  });
  const port = await freePort();
  await new Promise<void>((r) => srv.listen(port, '127.0.0.1', () => r()));
  return {
    port,
    text: () => Buffer.concat(received).toString(),
    bytes: () => Buffer.concat(received),
    close: () => { for (const s of sockets) s.destroy(); return new Promise<void>((r) => srv.close(() => r())); },
  };
}

/** Member 0 is a dialer only; member 1's peer port is the echo server behind the proxy. */
async function rig() {
  const up = await echoServer();
  const pn = await PeerProxies.start([
    { name: 'a', listenPort: await freePort(), targetPort: await freePort(), id: ids[0]! },
    { name: 'b', listenPort: await freePort(), targetPort: up.port, id: ids[1]! },
  ]);
  const dial = async (from: bigint | null) => {
    const got: Buffer[] = [];
    const s = net.connect(pn.members[1]!.listenPort, '127.0.0.1');
    let closed = false;
    s.on('data', (d) => got.push(d));
    s.on('error', () => {});
    s.on('close', () => { closed = true; });
    await new Promise<void>((r, j) => { s.once('connect', () => r()); s.once('error', j); });
    s.write(hello(from));
    return { s, echoed: () => Buffer.concat(got).toString(), closed: () => closed };
  };
  return { up, pn, dial, close: async () => { await pn.close(); await up.close(); } };
}

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('net-proxy over loopback TCP', () => {
  test('open: bytes flow both ways and are counted per directed link', async () => {
    const r = await rig();
    try {
      const c = await r.dial(ids[0]!);
      c.s.write('ping');
      await until(() => c.echoed().endsWith('ping'), 'echo');
      assert.ok(r.pn.delivered[0]![1]! >= hello(ids[0]!).length + 4);
      assert.ok(r.pn.delivered[1]![0]! >= 4);
      c.s.destroy();
    } finally { await r.close(); }
  });

  test('drop a->b holds bytes (nothing reaches b) and heal delivers them in order', async () => {
    const r = await rig();
    try {
      const c = await r.dial(ids[0]!);
      await until(() => r.up.text().includes('\r\n\r\n'), 'first request');
      r.pn.cut(0, 1, 'drop');
      c.s.write('one,');
      c.s.write('two');
      await sleep(300);
      assert.ok(!r.up.text().includes('one'), 'nothing crossed a cut link');
      r.pn.heal();
      await until(() => c.echoed().endsWith('one,two'), 'held bytes after heal');
      c.s.destroy();
    } finally { await r.close(); }
  });

  test('drop b->a holds the replies only', async () => {
    const r = await rig();
    try {
      const c = await r.dial(ids[0]!);
      await until(() => c.echoed().length > 0, 'first echo');
      r.pn.cut(1, 0, 'drop');
      c.s.write('req');
      await until(() => r.up.text().endsWith('req'), 'request reaches b');
      await sleep(200);
      assert.ok(!c.echoed().endsWith('req'), 'the reply is held');
      r.pn.heal(1, 0);
      await until(() => c.echoed().endsWith('req'), 'reply after heal');
      c.s.destroy();
    } finally { await r.close(); }
  });

  test('drop with 8 MiB in flight: the sender is back-pressured and every byte arrives in order after heal', async () => {
    const r = await rig();
    try {
      const c = await r.dial(ids[0]!);
      await until(() => r.up.text().includes('\r\n\r\n'), 'first request');
      const before = r.up.bytes().length;
      r.pn.cut(0, 1, 'drop');
      const payload = Buffer.alloc(8 << 20);
      for (let i = 0; i < payload.length; i += 4) payload.writeUInt32LE(i, i);
      c.s.write(payload);
      await sleep(300);
      assert.equal(r.up.bytes().length, before, 'nothing crossed');
      assert.ok(c.s.writableLength > 0, 'the sender is blocked, not the proxy buffering everything');
      r.pn.heal();
      await until(() => r.up.bytes().length === before + payload.length, 'all bytes', 30_000);
      const got = r.up.bytes().subarray(before);
      assert.equal(createHash('sha1').update(got).digest('hex'), createHash('sha1').update(payload).digest('hex'));
      c.s.destroy();
    } finally { await r.close(); }
  });

  test('refuse resets existing connections and new dials from a; after heal a dials again', async () => {
    const r = await rig();
    try {
      const c = await r.dial(ids[0]!);
      await until(() => c.echoed().length > 0, 'first echo');
      r.pn.cut(0, 1, 'refuse');
      await until(() => c.closed(), 'reset of the existing connection');
      const again = await r.dial(ids[0]!);
      await until(() => again.closed(), 'reset of a new dial');
      r.pn.heal();
      const ok = await r.dial(ids[0]!);
      ok.s.write('back');
      await until(() => ok.echoed().endsWith('back'), 'echo after heal');
      ok.s.destroy();
    } finally { await r.close(); }
  });

  test('delay holds each chunk at least that long, order kept', async () => {
    const r = await rig();
    try {
      const c = await r.dial(ids[0]!);
      await until(() => c.echoed().length > 0, 'first echo');
      r.pn.delay(0, 1, 400);
      const t0 = Date.now();
      c.s.write('d1');
      c.s.write('d2');
      await until(() => r.up.text().endsWith('d1d2'), 'delayed bytes');
      assert.ok(Date.now() - t0 >= 400, 'not delivered before the delay');
      c.s.destroy();
    } finally { await r.close(); }
  });

  test('a connection without X-Server-From is cut while any link of its destination is cut', async () => {
    const r = await rig();
    try {
      r.pn.cut(0, 1, 'drop');
      const c = await r.dial(null);
      c.s.write('anon');
      await sleep(300);
      assert.equal(r.up.text(), '', 'unknown dialer held');
      r.pn.heal();
      await until(() => r.up.text().endsWith('anon'), 'unknown dialer after heal');
      c.s.destroy();
    } finally { await r.close(); }
  });
});

const clusters: Cluster[] = [];
after(async () => { for (const c of clusters) await c.destroy(); });

async function putVia(c: Cluster, i: number, key: string, value: string, timeoutMs = 3000): Promise<void> {
  await c.member(i).rpc.unary('/etcdserverpb.KV/Put', PutRequest, PutResponse, mk.put({ key: b(key), value: b(value) }), timeoutMs);
}

describe('net-proxy in front of a real 3-member etcd cluster', () => {
  for (const how of ['drop', 'refuse'] as const) {
    test(`isolate the leader (${how}): the majority elects another and takes writes; heal: the old leader catches up`, async () => {
      const c = await startCluster({ target: 'etcd', size: 3, proxy: true, flags: ['--heartbeat-interval', '50', '--election-timeout', '500'] });
      clusters.push(c);
      const net_ = c.net!;
      const old = await c.waitForLeader();
      for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) {
        if (i !== j) assert.ok(net_.delivered[i]![j]! > 0, `peer traffic ${i}->${j} went through the proxy, its dialer known`);
      }
      const rest = [0, 1, 2].filter((i) => i !== old);
      net_.isolate(old, how);
      let leader = -1;
      for (let n = 0; n < 200 && leader < 0; n++) {
        const st = await c.statuses(1000);
        const l = st[rest[0]!]?.leader;
        const idx = st.findIndex((s) => s?.header?.memberId === l);
        if (l && rest.includes(idx) && st[rest[1]!]?.leader === l) leader = idx;
        else await sleep(100);
      }
      assert.ok(leader >= 0, 'the majority elected a leader of its own');
      for (let n = 0; ; n++) {
        try { await putVia(c, rest[0]!, 'p/k', 'majority'); break; } catch (e) {
          if (n > 20 || !(e instanceof GrpcError)) throw e;
          await sleep(200);
        }
      }
      // The isolated member cannot commit: a write through it fails (its deadline passes or it
      // is refused), and never lands.
      await assert.rejects(putVia(c, old, 'p/k', 'isolated', 2000));
      net_.heal();
      await c.waitForLeader();
      for (let n = 0; n < 100; n++) {
        const r = await c.member(old).rpc.range({ key: b('p/k'), serializable: true }).catch(() => null);
        if (r?.kvs[0] && Buffer.from(r.kvs[0].value).toString() === 'majority') break;
        await sleep(100);
      }
      const r = await c.member(old).rpc.range({ key: b('p/k') });
      assert.equal(Buffer.from(r.kvs[0]!.value).toString(), 'majority', 'the old leader caught up; the isolated write never applied');
    });
  }
});
