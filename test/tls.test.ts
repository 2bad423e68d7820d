// Client TLS against real etcd and Concord with the same certificates and flags: real
// etcdctl with --cacert/--cert/--key works; no client certificate, one from another CA, an
// expired one, a revoked one (CRL) and one for a hostname not allowed are refused; start-up
// mistakes fail with etcd's message; garbage on the TLS port does not hurt anyone else.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { selectedTargets, startServer, etcdctl, freePort, Server, type TargetName } from './harness.js';
import { makeTestPki, type TestPki } from './tls-certs.js';

let pki: TestPki;
before(() => { pki = makeTestPki(); });
after(() => pki.remove());

const servers: Server[] = [];
after(async () => { for (const s of servers) await s.destroy(); });

async function tlsServer(target: TargetName, flags: string[]): Promise<Server> {
  const s = await startServer({ target, scheme: 'https', extraArgs: ['--cert-file', pki.serverCert, '--key-file', pki.serverKey, ...flags] });
  servers.push(s);
  return s;
}

/** etcdctl with TLS flags; short timeouts, since refused handshakes only end by timing out in grpc-go. */
function ctl(s: Server, tls: string[], args: string[]) {
  return etcdctl(s.endpoint, ['--dial-timeout', '2s', '--command-timeout', '3s', ...tls, ...args]);
}

const withCa = (): string[] => ['--cacert', pki.ca];
const asClient = (cert: string, key: string): string[] => ['--cacert', pki.ca, '--cert', cert, '--key', key];

for (const target of selectedTargets()) {
  describe(`${target}: client TLS`, () => {
    test('server certificate only: etcdctl with --cacert works, without it the certificate is refused', async () => {
      const s = await tlsServer(target, []);
      const put = await ctl(s, withCa(), ['put', 'k', 'v']);
      assert.equal(put.code, 0, put.stderr);
      const get = await ctl(s, withCa(), ['get', 'k', '--print-value-only']);
      assert.equal(get.stdout, 'v\n');
      const unknownCa = await ctl(s, [], ['get', 'k']);
      assert.notEqual(unknownCa.code, 0, 'a client that does not trust the server\'s CA fails');
      const status = await ctl(s, withCa(), ['endpoint', 'status', '-w', 'json']);
      assert.equal(status.code, 0, status.stderr);
      const health = await ctl(s, withCa(), ['endpoint', 'health']);
      assert.equal(health.code, 0, health.stderr);
      assert.match(health.stdout + health.stderr, /is healthy: successfully committed proposal/);
    });

    test('--trusted-ca-file requires a client certificate from that CA; others are refused', async () => {
      const s = await tlsServer(target, ['--trusted-ca-file', pki.ca, '--client-cert-auth']);
      const good = await ctl(s, asClient(pki.clientCert, pki.clientKey), ['put', 'k', 'v']);
      assert.equal(good.code, 0, good.stderr);
      for (const [name, flags] of [
        ['no client certificate', withCa()],
        ['a certificate from another CA', asClient(pki.otherCert, pki.otherKey)],
        ['an expired certificate', asClient(pki.expiredCert, pki.expiredKey)],
      ] as const) {
        const r = await ctl(s, [...flags], ['get', 'k']);
        assert.notEqual(r.code, 0, `${name} must be refused`);
      }
      if (target === 'concord') assert.match(s.log, /"msg":"rejected connection"/);
    });

    test('--client-crl-file refuses a revoked certificate and accepts the others', async () => {
      const s = await tlsServer(target, ['--trusted-ca-file', pki.ca, '--client-cert-auth', '--client-crl-file', pki.crl]);
      const good = await ctl(s, asClient(pki.clientCert, pki.clientKey), ['put', 'k', 'v']);
      assert.equal(good.code, 0, good.stderr);
      const revoked = await ctl(s, asClient(pki.revokedCert, pki.revokedKey), ['get', 'k']);
      assert.notEqual(revoked.code, 0, 'a revoked certificate must be refused');
    });

    test('--client-cert-allowed-hostname: a certificate for that name is accepted, for another refused', async () => {
      const allowed = await tlsServer(target, ['--trusted-ca-file', pki.ca, '--client-cert-auth', '--client-cert-allowed-hostname', 'client.example.com']);
      const ok = await ctl(allowed, asClient(pki.clientCert, pki.clientKey), ['put', 'k', 'v']);
      assert.equal(ok.code, 0, ok.stderr);
      const other = await tlsServer(target, ['--trusted-ca-file', pki.ca, '--client-cert-auth', '--client-cert-allowed-hostname', 'nope.example.com']);
      const refused = await ctl(other, asClient(pki.clientCert, pki.clientKey), ['get', 'k']);
      assert.notEqual(refused.code, 0, 'a certificate for another hostname must be refused');
    });

    test('--cipher-suites limits TLS 1.2 to the listed suites', async () => {
      // The server key is ECDSA, so an RSA-only suite leaves TLS 1.2 nothing to agree on;
      // etcdctl (Go) then still connects over TLS 1.3, whose suites are not configurable.
      const s = await tlsServer(target, ['--cipher-suites', 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256']);
      const r = await ctl(s, withCa(), ['put', 'k', 'v']);
      assert.equal(r.code, 0, r.stderr);
    });

    test('garbage and a stalled handshake on the TLS port end those connections only', async () => {
      const s = await tlsServer(target, []);
      const garbage = net.connect(s.clientPort, '127.0.0.1');
      garbage.on('error', () => { /* the server may reset it */ });
      garbage.write(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x16\x03\x01\xff\xff garbage'));
      const stalled = net.connect(s.clientPort, '127.0.0.1');
      stalled.on('error', () => { /* ignored */ });
      stalled.write(Buffer.from([0x16, 0x03, 0x01, 0x00])); // a record header, then nothing
      try {
        const r = await ctl(s, withCa(), ['put', 'k', 'v']);
        assert.equal(r.code, 0, r.stderr);
        assert.ok(s.running);
      } finally { garbage.destroy(); stalled.destroy(); }
    });
  });

  test(`${target}: --auto-tls makes a self-signed certificate in <data-dir>/fixtures/client and serves https with it`, async () => {
    const s = await startServer({ target, scheme: 'https', extraArgs: ['--auto-tls'] });
    servers.push(s);
    const r = await etcdctl(s.endpoint, ['--insecure-skip-tls-verify', '--insecure-transport=false', 'put', 'k', 'v']);
    assert.equal(r.code, 0, r.stderr);
    const cert = new X509Certificate(readFileSync(join(s.dataDir, 'fixtures', 'client', 'cert.pem')));
    assert.equal(cert.subject, 'O=etcd');
    assert.equal(cert.issuer, 'O=etcd');
    assert.match(cert.subjectAltName ?? '', /IP Address:127\.0\.0\.1/);
    assert.equal(cert.checkIP('127.0.0.1'), '127.0.0.1');
    assert.ok(existsSync(join(s.dataDir, 'fixtures', 'client', 'key.pem')));
    const refused = await ctl(s, ['--insecure-transport=false'], ['get', 'k']);
    assert.notEqual(refused.code, 0, 'a client that verifies the self-signed certificate refuses it');
  });

  test(`${target}: an https client URL without --cert-file/--key-file fails at start-up with etcd's error`, async () => {
    const port = await freePort();
    const s = new Server({ target, scheme: 'https', readyTimeoutMs: 10_000 });
    servers.push(s);
    s.clientPort = port;
    s.peerPort = await freePort();
    s.launch();
    const exited = await new Promise<number | null>((resolve) => s.child!.once('exit', (code) => resolve(code)));
    assert.notEqual(exited, 0);
    assert.ok(s.log.includes(`TLS key/cert (--cert-file, --key-file) must be provided for client url https://127.0.0.1:${port} with HTTPS scheme`), s.log.slice(-2000));
  });
}
