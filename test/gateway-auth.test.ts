// Every JSON gateway route with auth on, called with no Authorization header, a bogus one, and a
// user's token (READWRITE on prefix "a", no root), compared with etcd 3.4's grpc-gateway. etcd's
// gateway forwards the header as the gRPC call's `authorization` metadata, so each route must
// take the token as its gRPC method does (services.ts TokenUse): Status, MemberList,
// MoveLeader, LeaseTimeToLive and LeaseLeases never look at it; Alarm, Defragment, Hash and
// Snapshot answer a refusal with the auth store's own text (code Unknown, HTTP 500); the rest
// answer "invalid auth token". Streams (watch, keep-alive, observe, snapshot): their first line.
// Then a few routes with auth off again, where a bogus header is still read.

import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, selectedTargets, type Server, type TargetName } from './harness.js';
import { b64, normalize, post, streamLines } from './gateway-http.js';
import { routes } from '../src/api/gateway/routes.js';

const servers: Server[] = [];
after(async () => { for (const s of servers) await s.destroy(); });

type Step = { step: string; status?: number; body: unknown };

const lease = '4096';
/** A request body per route that passes etcd's request checks, so the token decides the answer. */
const bodies: Record<string, unknown> = {
  '/v3/kv/range': { key: b64('a') },
  '/v3/kv/put': { key: b64('a1'), value: b64('v') },
  '/v3/kv/deleterange': { key: b64('a1') },
  '/v3/kv/txn': { success: [{ request_put: { key: b64('a2'), value: b64('t') } }] },
  '/v3/kv/compaction': { revision: '1' },
  '/v3/watch': { create_request: { key: b64('a') } },
  '/v3/lease/grant': { TTL: '60' },
  '/v3/lease/revoke': { ID: lease },
  '/v3/lease/keepalive': { ID: lease },
  '/v3/lease/timetolive': { ID: lease },
  '/v3/kv/lease/revoke': { ID: lease },
  '/v3/kv/lease/timetolive': { ID: lease },
  '/v3/cluster/member/add': { peerURLs: ['http://127.0.0.1:1'], isLearner: true },
  '/v3/cluster/member/remove': { ID: '1' },
  '/v3/cluster/member/update': { ID: '1', peerURLs: ['http://127.0.0.1:1'] },
  '/v3/cluster/member/promote': { ID: '1' },
  '/v3/maintenance/alarm': { action: 'GET' },
  '/v3/maintenance/transfer-leadership': { targetID: '1' },
  '/v3/auth/authenticate': { name: 'u', password: 'wrong' },
  '/v3/auth/user/add': { name: 'x', password: 'pw' },
  '/v3/auth/user/get': { name: 'u' },
  '/v3/auth/user/delete': { name: 'x' },
  '/v3/auth/user/changepw': { name: 'u', password: 'pw' },
  '/v3/auth/user/grant': { user: 'u', role: 'r' },
  '/v3/auth/user/revoke': { name: 'u', role: 'r' },
  '/v3/auth/role/add': { name: 'x' },
  '/v3/auth/role/get': { role: 'r' },
  '/v3/auth/role/delete': { role: 'x' },
  '/v3/auth/role/grant': { name: 'r', perm: { permType: 'READ', key: b64('b') } },
  '/v3/auth/role/revoke': { role: 'r', key: b64('b') },
  '/v3/lock/lock': { name: b64('a/lock'), lease },
  '/v3/lock/unlock': { key: b64('a/lock/1000') },
  '/v3/election/campaign': { name: b64('a/e'), lease, value: b64('v') },
  '/v3/election/proclaim': { leader: { name: b64('a/e'), key: b64('a/e/1000'), rev: '1', lease }, value: b64('v') },
  '/v3/election/leader': { name: b64('a/e') },
  '/v3/election/observe': { name: b64('a/e') },
  '/v3/election/resign': { leader: { name: b64('a/e'), key: b64('a/e/1000'), rev: '1', lease } },
};
const bidi = new Set(['/v3/watch', '/v3/lease/keepalive']);
const serverStreams = new Set(['/v3/election/observe', '/v3/maintenance/snapshot']);
/** Routes that would change what later steps see if a caller got through: auth off, and the last ones. */
const last = new Set(['/v3/auth/disable', '/v3/auth/enable']);

async function answer(s: Server, path: string, headers: Record<string, string>): Promise<Omit<Step, 'step'>> {
  const body = JSON.stringify(bodies[path] ?? {});
  if (bidi.has(path) || serverStreams.has(path)) {
    // One line: a refusal ends the stream; a created watch or an observed leader stays open.
    const lines = await streamLines(`${s.endpoint}${path}`, body, 1, undefined, headers, bidi.has(path) ? 'bidi' : 'server')
      .catch((e: Error) => [`(no line: ${e.message.replace(s.endpoint, '<endpoint>')})`]);
    return { body: lines.map((l) => (l.startsWith('{') ? normalize(JSON.parse(l)) : l)) };
  }
  const a = await post(`${s.endpoint}${path}`, body, 'POST', headers);
  return { status: a.status, body: a.body.startsWith('{') ? normalize(JSON.parse(a.body)) : a.body };
}

async function run(s: Server): Promise<Step[]> {
  for (const args of [['user', 'add', 'root:pw'], ['user', 'add', 'u:pw'], ['role', 'add', 'r'], ['role', 'grant-permission', 'r', 'readwrite', 'a', '--prefix=true'],
    ['user', 'grant-role', 'u', 'r']]) {
    const r = await s.etcdctl(args);
    assert.equal(r.code, 0, `${s.target}: etcdctl ${args.join(' ')}: ${r.stderr}`);
  }
  assert.equal((await post(`${s.endpoint}/v3/lease/grant`, JSON.stringify({ ID: lease, TTL: '600' }))).status, 200);
  assert.equal((await s.etcdctl(['auth', 'enable'])).code, 0);
  const auth = await post(`${s.endpoint}/v3/auth/authenticate`, JSON.stringify({ name: 'u', password: 'pw' }));
  const user = JSON.parse(auth.body).token as string;
  assert.ok(user, `${s.target}: u's token: ${auth.body}`);
  const callers: Array<[string, Record<string, string>]> = [['no token', {}], ['bogus token', { authorization: 'bogus' }], ['u', { authorization: user }]];
  const paths = [...routes.keys()].filter((p) => !last.has(p)).concat([...last]);
  const steps: Step[] = [];
  for (const path of paths) {
    for (const [who, headers] of callers) steps.push({ step: `${path} as ${who}`, ...await answer(s, path, headers) });
  }
  // Auth off: etcd still reads the header on the gRPC methods that resolve the caller.
  const root = JSON.parse((await post(`${s.endpoint}/v3/auth/authenticate`, JSON.stringify({ name: 'root', password: 'pw' }))).body).token as string;
  steps.push({ step: 'auth disable as root', ...await answer(s, '/v3/auth/disable', { authorization: root }) });
  for (const path of ['/v3/kv/range', '/v3/kv/put', '/v3/maintenance/status', '/v3/maintenance/alarm', '/v3/maintenance/hash', '/v3/watch', '/v3/lock/lock']) {
    steps.push({ step: `auth off: ${path} with a bogus token`, ...await answer(s, path, { authorization: 'bogus' }) });
  }
  return steps;
}

describe('gateway: each route takes the Authorization header as its gRPC method takes the token', () => {
  const runs = new Map<TargetName, Step[]>();
  for (const target of selectedTargets()) {
    test(`${target}: every route with no, a bogus and a user's token`, async () => {
      const s = await startServer({ target, extraArgs: ['--bcrypt-cost', '4'] });
      servers.push(s);
      runs.set(target, await run(s));
    });
  }
  test('Concord answers as etcd does', { skip: selectedTargets().length < 2 }, () => {
    const etcd = runs.get('etcd');
    const concord = runs.get('concord');
    assert.ok(etcd && concord, 'both runs finished');
    assert.equal(concord.length, etcd.length);
    const show = (x: Step | undefined): string => JSON.stringify(x);
    const diffs = etcd.map((e, i) => (show(e) === show(concord[i]) ? undefined : `etcd    ${show(e)}\nconcord ${show(concord[i])}`)).filter((d) => d !== undefined);
    assert.deepEqual(diffs, []);
  });
});
