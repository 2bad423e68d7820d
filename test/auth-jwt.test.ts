// --auth-token jwt, compared with real etcd 3.4 started with the same keys: a token etcd signs
// is good on Concord and the other way round (RS256, ES256, HS256); both carry etcd's claims;
// after an auth change both answer "revision of auth store is old"; an expired or foreign
// token is invalid on both; the option is parsed as etcd parses it (its start-up errors).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, freePort, selectedTargets, startServer, sleep, b, mk, type Server, type TargetName, type Outcome } from './harness.js';
import { AuthenticateRequest, AuthenticateResponse, PutRequest, PutResponse, RangeRequest, RangeResponse } from '../src/proto/gen/etcdserverpb/rpc.js';

let dir: string;
const keys: Record<string, string> = {};
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'concord-jwt-'));
  const { generateKeyPairSync, randomBytes } = await import('node:crypto');
  for (const [name, type, opts] of [['rsa', 'rsa', { modulusLength: 2048 }], ['ec', 'ec', { namedCurve: 'P-256' }]] as const) {
    const { privateKey, publicKey } = generateKeyPairSync(type as 'rsa', opts as { modulusLength: number });
    keys[`${name}.priv`] = join(dir, `${name}.priv`);
    keys[`${name}.pub`] = join(dir, `${name}.pub`);
    writeFileSync(keys[`${name}.priv`]!, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    writeFileSync(keys[`${name}.pub`]!, publicKey.export({ type: 'spki', format: 'pem' }));
  }
  keys.hmac = join(dir, 'hmac.key');
  writeFileSync(keys.hmac, randomBytes(32).toString('hex'));
  keys.other = join(dir, 'other.key');
  writeFileSync(keys.other, randomBytes(32).toString('hex'));
});
const servers: Server[] = [];
after(async () => {
  for (const s of servers) await s.destroy();
  rmSync(dir, { recursive: true, force: true });
});

const both = selectedTargets().length === 2;

async function start(target: TargetName, authToken: string): Promise<Server> {
  const s = await startServer({ target, extraArgs: ['--bcrypt-cost', '4', '--auth-token', authToken] });
  servers.push(s);
  return s;
}

async function ctlOk(s: Server, args: string[]): Promise<void> {
  const r = await s.etcdctl(args);
  assert.equal(r.code, 0, `${s.target} etcdctl ${args.join(' ')}: ${r.stderr}`);
}

/** root with the root role, auth on: the same steps on both servers, so their auth revisions agree. */
async function enableAuth(s: Server): Promise<void> {
  await ctlOk(s, ['user', 'add', 'root:rootpw', '--interactive=false']);
  await ctlOk(s, ['auth', 'enable']);
}

async function tokenOf(s: Server, name = 'root', password = 'rootpw'): Promise<string> {
  const c = s.client();
  try {
    return (await c.unary('/etcdserverpb.Auth/Authenticate', AuthenticateRequest, AuthenticateResponse, { name, password })).token;
  } finally {
    c.close();
  }
}

const show = (o: Outcome<unknown>): string => (o.ok ? 'ok' : `${o.code} ${o.message}`);

async function putWith(s: Server, token: string, key = 'k'): Promise<string> {
  const c = s.client();
  try {
    return show(await c.outcome('/etcdserverpb.KV/Put', PutRequest, PutResponse, mk.put({ key: b(key), value: b('v') }), token));
  } finally {
    c.close();
  }
}

async function getWith(s: Server, token: string, key = 'k'): Promise<string> {
  const c = s.client();
  try {
    return show(await c.outcome('/etcdserverpb.KV/Range', RangeRequest, RangeResponse, mk.range({ key: b(key) }), token));
  } finally {
    c.close();
  }
}

/** The claim names and header of a JWT (values differ per run). */
function shape(token: string): string {
  const [h, p] = token.split('.');
  const header = JSON.parse(Buffer.from(h!, 'base64url').toString()) as Record<string, unknown>;
  const claims = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>;
  return `${header.alg} ${Object.keys(claims).sort().join(',')} user=${claims.username} rev=${claims.revision}`;
}

describe('auth: JWT tokens, interchangeable with etcd given the same keys', { skip: !both && 'needs etcd and concord' }, () => {
  for (const [alg, opts] of [['RS256', () => `priv-key=${keys['rsa.priv']},pub-key=${keys['rsa.pub']}`], ['ES256', () => `priv-key=${keys['ec.priv']}`], ['HS256', () => `priv-key=${keys.hmac}`]] as const) {
    test(`${alg}: each accepts the other's tokens; both refuse them as old after an auth change`, async () => {
      const flag = `jwt,sign-method=${alg},${opts()},ttl=10m`;
      const [etcd, concord] = [await start('etcd', flag), await start('concord', flag)];
      await enableAuth(etcd);
      await enableAuth(concord);
      const fromEtcd = await tokenOf(etcd);
      const fromConcord = await tokenOf(concord);
      assert.equal(shape(fromConcord), shape(fromEtcd), 'same header algorithm and claims');
      assert.match(shape(fromEtcd), new RegExp(`^${alg} exp,revision,username user=root`));
      assert.deepEqual([await putWith(concord, fromEtcd), await putWith(etcd, fromConcord)], ['ok', 'ok']);
      assert.deepEqual([await getWith(concord, fromEtcd), await getWith(etcd, fromConcord)], ['ok', 'ok']);
      const garbage = `${fromEtcd.slice(0, -4)}AAAA`;
      assert.deepEqual([await putWith(concord, garbage), await putWith(etcd, garbage)], Array(2).fill('16 etcdserver: invalid auth token'));
      // An auth change (a new role) makes every token issued before it old, on both.
      for (const s of [etcd, concord]) await ctlOk(s, ['role', 'add', 'r', '--user', 'root:rootpw']);
      const old = [await putWith(concord, fromEtcd), await putWith(etcd, fromConcord), await getWith(concord, fromConcord), await getWith(etcd, fromEtcd)];
      assert.deepEqual(old, Array(4).fill('3 etcdserver: revision of auth store is old'));
      // Fresh tokens work again, each on the other.
      assert.deepEqual([await putWith(concord, await tokenOf(etcd)), await putWith(etcd, await tokenOf(concord))], ['ok', 'ok']);
    });
  }
});

describe('auth: JWT expiry and foreign keys', () => {
  for (const target of selectedTargets()) {
    test(`${target}: a token past its ttl, or signed with another key, is an invalid auth token`, async () => {
      // A token is good until the whole second after now + ttl (exp is floor(now + ttl), checked
      // as now <= exp in whole seconds): at least ttl. With 1s, a loaded CI machine took longer
      // than that from the token to the first put once (etcd answered "invalid auth token").
      const s = await start(target, `jwt,sign-method=HS256,priv-key=${keys.hmac},ttl=3s`);
      await enableAuth(s);
      const token = await tokenOf(s);
      assert.equal(await putWith(s, token), 'ok');
      const foreign = await start(target, `jwt,sign-method=HS256,priv-key=${keys.other}`);
      await enableAuth(foreign);
      assert.equal(await putWith(s, await tokenOf(foreign)), '16 etcdserver: invalid auth token');
      await sleep(4500); // exp is whole seconds: past it for sure
      assert.equal(await putWith(s, token), '16 etcdserver: invalid auth token');
    });
  }
});

/** A server started with `--auth-token opt`: its exit code, "failed to create token provider" error and fatal error. */
async function startupError(target: TargetName, opt: string): Promise<string> {
  const cwd = mkdtempSync(join(dir, 'start-'));
  const [client, peer] = [`http://127.0.0.1:${await freePort()}`, `http://127.0.0.1:${await freePort()}`];
  const args = ['--logger', 'zap', '--log-outputs', 'stderr', '--data-dir', 'data', '--listen-client-urls', client, '--advertise-client-urls', client,
    '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `default=${peer}`, '--auth-token', opt];
  const [cmd, argv] = target === 'etcd' ? ['etcd', args] : [process.execPath, [join(REPO_ROOT, 'bin', 'concord.js'), ...args]];
  const { code, out } = await new Promise<{ code: number | null; out: string }>((resolve) => {
    execFile(cmd, argv, { cwd, timeout: 60_000, killSignal: 'SIGKILL' }, (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, out: stdout + stderr }));
  });
  const lines = out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: string; msg: string; error?: string; keys?: string[] });
  const pick = (msg: string) => lines.filter((l) => l.msg === msg).map((l) => `${l.level} ${l.msg}: ${l.error ?? JSON.stringify(l.keys)}`);
  return [`exit ${code}`, ...pick('failed to create token provider'), ...pick('unknown JWT options'), ...pick('problem loading JWT options'),
    ...lines.filter((l) => l.level === 'fatal').map((l) => `fatal ${l.msg}: ${l.error}`)].join('\n');
}

describe('auth: --auth-token is parsed as etcd parses it', { skip: !both && 'needs etcd and concord' }, () => {
  const cases = (): string[] => [
    'jwt', 'jwt,sign-method=XX', 'jwt,foo', 'jwt,a=b,a=c', 'bogus', `jwt,sign-method=HS256,priv-key=${join(dir, 'nonexist')}`,
    `jwt,sign-method=HS256,ttl=5x,priv-key=${keys.hmac}`, 'jwt,sign-method=RS256', `jwt,sign-method=HS256,pub-key=${keys['rsa.pub']}`,
    `jwt,sign-method=RS256,priv-key=${keys.hmac}`, `jwt,sign-method=RS256,pub-key=${keys['ec.pub']}`, `jwt,sign-method=ES256,priv-key=${keys['rsa.priv']}`,
    `jwt,sign-method=none,priv-key=${keys['rsa.priv']}`, `jwt,sign-method=EdDSA,priv-key=${keys['rsa.priv']}`,
    `jwt,sign-method=RS256,priv-key=${keys['rsa.priv']},pub-key=${keys['ec.pub']}`,
  ];
  test('each refused option gives etcd\'s exit code, errors and log lines', async () => {
    const diffs: string[] = [];
    for (const opt of cases()) {
      const [e, c] = [await startupError('etcd', opt), await startupError('concord', opt)];
      assert.match(e, /^exit 1\n/, `etcd refuses ${opt}`);
      if (e !== c) diffs.push(`--auth-token ${opt}\n etcd:    ${e.replaceAll('\n', '\n          ')}\n concord: ${c.replaceAll('\n', '\n          ')}`);
    }
    assert.deepEqual(diffs, []);
  });
});
