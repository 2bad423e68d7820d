// The gateway's bounds, in process over a FakeService: bodies held at once across requests
// are bounded in bytes (a request past the budget is refused, the others go on), and one
// body is bounded as gRPC's receive limit bounds a message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { FakeService } from '../testkit.js';
import { gatewayHandler } from './index.js';

function send(port: number, chunks: string[], hold?: Promise<void>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/v3/kv/put', method: 'POST', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.write(chunks[0]);
    void (hold ?? Promise.resolve()).then(() => { for (const c of chunks.slice(1)) req.write(c); req.end(); });
  });
}

test('request bodies held at once are bounded across requests; a refused one does not stop the others', async () => {
  const server = http.createServer(gatewayHandler(new FakeService(), undefined, { maxBodyBytes: 10_000, maxBufferedBodyBytes: 12_000 }));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  try {
    const value = Buffer.alloc(5_000, 1).toString('base64'); // ~6.7 KB of JSON
    const body = JSON.stringify({ key: 'Zm9v', value });
    let release!: () => void;
    const held = new Promise<void>((r) => { release = r; });
    // The first request sends all but its last byte and waits; the second then passes the budget.
    const first = send(port, [body.slice(0, -1), body.slice(-1)], held);
    // Until the first body's bytes have reached the server a second one still fits; then it must not.
    let second = await send(port, [body]);
    for (let i = 0; i < 100 && second.status === 200; i++) {
      await new Promise((r) => setTimeout(r, 20));
      second = await send(port, [body]);
    }
    assert.equal(second.status, 429);
    assert.equal(JSON.parse(second.body).message, 'etcdserver: too many requests');
    release();
    const ok = await first;
    assert.equal(ok.status, 200, ok.body);
    // The budget was given back: the same body goes through now.
    assert.equal((await send(port, [body])).status, 200);
    // One body past maxBodyBytes is refused as gRPC's receive limit refuses a message.
    const huge = await send(port, [JSON.stringify({ key: 'Zm9v', value: Buffer.alloc(9_000).toString('base64') })]);
    assert.equal(huge.status, 429);
    assert.match(JSON.parse(huge.body).message, /^grpc: received message larger than max \(\d+ vs\. 10000\)$/);
  } finally {
    server.close();
    server.closeAllConnections();
  }
});
