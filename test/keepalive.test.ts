// gRPC keepalive on the server, against real etcd and Concord: a client that pings too often
// is told "too_many_pings" (GOAWAY ENHANCE_YOUR_CALM) and dropped; the server pings every
// --grpc-keepalive-interval and closes a connection that does not answer within
// --grpc-keepalive-timeout, while a connection that answers stays.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { targetsWithBothH2, startServer, type Server } from './harness.js';
import { FLAG, FRAME, RawConn, frame } from './h2raw.js';

const servers: Server[] = [];
after(async () => { for (const s of servers) await s.destroy(); });

for (const { target, label, env } of targetsWithBothH2()) {
  describe(`${label}: gRPC keepalive`, () => {
    test('a client pinging with no stream open is sent GOAWAY ENHANCE_YOUR_CALM "too_many_pings" on its third strike', async () => {
      const s = await startServer({ target, ...(env ? { env } : {}) });
      servers.push(s);
      const c = await RawConn.handshake(s.clientPort);
      try {
        for (let i = 0; i < 4; i++) c.write(frame(FRAME.ping, 0, 0, Buffer.alloc(8, i)));
        const goaway = await c.until((f) => f.type === FRAME.goaway, 10_000);
        assert.ok(goaway, 'a GOAWAY');
        assert.equal(goaway.payload.readUInt32BE(4), 0xb, 'ENHANCE_YOUR_CALM');
        assert.equal(goaway.payload.subarray(8).toString(), 'too_many_pings');
        assert.equal(await c.waitClosed(10_000), true, 'and the connection is closed');
      } finally { c.destroy(); }
    });

    test('the server pings every interval; a client that never answers is closed after the timeout, one that answers stays', async () => {
      const s = await startServer({ target, ...(env ? { env } : {}), extraArgs: ['--grpc-keepalive-interval', '1s', '--grpc-keepalive-timeout', '1s'] });
      servers.push(s);
      const silent = await RawConn.handshake(s.clientPort);
      const polite = await RawConn.handshake(s.clientPort);
      let answered = 0;
      const answer = setInterval(() => {
        const pings = polite.frames.filter((f) => f.type === FRAME.ping && (f.flags & FLAG.ack) === 0);
        for (const p of pings.slice(answered)) polite.write(frame(FRAME.ping, FLAG.ack, 0, p.payload));
        answered = pings.length;
      }, 50);
      try {
        const ping = await silent.until((f) => f.type === FRAME.ping && (f.flags & FLAG.ack) === 0, 10_000);
        assert.ok(ping, 'the server pings an idle connection');
        assert.equal(await silent.waitClosed(10_000), true, 'no answer: closed');
        assert.equal(polite.isClosed, false, 'the connection that answers its pings stays open');
        assert.ok(answered >= 1, 'and it was pinged too');
      } finally {
        clearInterval(answer);
        silent.destroy();
        polite.destroy();
      }
    });
  });
}
