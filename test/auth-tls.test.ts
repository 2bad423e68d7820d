// With --client-cert-auth, a client that sends no token is the user its verified certificate's
// CN names (etcd's AuthInfoFromTLS), compared with real etcd 3.4 through real etcdctl: the test
// certificate's CN is "root", so with auth on it may do everything without --user, while the
// same commands over a token for a user without roles are refused.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { selectedTargets, startServer, etcdctl, type Server, type TargetName } from './harness.js';
import { makeTestPki, type TestPki } from './tls-certs.js';

let pki: TestPki;
before(() => { pki = makeTestPki(); });
after(() => pki.remove());

const servers: Server[] = [];
after(async () => { for (const s of servers) await s.destroy(); });

async function script(target: TargetName): Promise<string[]> {
  const s = await startServer({ target, scheme: 'https', extraArgs: ['--cert-file', pki.serverCert, '--key-file', pki.serverKey, '--trusted-ca-file', pki.ca, '--client-cert-auth', '--bcrypt-cost', '4'] });
  servers.push(s);
  const tls = ['--cacert', pki.ca, '--cert', pki.clientCert, '--key', pki.clientKey];
  const out: string[] = [];
  for (const args of [
    ['user', 'add', 'root:rootpw', '--interactive=false'],
    ['user', 'add', 'nobody:pw', '--interactive=false'],
    ['auth', 'enable'],
    ['put', 'k', 'v'], // as root, by the certificate
    ['get', 'k'],
    ['user', 'list'],
    ['endpoint', 'hashkv'],
    ['put', 'k', 'v2', '--user', 'nobody:pw'], // a token wins over the certificate
    ['get', 'k', '--user', 'nobody:pw'],
    ['auth', 'disable'],
  ]) {
    const r = await etcdctl(s.endpoint, [...tls, ...args]);
    const stderr = r.stderr.replace(/^\{"level".*\n/gm, ''); // client-side retry logs (ids, times)
    out.push(`${args.join(' ')} => ${r.code}|${r.stdout.replaceAll(s.endpoint, '<ep>')}|${stderr.replaceAll(s.endpoint, '<ep>')}`);
  }
  return out;
}

describe('auth: the client certificate CN is the user (--client-cert-auth, no token)', () => {
  const results = new Map<TargetName, string[]>();
  for (const target of selectedTargets()) {
    test(`${target}: runs`, async () => {
      const out = await script(target);
      results.set(target, out);
      assert.match(out[3]!, /^put k v => 0\|OK/);
      assert.match(out[7]!, /permission denied/);
    });
  }
  test('Concord answers as etcd does', { skip: selectedTargets().length < 2 }, () => {
    assert.deepStrictEqual(results.get('concord'), results.get('etcd'));
  });
});
