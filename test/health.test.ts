// /health, /version and /debug/vars against real etcd 3.4 (status, body, content type and
// CORS headers compared request by request), including /health's QGET through raft (each
// check adds one raft entry on both), ?exclude= of a raised NOSPACE alarm and
// ?serializable=true. /livez and /readyz are etcd 3.5.11+'s (etcd 3.4 answers 404): their
// bodies are checked against 3.5.11's format on Concord only.

import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { startServer, selectedTargets, type Server, type TargetName } from './harness.js';
import { AlarmRequest_AlarmAction, AlarmType } from '../src/proto/gen/etcdserverpb/rpc.js';

const servers: Server[] = [];
after(async () => { for (const s of servers) await s.destroy(); });

interface Answer { status: number; body: string; headers: Record<string, string | undefined> }

/** One HTTP/1.1 request; the headers a client could tell apart (Date and framing left out). */
function request(method: string, url: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => {
        const h = res.headers;
        resolve({
          status: res.statusCode ?? 0, body,
          headers: {
            'content-type': h['content-type'] as string | undefined, 'x-content-type-options': h['x-content-type-options'] as string | undefined, allow: h.allow as string | undefined,
            'access-control-allow-origin': h['access-control-allow-origin'] as string | undefined,
            'access-control-allow-methods': h['access-control-allow-methods'] as string | undefined,
            'access-control-allow-headers': h['access-control-allow-headers'] as string | undefined,
          },
        });
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function raftIndex(s: Server): Promise<number> {
  const c = s.client();
  try { return (await c.status()).raftIndex; } finally { c.close(); }
}

async function setAlarm(s: Server, action: AlarmRequest_AlarmAction, alarm: AlarmType): Promise<void> {
  const c = s.client();
  try {
    const memberID = (await c.status()).header!.memberId;
    await c.alarm({ action, memberID, alarm });
  } finally { c.close(); }
}

/** The transcript both targets must produce identically. */
async function transcript(s: Server): Promise<Array<[string, Answer | number]>> {
  const out: Array<[string, Answer | number]> = [];
  const ask = async (method: string, path: string) => { out.push([`${method} ${path}`, await request(method, `${s.endpoint}${path}`)]); };
  await ask('GET', '/health');
  const before = await raftIndex(s);
  await ask('GET', '/health');
  await ask('GET', '/health');
  out.push(['raft entries added by two GET /health', (await raftIndex(s)) - before]);
  await ask('POST', '/health');
  await ask('GET', '/health?serializable=true');
  await ask('GET', '/version');
  await ask('POST', '/version');
  await ask('GET', '/nope');
  await ask('OPTIONS', '/health');
  await ask('OPTIONS', '/v3/kv/range');
  await setAlarm(s, AlarmRequest_AlarmAction.ACTIVATE, AlarmType.NOSPACE);
  await ask('GET', '/health');
  await ask('GET', '/health?exclude=NOSPACE');
  await ask('GET', '/health?exclude=CORRUPT');
  await ask('GET', '/health?exclude=CORRUPT&exclude=NOSPACE');
  await setAlarm(s, AlarmRequest_AlarmAction.DEACTIVATE, AlarmType.NOSPACE);
  await ask('GET', '/health');
  return out;
}

describe('health endpoints', () => {
  const targets = selectedTargets();
  const results = new Map<TargetName, { server: Server; transcript: Array<[string, Answer | number]> }>();

  test('the same requests on each target', async () => {
    await Promise.all(targets.map(async (target) => {
      const server = await startServer({ target });
      servers.push(server);
      results.set(target, { server, transcript: await transcript(server) });
    }));
  });

  for (const target of targets) {
    test(`${target}: /health answers as etcd 3.4 does, through raft, honouring ?exclude=`, () => {
      const t = new Map(results.get(target)!.transcript);
      const a = (k: string) => t.get(k) as Answer;
      assert.deepEqual([a('GET /health').status, a('GET /health').body], [200, '{"health":"true"}']);
      assert.equal(t.get('raft entries added by two GET /health'), 2);
      assert.deepEqual([a('POST /health').status, a('POST /health').body, a('POST /health').headers.allow], [405, 'Method Not Allowed\n', 'GET']);
      assert.equal(a('GET /health?serializable=true').status, 200);
      assert.deepEqual([a('GET /health?exclude=NOSPACE').status, a('GET /health?exclude=NOSPACE').body], [200, '{"health":"true"}']);
      assert.deepEqual([a('GET /health?exclude=CORRUPT').status, a('GET /health?exclude=CORRUPT').body], [503, '{"health":"false"}\n']);
    });
  }

  if (targets.includes('etcd') && targets.includes('concord')) {
    test('every answer equals etcd\'s (status, body, content type, CORS headers)', () => {
      const e = results.get('etcd')!.transcript;
      const c = results.get('concord')!.transcript;
      assert.deepEqual(c.map(([k]) => k), e.map(([k]) => k));
      for (let i = 0; i < e.length; i++) assert.deepEqual(c[i]![1], e[i]![1], e[i]![0]);
    });

    test('/debug/vars: Concord\'s variables are a subset of etcd\'s, raft.status has etcd\'s shape', async () => {
      const [e, c] = await Promise.all(['etcd', 'concord'].map(async (t) => {
        const r = await request('GET', `${results.get(t as TargetName)!.server.endpoint}/debug/vars`);
        assert.equal(r.status, 200);
        assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
        return JSON.parse(r.body) as Record<string, any>;
      }));
      for (const k of Object.keys(c!)) assert.ok(k in e!, `${k} not in etcd's /debug/vars`);
      assert.ok('raft.status' in c! && 'cmdline' in c!);
      assert.deepEqual(Object.keys(c!['raft.status']), Object.keys(e!['raft.status']));
      assert.equal(c!['raft.status'].raftState, 'StateLeader');
      assert.equal(c!['raft.status'].lead, c!['raft.status'].id);
      assert.deepEqual(Object.keys(Object.values(c!['raft.status'].progress)[0] as object), ['match', 'next', 'state']);
    });
  }

  if (targets.includes('concord')) {
    test('concord: /livez and /readyz as etcd 3.5.11 serves them (etcd 3.4: 404)', async () => {
      const s = results.get('concord')!.server;
      const get = async (path: string, method = 'GET') => {
        const r = await request(method, `${s.endpoint}${path}`);
        return [r.status, r.body];
      };
      assert.deepEqual(await get('/livez'), [200, 'ok\n']);
      assert.deepEqual(await get('/livez?verbose'), [200, '[+]serializable_read ok\nok\n']);
      assert.deepEqual(await get('/readyz?verbose'), [200, '[+]data_corruption ok\n[+]serializable_read ok\n[+]linearizable_read ok\nok\n']);
      assert.deepEqual(await get('/readyz?verbose&exclude=linearizable_read'), [200, '[+]data_corruption ok\n[+]serializable_read ok\nok\n']);
      assert.deepEqual(await get('/readyz/linearizable_read?verbose'), [200, '[+]linearizable_read ok\nok\n']);
      assert.deepEqual(await get('/readyz/nope'), [404, '404 page not found\n']);
      assert.deepEqual(await get('/livez', 'POST'), [405, 'Method Not Allowed\n']);
      await setAlarm(s, AlarmRequest_AlarmAction.ACTIVATE, AlarmType.CORRUPT);
      try {
        assert.deepEqual(await get('/readyz'), [503, '[-]data_corruption failed: alarm activated: CORRUPT\n[+]serializable_read ok\n[+]linearizable_read ok\n\n']);
        assert.deepEqual(await get('/readyz?exclude=data_corruption'), [200, 'ok\n']);
        assert.deepEqual(await get('/livez'), [200, 'ok\n']);
        assert.deepEqual(await get('/health'), [503, '{"health":"false"}\n']);
      } finally {
        await setAlarm(s, AlarmRequest_AlarmAction.DEACTIVATE, AlarmType.CORRUPT);
      }
    });
  }
  if (targets.includes('etcd')) {
    test('etcd 3.4 has no /livez or /readyz (the probes are 3.5.11+)', async () => {
      const r = await request('GET', `${results.get('etcd')!.server.endpoint}/readyz`);
      assert.equal(r.status, 404);
    });
  }
});

// The harness waits for readiness without /health: each 3.4 /health is a raft entry, and a
// probe retried under load left twin members at different raft indexes (concordctl.test's
// endpoint status said 20 where etcdctl's twin said 19 in CI).
for (const target of selectedTargets()) {
  test(`${target}: starting a member adds no raft entry of the harness's own`, async () => {
    const server = await startServer({ target });
    servers.push(server);
    // The member's own four: its conf change, the leader's empty entry, the cluster version
    // and its attributes.
    assert.equal(await raftIndex(server), 4);
  });
}
