// The JSON gateway's remaining etcd 3.4 routes against real etcd's, step by step: Lock and
// Election (v3lockpb/gw, v3electionpb/gw, including Observe's stream and a lock that waits for
// another's unlock), LeaseKeepAlive as a streamed bidi call, the legacy /v3/kv/lease/* paths,
// /v3beta/; and, with auth on, the Authorization header carrying the token (grpc-gateway's
// `authorization` metadata) on unary calls, Lock, Watch, LeaseKeepAlive and admin routes.
// Leases get explicit IDs so lock and election keys (`<name>/<lease hex>`) are the same on both.

import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, selectedTargets, httpGet, sleep, type Server, type TargetName } from './harness.js';
import { b64, normalize, post, streamLines } from './gateway-http.js';

const servers: Server[] = [];
after(async () => { for (const s of servers) await s.destroy(); });

/** One step's outcome: status and normalized body (or the normalized lines of a stream). */
type Step = { step: string; status?: number; body: unknown };

/** The record of one target's run: each step in order. */
class Transcript {
  readonly steps: Step[] = [];
  constructor(private readonly endpoint: string) {}

  /** A unary call; returns the parsed body for later steps. */
  async call(step: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<any> {
    const a = await post(`${this.endpoint}${path}`, JSON.stringify(body), 'POST', headers);
    const parsed = a.body.startsWith('{') ? JSON.parse(a.body) : a.body;
    // A live lease's remaining TTL depends on how long the steps took (a loaded machine).
    const view = path.endsWith('/timetolive') && Number(parsed.TTL) > 0 ? { ...parsed, TTL: '<remaining>' } : parsed;
    this.steps.push({ step, status: a.status, body: normalize(view) });
    return parsed;
  }

  /** A streaming call: its first `n` lines while `during` runs. */
  async stream(step: string, path: string, body: string, n: number, during?: () => Promise<void>, headers: Record<string, string> = {}): Promise<void> {
    const kind = path.endsWith('/observe') ? 'server' : 'bidi';
    // The stream's step comes before the steps `during` takes, whichever ends first.
    const record: Step = { step, body: undefined };
    this.steps.push(record);
    let duringDone: Promise<void> = Promise.resolve();
    const lines = await streamLines(`${this.endpoint}${path}`, body, n, () => (duringDone = during?.() ?? Promise.resolve()), headers, kind);
    await duringDone;
    record.body = lines.map((l) => normalize(JSON.parse(l)));
  }

  /**
   * The non-zero grpc_server_handled_total lines matching `pick` (etcd's gateway calls gRPC,
   * so they count there), once each of `canceled` has a line for its end (the server learns of
   * a client gone asynchronously; bounded poll).
   */
  async metrics(step: string, pick: RegExp, canceled: string[]): Promise<void> {
    let lines: string[] = [];
    for (let i = 0; i < 100; i++) {
      const text = (await httpGet(`${this.endpoint}/metrics`, 10_000)).body;
      lines = text.split('\n').filter((l) => l.startsWith('grpc_server_handled_total{') && pick.test(l) && !l.endsWith(' 0')).sort();
      if (canceled.every((m) => lines.some((l) => l.includes(m) && /grpc_code="(Canceled|Unknown)"/.test(l)))) break;
      await sleep(100);
    }
    this.steps.push({ step, body: lines });
  }

  /** Waits (unrecorded) until `key` exists: a call in flight has written it. */
  async waitForKey(key: string): Promise<void> {
    for (let i = 0; i < 400; i++) {
      const a = await post(`${this.endpoint}/v3/kv/range`, JSON.stringify({ key: b64(key), count_only: true }));
      if (JSON.parse(a.body).count === '1') return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`${key} never appeared`);
  }
}

const lease1 = '4096'; // 0x1000
const lease2 = '8192'; // 0x2000

async function routesRun(s: Server): Promise<Step[]> {
  const t = new Transcript(s.endpoint);
  await t.call('grant 1', '/v3/lease/grant', { ID: lease1, TTL: '60' });
  await t.call('grant 2', '/v3/lease/grant', { ID: lease2, TTL: '60' });
  await t.call('put on lease', '/v3/kv/put', { key: b64('k'), value: b64('v'), lease: lease1 });
  await t.call('legacy timetolive', '/v3/kv/lease/timetolive', { ID: lease1, keys: true });
  await t.call('legacy leases', '/v3/kv/lease/leases', {});
  await t.call('lock', '/v3/lock/lock', { name: b64('L'), lease: lease1 });
  // A second holder waits until the first unlocks.
  const second = post(`${s.endpoint}/v3/lock/lock`, JSON.stringify({ name: b64('L'), lease: lease2 }));
  await t.waitForKey('L/2000'); // the waiter's key is in: it now waits on L/1000
  await t.call('leader of the lock prefix', '/v3beta/election/leader', { name: b64('L') });
  await t.call('unlock', '/v3/lock/unlock', { key: b64('L/1000') });
  const got = await second;
  t.steps.push({ step: 'second lock granted after the unlock', status: got.status, body: normalize(JSON.parse(got.body)) });
  await t.call('unlock 2', '/v3/lock/unlock', { key: b64('L/2000') });
  await t.call('lock on a missing lease', '/v3/lock/lock', { name: b64('L'), lease: '999' });
  await t.call('no leader', '/v3/election/leader', { name: b64('E') });
  await t.call('resign without a leader key', '/v3/election/resign', {});
  await t.call('proclaim without a leader key', '/v3/election/proclaim', { value: b64('x') });
  const { leader } = await t.call('campaign 1', '/v3/election/campaign', { name: b64('E'), lease: lease1, value: b64('v1') });
  await t.stream('observe', '/v3/election/observe', JSON.stringify({ name: b64('E') }), 3, async () => {
    await t.call('proclaim v2', '/v3/election/proclaim', { leader, value: b64('v2') });
    await t.call('resign', '/v3/election/resign', { leader });
    await t.call('campaign 2', '/v3/election/campaign', { name: b64('E'), lease: lease2, value: b64('v3') });
  });
  await t.call('leader', '/v3/election/leader', { name: b64('E') });
  await t.call('proclaim as an old leader', '/v3/election/proclaim', { leader: { name: b64('E'), key: b64('E/1000'), rev: '9', lease: lease1 }, value: b64('x') });
  await t.stream('keepalive stream', '/v3/lease/keepalive', JSON.stringify({ ID: lease1 }) + JSON.stringify({ ID: '5' }), 2);
  await t.call('legacy revoke', '/v3/kv/lease/revoke', { ID: lease2 });
  await t.call('range after revoke', '/v3/kv/range', { key: b64('E'), range_end: b64('F') });
  // LeaseKeepAlive is left out: when its client goes, etcd's handler selects between Recv's
  // error (Canceled) and the context's ("no leader", Unavailable), whichever Go picks.
  await t.metrics('gateway calls in grpc_server_handled_total', /grpc_method="(Lock|Unlock|Campaign|Proclaim|Leader|Resign|Observe)"/,
    ['grpc_method="Observe"']);
  return t.steps;
}

async function authRun(s: Server): Promise<Step[]> {
  for (const args of [['user', 'add', 'root:pw'], ['user', 'add', 'u:pw'], ['role', 'add', 'r'], ['role', 'grant-permission', 'r', 'readwrite', 'a', '--prefix=true'],
    ['user', 'grant-role', 'u', 'r'], ['auth', 'enable']]) {
    const r = await s.etcdctl(args);
    assert.equal(r.code, 0, `${s.target}: etcdctl ${args.join(' ')}: ${r.stderr}`);
  }
  const t = new Transcript(s.endpoint);
  await t.call('range without a token', '/v3/kv/range', { key: b64('a') });
  const user = (await t.call('authenticate u', '/v3/auth/authenticate', { name: 'u', password: 'pw' })).token as string;
  const root = (await t.call('authenticate root', '/v3/auth/authenticate', { name: 'root', password: 'pw' })).token as string;
  const as = (token: string): Record<string, string> => ({ authorization: token });
  await t.call('put a permitted key', '/v3/kv/put', { key: b64('a1'), value: b64('1') }, as(user));
  await t.call('put another key', '/v3/kv/put', { key: b64('b'), value: b64('1') }, as(user));
  await t.call('a bogus token', '/v3/kv/put', { key: b64('a1'), value: b64('1') }, as('bogus'));
  await t.call('a Bearer token', '/v3/kv/range', { key: b64('a1') }, as(`Bearer ${user}`));
  await t.call('range', '/v3/kv/range', { key: b64('a1') }, as(user));
  await t.call('txn', '/v3/kv/txn', { success: [{ request_put: { key: b64('a2'), value: b64('2') } }, { request_range: { key: b64('b') } }] }, as(user));
  await t.call('grant', '/v3/lease/grant', { ID: lease1, TTL: '60' }, as(user));
  await t.call('lock under a permitted prefix', '/v3/lock/lock', { name: b64('a'), lease: lease1 }, as(user));
  await t.call('lock elsewhere', '/v3/lock/lock', { name: b64('zz'), lease: lease1 }, as(user));
  await t.call('lock with a bogus token', '/v3/lock/lock', { name: b64('a'), lease: lease1 }, as('bogus'));
  await t.call('election leader', '/v3/election/leader', { name: b64('a') }, as(user));
  await t.call('user list as u', '/v3/auth/user/list', {}, as(user));
  await t.call('user list as root', '/v3/auth/user/list', {}, as(root));
  await t.call('role get as root', '/v3/auth/role/get', { role: 'r' }, as(root));
  await t.call('hash as u', '/v3/maintenance/hash', {}, as(user));
  await t.call('member list as u', '/v3/cluster/member/list', {}, as(user));
  await t.stream('watch a denied key', '/v3/watch', JSON.stringify({ create_request: { key: b64('b') } }), 1, undefined, as(user));
  await t.stream('watch a permitted key', '/v3/watch', JSON.stringify({ create_request: { key: b64('a3') } }), 2, async () => {
    await t.call('put the watched key', '/v3/kv/put', { key: b64('a3'), value: b64('3') }, as(user));
  }, as(user));
  await t.stream('keepalive', '/v3/lease/keepalive', JSON.stringify({ ID: lease1 }), 1, undefined, as(user));
  await t.call('auth disable as root', '/v3/auth/disable', {}, as(root));
  await t.call('range after disable, no token', '/v3/kv/range', { key: b64('b') });
  return t.steps;
}

/** The auth user and role routes, the current lease paths, member update and leader transfer (auth off, then on). */
async function adminRun(s: Server): Promise<Step[]> {
  const t = new Transcript(s.endpoint);
  await t.call('user add', '/v3/auth/user/add', { name: 'alice', password: 'pw' });
  await t.call('user add again', '/v3/auth/user/add', { name: 'alice', password: 'pw' });
  await t.call('user add without a name', '/v3/auth/user/add', { password: 'pw' });
  await t.call('user get', '/v3/auth/user/get', { name: 'alice' });
  await t.call('user get, unknown', '/v3/auth/user/get', { name: 'nobody' });
  await t.call('user changepw', '/v3/auth/user/changepw', { name: 'alice', password: 'pw2' });
  await t.call('role add', '/v3/auth/role/add', { name: 'reader' });
  await t.call('role grant', '/v3/auth/role/grant', { name: 'reader', perm: { permType: 'READ', key: b64('a'), range_end: b64('b') } });
  await t.call('role get', '/v3/auth/role/get', { role: 'reader' });
  await t.call('role list', '/v3/auth/role/list', {});
  await t.call('user grant', '/v3/auth/user/grant', { user: 'alice', role: 'reader' });
  await t.call('user grant, unknown role', '/v3/auth/user/grant', { user: 'alice', role: 'nope' });
  await t.call('user list', '/v3/auth/user/list', {});
  await t.call('role revoke', '/v3/auth/role/revoke', { role: 'reader', key: b64('a'), range_end: b64('b') });
  await t.call('user revoke', '/v3/auth/user/revoke', { name: 'alice', role: 'reader' });
  await t.call('authenticate alice', '/v3/auth/authenticate', { name: 'alice', password: 'pw2' });
  await t.call('auth enable without root', '/v3/auth/enable', {});
  await t.call('add root', '/v3/auth/user/add', { name: 'root', password: 'rpw' });
  await t.call('grant root the root role', '/v3/auth/user/grant', { user: 'root', role: 'root' });
  await t.call('auth enable', '/v3/auth/enable', {});
  const root = (await t.call('authenticate root', '/v3/auth/authenticate', { name: 'root', password: 'rpw' })).token as string;
  await t.call('role delete without a token', '/v3/auth/role/delete', { role: 'reader' });
  await t.call('role delete', '/v3/auth/role/delete', { role: 'reader' }, { authorization: root });
  await t.call('user delete', '/v3/auth/user/delete', { name: 'alice' }, { authorization: root });
  await t.call('auth disable', '/v3beta/auth/disable', {}, { authorization: root });
  await t.call('lease grant', '/v3/lease/grant', { ID: lease1, TTL: '60' });
  await t.call('lease timetolive', '/v3/lease/timetolive', { ID: lease1 });
  await t.call('lease leases', '/v3/lease/leases', {});
  await t.call('lease revoke', '/v3/lease/revoke', { ID: lease1 });
  await t.call('lease revoke, unknown', '/v3/lease/revoke', { ID: lease1 });
  await t.call('lease timetolive, unknown', '/v3/lease/timetolive', { ID: lease1 });
  await t.call('member update, unknown', '/v3/cluster/member/update', { ID: '1234', peerURLs: ['http://127.0.0.1:1'] });
  await t.call('transfer leadership to an unknown member', '/v3/maintenance/transfer-leadership', { targetID: '1234' });
  return t.steps;
}

function compare(runs: Map<TargetName, Step[]>): void {
  const e = runs.get('etcd')!;
  const c = runs.get('concord')!;
  assert.deepEqual(c.map((x) => x.step), e.map((x) => x.step));
  for (let i = 0; i < e.length; i++) assert.deepEqual(c[i], e[i], `step ${i}: ${e[i]!.step}`);
}

describe('JSON gateway: Lock, Election, LeaseKeepAlive, legacy lease paths, auth tokens', () => {
  const targets = selectedTargets();
  const routes = new Map<TargetName, Step[]>();
  const auth = new Map<TargetName, Step[]>();
  const admin = new Map<TargetName, Step[]>();

  test('the same steps on each target', async () => {
    await Promise.all(targets.map(async (target) => {
      const s = await startServer({ target });
      servers.push(s);
      routes.set(target, await routesRun(s));
      const a = await startServer({ target });
      servers.push(a);
      auth.set(target, await authRun(a));
      const m = await startServer({ target });
      servers.push(m);
      admin.set(target, await adminRun(m));
    }));
  });

  for (const target of targets) {
    test(`${target}: the lock waits for the unlock; Observe sees each leader in order`, () => {
      const steps = new Map(routes.get(target)!.map((x) => [x.step, x]));
      const b = (step: string) => steps.get(step)!.body as any;
      assert.equal(b('lock').key, b64('L/1000'));
      assert.equal(b('second lock granted after the unlock').key, b64('L/2000'));
      const observed = (steps.get('observe')!.body as any[]).map((l) => Buffer.from(l.result.kv.value, 'base64').toString());
      assert.deepEqual(observed, ['v1', 'v2', 'v3']);
      const ka = steps.get('keepalive stream')!.body as any[];
      assert.deepEqual(ka.map((l) => l.result.TTL), ['60', undefined]);
    });
    test(`${target}: the Authorization header is the caller's token`, () => {
      const steps = new Map(auth.get(target)!.map((x) => [x.step, x]));
      assert.equal(steps.get('put a permitted key')!.status, 200);
      assert.deepEqual(steps.get('put another key')!.body, { error: 'etcdserver: permission denied', message: 'etcdserver: permission denied', code: 7 });
      assert.equal(steps.get('lock under a permitted prefix')!.status, 200);
      assert.equal(steps.get('user list as root')!.status, 200);
    });
    test(`${target}: the admin routes do what they say`, () => {
      const steps = new Map(admin.get(target)!.map((x) => [x.step, x]));
      for (const ok of ['user add', 'user get', 'role grant', 'user grant', 'auth enable', 'role delete', 'lease revoke']) assert.equal(steps.get(ok)!.status, 200, ok);
      assert.deepEqual((steps.get('role get')!.body as any).perm, [{ key: b64('a'), range_end: b64('b') }]); // READ is 0: omitted
      assert.deepEqual((steps.get('user list')!.body as any).users, ['alice']);
      assert.equal(steps.get('role delete without a token')!.status, 400);
    });
  }

  if (targets.includes('etcd') && targets.includes('concord')) {
    test('every step answers as etcd\'s (status and JSON, ids normalized)', () => compare(routes));
    test('with auth on, every step answers as etcd\'s', () => compare(auth));
    test('auth user and role routes, lease, member update and leader transfer answer as etcd\'s', () => compare(admin));
  }
});
