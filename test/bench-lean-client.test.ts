// The benchmark's lean gRPC client (bench/h2-lean.ts) against real etcd and Concord: every put
// it reports as done is in the store, none twice, over enough requests that the server's
// connection window must be topped up (flow control) and its HPACK table churns; a refused
// request comes back with the server's own gRPC status and message. The bench's figures stand
// on this client, so it is checked against the real servers rather than against itself, and
// under the Node flags the benches run it with (bench/generator-process.ts).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { selectedTargets, startServer, type Server } from './harness.js';
import type { LoadConfig, LoadResult } from '../bench/loadgen.js';
import { GENERATOR_NODE_ARGS } from '../bench/generator-process.js';

const here = dirname(fileURLToPath(import.meta.url));
const loadgen = join(here, '../bench/loadgen.js');

const servers: Server[] = [];
after(async () => { for (const s of servers) await s.destroy(); });

function runLoad(cfg: Partial<LoadConfig> & Pick<LoadConfig, 'endpoint'>): Promise<LoadResult> {
  const full: LoadConfig = {
    op: 'put', clients: 20, connections: 2, valueBytes: 256, keySpace: 100_000, sequentialKeys: true,
    rangeKey: 'bench/range-key', serializable: false, warmupMs: 0, durationMs: 0, totalRequests: 3000,
    client: 'lean', ...cfg,
  };
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [...GENERATOR_NODE_ARGS, loadgen, JSON.stringify(full)], { timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) { reject(new Error(`loadgen: ${err.message}\n${stderr}`)); return; }
      resolve(JSON.parse(stdout) as LoadResult);
    });
  });
}

for (const target of selectedTargets()) {
  test(`${target}: every put the lean client counts is stored once, across window top-ups`, async () => {
    const s = await startServer({ target });
    servers.push(s);
    const r = await runLoad({ endpoint: s.endpoint });
    assert.equal(r.errors, 0, `first error: ${r.firstError}`);
    // Closed-loop clients already waiting when the count is reached still finish: at least 3000.
    assert.ok(r.requests >= 3000 && r.requests < 3000 + 20, `requests ${r.requests}`);
    // 3,000 requests of ~290 bytes are ~13 times the 65,535-byte window the connections opened with.
    const count = await s.etcdctl(['get', 'bench/', '--prefix', '--keys-only', '-w', 'json']);
    assert.equal(count.code, 0, count.stderr);
    const json = JSON.parse(count.stdout) as { header: { revision: number | string }; count: number | string };
    assert.equal(Number(json.count), r.requests, 'keys stored');
    assert.equal(Number(json.header.revision), r.requests + 1, 'one revision per put: none applied twice');

    const ranges = await runLoad({ endpoint: s.endpoint, op: 'range', rangeKey: 'bench/00000', totalRequests: 500 });
    assert.equal(ranges.errors, 0, `first error: ${ranges.firstError}`);
    assert.ok(ranges.requests >= 500);

    // txn-put (bench txn-100): each call is a Txn whose one success op puts one key: one
    // revision per call, every key again (sequential keys from 0), so no new key.
    const txns = await runLoad({ endpoint: s.endpoint, op: 'txn-put', totalRequests: 500 });
    assert.equal(txns.errors, 0, `first error: ${txns.firstError}`);
    const after = JSON.parse((await s.etcdctl(['get', 'bench/', '--prefix', '--keys-only', '-w', 'json'])).stdout) as { header: { revision: number | string }; count: number | string };
    assert.equal(Number(after.header.revision), r.requests + 1 + txns.requests, 'one revision per txn');
    assert.equal(Number(after.count), r.requests, 'the txns put keys already there');
    const first = await s.etcdctl(['get', 'bench/00000', '-w', 'json']);
    const kv = (JSON.parse(first.stdout) as { kvs: Array<{ version: number | string; value: string }> }).kvs[0]!;
    assert.equal(Number(kv.version), 2, 'bench/00000: put, then put by the first txn');
    assert.equal(Buffer.from(kv.value, 'base64').length, 256);
    await s.destroy();
  });

  if (target === 'concord') {
    // etcd 3.4 has no --max-concurrent-streams (3.5 added it); Concord has etcd 3.5's flag.
    test('concord: calls over the server\'s stream limit wait their turn and all complete', async () => {
      const s = await startServer({ target, extraArgs: ['--max-concurrent-streams', '2'] });
      servers.push(s);
      const r = await runLoad({ endpoint: s.endpoint, clients: 20, connections: 1, totalRequests: 2000 });
      assert.equal(r.errors, 0, `first error: ${r.firstError}`);
      const count = await s.etcdctl(['get', 'bench/', '--prefix', '--keys-only', '-w', 'json']);
      assert.equal(Number((JSON.parse(count.stdout) as { count: number | string }).count), r.requests);
      await s.destroy();
    });
  }

  test(`${target}: a refused request reports the server's gRPC status and message`, async () => {
    const s = await startServer({ target });
    servers.push(s);
    for (const args of [['user', 'add', 'root', '--new-user-password', 'pw'], ['auth', 'enable']]) {
      const r = await s.etcdctl(args);
      assert.equal(r.code, 0, r.stderr);
    }
    const r = await runLoad({ endpoint: s.endpoint, clients: 2, connections: 1, totalRequests: 5 });
    assert.equal(r.requests, 0);
    assert.ok(r.errors >= 5);
    // etcd's ErrUserEmpty (a put with no token while auth is on): InvalidArgument.
    assert.equal(r.firstError, 'grpc-status 3 etcdserver: user name is empty');
    await s.destroy();
  });
}
