// Lock's guarantees as docs/fencing.md states them, on Concord over the JSON gateway: a waiter
// whose lease expires while it waits is never granted the lock (etcd #11408, the Jepsen
// finding; etcd 3.4.23's server still grants it, clientv3 3.5 refuses with "mutex: session is
// expired"), and a txn comparing the lock key's create revision (the fencing token) writes
// while the lock is held and writes nothing once its lease has expired.

import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, selectedTargets, sleep, type Server } from './harness.js';
import { b64, post } from './gateway-http.js';

const servers: Server[] = [];
after(async () => { for (const s of servers) await s.destroy(); });

const call = async (s: Server, path: string, body: unknown): Promise<{ status: number; json: any }> => {
  const a = await post(`${s.endpoint}${path}`, JSON.stringify(body));
  return { status: a.status, json: JSON.parse(a.body) };
};

/** Polls (bounded, generously) until `key` exists (present) or is gone (its lease expired on the server). */
async function waitFor(s: Server, key: string, want: 'present' | 'gone'): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const count = (await call(s, '/v3/kv/range', { key: b64(key), count_only: true })).json.count;
    if ((count === undefined) === (want === 'gone')) return;
    await sleep(100);
  }
  throw new Error(`${key} never ${want}`);
}

describe('Lock: fencing and expiry (docs/fencing.md)', { skip: !selectedTargets().includes('concord') }, () => {
  test('a waiter whose lease expired while it waited is refused, not granted', async () => {
    const s = await startServer({ target: 'concord' });
    servers.push(s);
    await call(s, '/v3/lease/grant', { ID: '4096', TTL: '60' });
    await call(s, '/v3/lease/grant', { ID: '8192', TTL: '2' });
    assert.equal((await call(s, '/v3/lock/lock', { name: b64('L'), lease: '4096' })).status, 200);
    const waiter = call(s, '/v3/lock/lock', { name: b64('L'), lease: '8192' });
    await waitFor(s, 'L/2000', 'present'); // the waiter is in line
    await waitFor(s, 'L/2000', 'gone'); // and its key went with its lease
    await call(s, '/v3/lock/unlock', { key: b64('L/1000') });
    const w = await waiter;
    assert.deepEqual(w, { status: 500, json: { error: 'mutex: session is expired', message: 'mutex: session is expired', code: 2 } });
  });

  test('a txn comparing the fencing token writes while held and not after the lease expired', async () => {
    const s = await startServer({ target: 'concord' });
    servers.push(s);
    await call(s, '/v3/lease/grant', { ID: '12288', TTL: '2' });
    const key = (await call(s, '/v3/lock/lock', { name: b64('jobs'), lease: '12288' })).json.key as string;
    assert.equal(key, b64('jobs/3000'));
    const token = (await call(s, '/v3/kv/range', { key })).json.kvs[0].create_revision as string;
    const guarded = (value: string) => call(s, '/v3/kv/txn', {
      compare: [{ key, target: 'CREATE', result: 'EQUAL', create_revision: token }],
      success: [{ request_put: { key: b64('balance'), value: b64(value) } }],
    });
    assert.equal((await guarded('100')).json.succeeded, true);
    await waitFor(s, 'jobs/3000', 'gone');
    assert.equal((await guarded('50')).json.succeeded, undefined); // false: omitted, as grpc-gateway does
    const balance = (await call(s, '/v3/kv/range', { key: b64('balance') })).json.kvs[0].value;
    assert.equal(Buffer.from(balance, 'base64').toString(), '100');
  });
});
