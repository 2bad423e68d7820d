// Auth, against each selected target, compared with real etcd 3.4 when both run: real etcdctl's
// `user`, `role` and `auth` commands (outputs and errors), a permission matrix (users with a
// READ, WRITE or READWRITE role over a key, a prefix and a from-key range try get, put, del, txn
// and watch inside and outside those ranges), no access without a token, a wrong password
// refused, the auth state after a restart; and (Concord) a burst of 50 wrong passwords while
// another client writes and reads: bcrypt runs off the main thread, so its calls are answered first.

import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { startServer, selectedTargets, b, mk, type GrpcError, type Server, type TargetName, type EtcdClient } from './harness.js';
import { WatchStreamClient } from './watch-client.js';
import { AuthenticateRequest, AuthenticateResponse, PutRequest, PutResponse, RangeRequest, RangeResponse } from '../src/proto/gen/etcdserverpb/rpc.js';

const servers: Server[] = [];
after(async () => { for (const s of servers) await s.destroy(); });

const root = ['--user', 'root:rootpw'];

/** One etcdctl call's visible result, with what differs per run (ids, revisions) masked. */
async function ctl(s: Server, args: string[], stdin?: string): Promise<string> {
  const r = await s.etcdctl(args, stdin === undefined ? {} : { stdin });
  const err = r.stderr.replace(/^\{"level".*\n/gm, '').replace(/\d{4}-\d\d-\d\d[ T][\d:.]+\S*/g, '<time>');
  const mask = (t: string) => t.replaceAll(s.endpoint, '<endpoint>');
  return mask(`${r.code}|${r.stdout}|${err}`);
}

/** The user/role/auth commands, in order, with their results. */
async function managementScript(s: Server): Promise<Array<[string, string]>> {
  const out: Array<[string, string]> = [];
  const run = async (args: string[], stdin?: string) => { out.push([args.join(' '), await ctl(s, args, stdin)]); };
  await run(['auth', 'enable']); // no root user yet
  await run(['user', 'add', 'root:rootpw', '--interactive=false']);
  await run(['user', 'add', 'root:other', '--interactive=false']);
  await run(['user', 'grant-role', 'root', 'nosuch']);
  await run(['role', 'add', 'reader']);
  await run(['role', 'add', 'reader']);
  await run(['role', 'add', 'writer']);
  await run(['role', 'add', 'rw']);
  for (const [role, perm] of [['reader', 'read'], ['writer', 'write'], ['rw', 'readwrite']] as const) {
    await run(['role', 'grant-permission', role, perm, 'k']);
    await run(['role', 'grant-permission', role, perm, 'p/', '--prefix']);
    await run(['role', 'grant-permission', role, perm, 'z', '--from-key']);
  }
  await run(['role', 'grant-permission', 'rw', 'read', 'k']); // update in place
  await run(['role', 'grant-permission', 'rw', 'readwrite', 'k']);
  await run(['role', 'grant-permission', 'nosuch', 'read', 'k']);
  for (const u of ['alice', 'bob', 'carol', 'dave']) await run(['user', 'add', `${u}:${u}pw`, '--interactive=false']);
  await run(['user', 'grant-role', 'alice', 'reader']);
  await run(['user', 'grant-role', 'bob', 'writer']);
  await run(['user', 'grant-role', 'carol', 'rw']);
  await run(['user', 'grant-role', 'dave', 'reader']);
  await run(['user', 'grant-role', 'dave', 'writer']);
  await run(['user', 'grant-role', 'dave', 'writer']); // a repeat is ignored
  // etcdctl adds the root role and grants it to root when the server says root lacks it.
  await run(['auth', 'enable']);
  await run(['auth', 'enable', ...root]);
  await run(['user', 'list']); // no user
  await run(['user', 'list', '--user', 'root:wrong']);
  await run(['user', 'list', '--user', 'nobody:pw']);
  await run(['user', 'list', ...root]);
  await run(['role', 'list', ...root]);
  await run(['user', 'list', '--user', 'alice:alicepw']); // not root
  for (const u of ['root', 'alice', 'dave', 'nosuch']) await run(['user', 'get', u, ...root]);
  await run(['user', 'get', 'alice', '--detail', ...root]);
  await run(['user', 'get', 'alice', '--user', 'alice:alicepw']); // oneself
  await run(['user', 'get', 'bob', '--user', 'alice:alicepw']);
  for (const r of ['reader', 'writer', 'rw', 'root', 'nosuch']) await run(['role', 'get', r, ...root]);
  await run(['role', 'get', 'reader', '--user', 'alice:alicepw']); // own role
  await run(['role', 'get', 'writer', '--user', 'alice:alicepw']);
  await run(['user', 'delete', 'root', ...root]);
  await run(['user', 'revoke-role', 'root', 'root', ...root]);
  await run(['role', 'delete', 'root', ...root]);
  await run(['user', 'revoke-role', 'dave', 'rw', ...root]);
  await run(['user', 'revoke-role', 'nosuch', 'rw', ...root]);
  await run(['role', 'revoke-permission', 'reader', 'q', ...root]);
  await run(['role', 'revoke-permission', 'nosuch', 'q', ...root]);
  await run(['user', 'add', 'eve:evepw', '--interactive=false', '--user', 'alice:alicepw']);
  await run(['user', 'add', ':x', '--interactive=false', ...root]);
  await run(['role', 'add', 'tmp', ...root]);
  await run(['user', 'add', 'eve:evepw', '--interactive=false', ...root]);
  await run(['user', 'grant-role', 'eve', 'tmp', ...root]);
  await run(['role', 'delete', 'tmp', ...root]);
  await run(['user', 'get', 'eve', ...root]);
  await run(['user', 'passwd', 'eve', '--interactive=false', ...root], 'newpw\n');
  await run(['get', 'k', '--user', 'eve:evepw']);
  await run(['user', 'delete', 'eve', ...root]);
  await run(['user', 'delete', 'eve', ...root]);
  return out;
}

/** Who tries what: each user, each operation, inside and outside the granted ranges. */
async function permissionMatrix(s: Server): Promise<Array<[string, string]>> {
  const out: Array<[string, string]> = [];
  const run = async (args: string[], stdin?: string) => { out.push([args.join(' '), await ctl(s, args, stdin)]); };
  await run(['put', 'k', 'v0', ...root]);
  await run(['put', 'p/a', 'v0', ...root]);
  await run(['put', 'z1', 'v0', ...root]);
  await run(['put', 'a', 'v0', ...root]);
  for (const who of ['alice:alicepw', 'bob:bobpw', 'carol:carolpw', 'dave:davepw']) {
    const u = ['--user', who];
    for (const key of ['k', 'p/a', 'z1', 'zz', 'a', 'p']) {
      await run(['get', key, ...u]);
      await run(['put', key, 'v1', ...u]);
      await run(['del', key, ...u]);
    }
    await run(['get', 'p/', '--prefix', ...u]);
    await run(['get', 'z', '--from-key', ...u]);
    await run(['get', 'a', '--from-key', ...u]);
    await run(['get', '', '--prefix', ...u]);
    await run(['del', 'p/', '--prefix', ...u]);
    await run(['del', 'z', '--from-key', ...u]);
    await run(['put', 'k', 'v2', '--prev-kv', ...u]);
    await run(['txn', '--interactive=false', ...u], 'value("k") = "v0"\n\nput p/t 1\n\nget z1\n\n');
    await run(['txn', '--interactive=false', ...u], 'value("a") = "v0"\n\nput p/t 1\n\n\n');
    await run(['txn', '--interactive=false', ...u], '\nget k\nget p/a\n\n\n');
    await run(['txn', '--interactive=false', ...u], '\nput k 2\ndel a\n\n\n');
  }
  await run(['get', 'k']); // no user
  await run(['put', 'k', 'x']);
  await run(['get', 'k', '--user', 'alice:wrong']);
  await run(['endpoint', 'hashkv', '--user', 'alice:alicepw']);
  await run(['defrag', '--user', 'alice:alicepw']);
  await run(['get', '', '--prefix', ...root]);
  return out;
}

async function tokenOf(c: EtcdClient, name: string, password: string): Promise<string> {
  const r = await c.unary('/etcdserverpb.Auth/Authenticate', AuthenticateRequest, AuthenticateResponse, { name, password });
  return r.token;
}

/** Watch creates by each user over a key, a prefix and from-key, inside and outside: created/canceled/reason. */
async function watchMatrix(s: Server): Promise<string[]> {
  const c = s.client();
  const out: string[] = [];
  try {
    for (const [user, pw] of [['alice', 'alicepw'], ['bob', 'bobpw'], ['carol', 'carolpw'], ['', '']]) {
      const md: Record<string, string> = user === '' ? {} : { token: await tokenOf(c, user, pw) };
      const w = new WatchStreamClient(c, md);
      const ranges: Array<[string, string]> = [['k', ''], ['p/', 'p0'], ['z', '\0'], ['a', ''], ['p', 'q'], ['a', '\0']];
      for (const [key, end] of ranges) w.create({ key: b(key), rangeEnd: b(end) });
      await w.count(ranges.length, `${ranges.length} create answers for ${user}`);
      w.responses.forEach((r, i) => out.push(`${user} ${JSON.stringify(ranges[i])} created=${r.created} canceled=${r.canceled} id=${r.watchId >= 0 ? 'ok' : r.watchId} reason=${r.cancelReason}`));
      w.close();
    }
  } finally {
    c.close();
  }
  return out;
}

describe('auth: etcdctl user/role/auth, permission matrix, tokens, restart', () => {
  const transcripts = new Map<TargetName, { mgmt: Array<[string, string]>; matrix: Array<[string, string]>; watch: string[]; after: Array<[string, string]> }>();
  for (const target of selectedTargets()) {
    test(`${target}: the scripts run`, async () => {
      const s = await startServer({ target, extraArgs: ['--bcrypt-cost', '4'] });
      servers.push(s);
      const mgmt = await managementScript(s);
      const matrix = await permissionMatrix(s);
      if (process.env.AUTH_DEBUG) console.log(JSON.stringify({ mgmt, matrix }, null, 1));
      const watch = await watchMatrix(s);
      // Auth state survives a restart (tokens do not: etcdctl authenticates again).
      await s.stop();
      await s.restart();
      const afterRestart: Array<[string, string]> = [];
      for (const args of [['user', 'list', ...root], ['role', 'get', 'rw', ...root], ['get', 'k', '--user', 'alice:alicepw'], ['put', 'k', 'x', '--user', 'alice:alicepw'], ['get', 'k'], ['auth', 'disable', ...root], ['get', 'k'], ['auth', 'disable']]) {
        afterRestart.push([args.join(' '), await ctl(s, args)]);
      }
      transcripts.set(target, { mgmt, matrix, watch, after: afterRestart });
      // Sanity on the target itself, so that a run against one target alone checks something.
      const find = (t: Array<[string, string]>, cmd: string) => t.find(([c]) => c === cmd)?.[1];
      assert.match(find(mgmt, 'auth enable --user root:rootpw') ?? '', /^0\|Authentication Enabled/);
      assert.match(find(matrix, 'get k') ?? '', /user name is empty/);
      assert.match(find(matrix, 'put k v1 --user alice:alicepw') ?? '', /permission denied/);
      assert.match(find(afterRestart, 'get k --user alice:alicepw') ?? '', /^0\|k\n/);
    });
  }
  test('Concord answers as etcd does', { skip: selectedTargets().length < 2 }, () => {
    const etcd = transcripts.get('etcd')!;
    const concord = transcripts.get('concord')!;
    assert.ok(etcd && concord, 'both targets ran');
    assert.deepStrictEqual(concord.mgmt, etcd.mgmt);
    assert.deepStrictEqual(concord.matrix, etcd.matrix);
    assert.deepStrictEqual(concord.watch, etcd.watch);
    assert.deepStrictEqual(concord.after, etcd.after);
  });
});

describe('auth: wrong passwords do not hold up other clients (bcrypt off the main thread)', () => {
  // 50 wrong passwords at cost 10 keep bcrypt busy for seconds (2 at a time, password.ts). Were a
  // check to run on the main thread, the 20 puts and ranges sent after them would be answered
  // only once every check was done; here they must all be answered while checks are still in
  // flight. Nothing is timed: the order of answers is the assertion (each call bounded at 15 s).
  test('concord: 50 wrong-password Authenticate calls in flight while another client puts and ranges', { skip: !selectedTargets().includes('concord') }, async () => {
    const s = await startServer({ target: 'concord', extraArgs: ['--bcrypt-cost', '10'] });
    servers.push(s);
    assert.equal((await ctl(s, ['user', 'add', 'root:rootpw', '--interactive=false'])).split('|')[0], '0');
    assert.equal((await ctl(s, ['user', 'grant-role', 'root', 'root'])).split('|')[0], '0');
    assert.equal((await ctl(s, ['auth', 'enable'])).split('|')[0], '0');
    const attacker = s.client();
    const other = s.client();
    try {
      const token = await tokenOf(other, 'root', 'rootpw');
      const md = new grpc.Metadata();
      md.set('token', token);
      const put = (i: number) => new Promise<number>((resolve, reject) => {
        const t0 = performance.now();
        other.raw.makeUnaryRequest('/etcdserverpb.KV/Put', (m: PutRequest) => Buffer.from(PutRequest.encode(m).finish()), (x: Buffer) => PutResponse.decode(x),
          mk.put({ key: b(`burst/${i}`), value: b('v') }), md, { deadline: Date.now() + 15_000 }, (err) => (err ? reject(err) : resolve(performance.now() - t0)));
      });
      const range = () => new Promise<void>((resolve, reject) => {
        other.raw.makeUnaryRequest('/etcdserverpb.KV/Range', (m: RangeRequest) => Buffer.from(RangeRequest.encode(m).finish()), (x: Buffer) => RangeResponse.decode(x),
          mk.range({ key: b('burst/'), rangeEnd: b('burst0') }), md, { deadline: Date.now() + 15_000 }, (err) => (err ? reject(err) : resolve()));
      });
      const quiet: number[] = [];
      for (let i = 0; i < 10; i++) quiet.push(await put(i));
      let settled = 0;
      const answers: string[] = [];
      // Each check waits its turn (2 at a time): the last may take a while on a loaded machine.
      const burst = Array.from({ length: 50 }, () => attacker.unary('/etcdserverpb.Auth/Authenticate', AuthenticateRequest, AuthenticateResponse, { name: 'root', password: 'wrong' }, 180_000)
        .then(() => 'ok', (e: GrpcError) => `${e.code} ${e.details}`)
        .then((answer) => { settled++; answers.push(answer); }));
      const during: number[] = [];
      for (let i = 0; i < 10; i++) {
        during.push(await put(1000 + i));
        await range();
      }
      const settledWhenOthersDone = settled;
      await Promise.all(burst);
      console.log(`# put latency ms: quiet median ${median(quiet)}; during 50 wrong-password bcrypt(10) checks median ${median(during)} max ${Math.max(...during).toFixed(2)}; ${settledWhenOthersDone} of 50 checks answered when the other client's 20 calls were`);
      assert.deepEqual(new Set(answers), new Set(['3 etcdserver: authentication failed, invalid user ID or password']));
      assert.ok(settledWhenOthersDone < 50, `the other client's 20 calls were answered only after all 50 password checks (${settledWhenOthersDone})`);
    } finally {
      attacker.close();
      other.close();
    }
  });
});

const median = (xs: number[]): string => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!.toFixed(2);

describe('auth: simple tokens expire after --auth-token-ttl without use', () => {
  for (const target of selectedTargets()) {
    test(`${target}: a token unused for longer than the TTL is refused as invalid; a used one lives on`, async () => {
      const s = await startServer({ target, extraArgs: ['--bcrypt-cost', '4', '--auth-token-ttl', '2'] });
      servers.push(s);
      for (const args of [['user', 'add', 'root:rootpw', '--interactive=false'], ['auth', 'enable']]) {
        assert.equal((await ctl(s, args)).split('|')[0], '0', args.join(' '));
      }
      const c = s.client();
      try {
        const idle = await tokenOf(c, 'root', 'rootpw');
        const busy = await tokenOf(c, 'root', 'rootpw');
        const putWith = (token: string) => new Promise<string>((resolve) => {
          const md = new grpc.Metadata();
          md.set('token', token);
          c.raw.makeUnaryRequest('/etcdserverpb.KV/Put', (m: PutRequest) => Buffer.from(PutRequest.encode(m).finish()), (x: Buffer) => PutResponse.decode(x),
            mk.put({ key: b('k'), value: b('v') }), md, (err) => resolve(err ? `${err.code} ${err.details}` : 'ok'));
        });
        assert.equal(await putWith(idle), 'ok');
        // Use `busy` every 500 ms for 5 s (past the 2 s TTL and etcd's 1 s expiry tick); leave `idle` alone.
        for (let i = 0; i < 10; i++) {
          assert.equal(await putWith(busy), 'ok', `busy token, use ${i}`);
          await new Promise((r) => setTimeout(r, 500));
        }
        assert.equal(await putWith(idle), '16 etcdserver: invalid auth token');
      } finally {
        c.close();
      }
    });
  }
});
