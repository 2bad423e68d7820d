// Real etcdctl (Debian's etcd-client) against the API layer over the in-memory fake: checks
// that etcd's own Go client accepts our framing, trailers, errors and snapshot stream.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Api, startApi } from './index.js';
import { FakeService } from './testkit.js';

function etcdctl(endpoint: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('etcdctl', ['--endpoints', endpoint, '--command-timeout=5s', ...args], { env: { ...process.env, ETCDCTL_API: '3' } },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
  });
}

const haveEtcdctl = await new Promise<boolean>((r) => execFile('etcdctl', ['version'], { env: { ...process.env, ETCDCTL_API: '3' } }, (e) => r(!e)));

for (const [thread, h2Server] of [[false, 'node'], [false, 'own'], [true, 'node']] as const) {
  const mode = thread ? ' (transport on a worker thread)' : h2Server === 'own' ? ' (own HTTP/2)' : '';
  describe(`real etcdctl against the API${mode}`, { skip: haveEtcdctl ? false : 'etcdctl not installed' }, () => {
    // bbolt files are whole pages; etcdctl checks (size - 32) % 512 == 0 before the sha256.
    const snapshot = randomBytes(5 * 4096);
    let api: Api;
    let endpoint: string;
    let dir: string;
    before(async () => {
      api = await startApi({ thread, h2Server, service: new FakeService({ snapshot }), listen: [new URL('http://127.0.0.1:0')] });
      endpoint = new URL(api.addresses[0]!).host;
      dir = await mkdtemp(join(tmpdir(), 'concord-api-'));
    });
    after(async () => {
      await api.close();
      await rm(dir, { recursive: true, force: true });
    });

    test('put then get -w json round-trips through etcd\'s Go client', async () => {
      assert.equal((await etcdctl(endpoint, 'put', 'foo', 'bar')).stdout, 'OK\n');
      const got = JSON.parse((await etcdctl(endpoint, 'get', 'foo', '-w', 'json')).stdout);
      assert.equal(Buffer.from(got.kvs[0].value, 'base64').toString(), 'bar');
      assert.equal(got.header.member_id, 10276657743932975437);
    });

    test('an error reaches etcdctl with etcd\'s message', async () => {
      const r = await etcdctl(endpoint, 'get', '');
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /etcdserver: key is not provided/);
    });

    test('endpoint health and member list work', async () => {
      const h = await etcdctl(endpoint, 'endpoint', 'health');
      assert.equal(h.code, 0, h.stderr);
      assert.match(h.stdout + h.stderr, /is healthy/);
      assert.match((await etcdctl(endpoint, 'member', 'list')).stdout, /^8e9e05c52164694d, started, default,/);
    });

    test('endpoints given as URLs work too (grpc-go then sends the whole URL as :authority)', async () => {
      const url = `http://${endpoint}`;
      const st = await etcdctl(url, 'endpoint', 'status', '-w', 'json');
      assert.equal(st.code, 0, st.stderr);
      assert.equal(JSON.parse(st.stdout)[0].Status.version, '3.4.23');
      assert.equal((await etcdctl(url, 'put', 'viaurl', 'v')).stdout, 'OK\n');
      assert.equal((await etcdctl(url, 'get', 'viaurl', '--print-value-only')).stdout, 'v\n');
    });

    test('snapshot save accepts the stream and writes the blob plus its sha256', async () => {
      const path = join(dir, 'snap.db');
      const r = await etcdctl(endpoint, 'snapshot', 'save', path);
      assert.equal(r.code, 0, r.stderr);
      const file = await readFile(path);
      assert.deepEqual(file, Buffer.concat([snapshot, createHash('sha256').update(snapshot).digest()]));
    });
  });
}
