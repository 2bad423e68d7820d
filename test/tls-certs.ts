// Test certificates made with the openssl CLI (Debian's openssl; .ci installs it): a CA, a
// server certificate for 127.0.0.1/localhost, client certificates that are good, from
// another CA, revoked (listed in a CRL), expired, and for another hostname.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestPki {
  dir: string;
  ca: string;
  serverCert: string; serverKey: string;
  clientCert: string; clientKey: string;
  /** Signed by a CA the server does not trust. */
  otherCert: string; otherKey: string;
  revokedCert: string; revokedKey: string;
  expiredCert: string; expiredKey: string;
  /** CRL of the CA listing revokedCert. */
  crl: string;
  remove(): void;
}

const openssl = (dir: string, args: string[]): void => {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
};

const caConfig = (dir: string): string => `
[ ca ]
default_ca = testca
[ testca ]
dir = ${dir}/db
database = ${dir}/db/index.txt
new_certs_dir = ${dir}/db/new
serial = ${dir}/db/serial
crlnumber = ${dir}/db/crlnumber
certificate = ${dir}/ca.pem
private_key = ${dir}/ca-key.pem
default_md = sha256
default_days = 365
default_crl_days = 30
policy = anything
copy_extensions = copy
unique_subject = no
[ anything ]
commonName = supplied
[ req ]
distinguished_name = dn
[ dn ]
[ v3_ca ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
[ server ]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
[ client ]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
subjectAltName = DNS:client.example.com
`;

/** Makes the whole set in a fresh temp dir (a second or two of openssl). */
export function makeTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'concord-pki-'));
  mkdirSync(join(dir, 'db', 'new'), { recursive: true });
  writeFileSync(join(dir, 'db', 'index.txt'), '');
  writeFileSync(join(dir, 'db', 'serial'), '1000\n');
  writeFileSync(join(dir, 'db', 'crlnumber'), '1000\n');
  writeFileSync(join(dir, 'openssl.cnf'), caConfig(dir));
  const cnf = ['-config', 'openssl.cnf'];
  const key = (name: string): void => openssl(dir, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}-key.pem`]);
  const selfSignedCa = (name: string, cn: string): void => {
    key(name);
    openssl(dir, ['req', ...cnf, '-new', '-x509', '-key', `${name}-key.pem`, '-out', `${name}.pem`, '-days', '365', '-subj', `/CN=${cn}`, '-extensions', 'v3_ca']);
  };
  const issue = (name: string, cn: string, ext: 'server' | 'client', ca: 'ca' | 'other', dates: string[] = []): void => {
    key(name);
    openssl(dir, ['req', ...cnf, '-new', '-key', `${name}-key.pem`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`]);
    if (ca === 'ca') {
      openssl(dir, ['ca', ...cnf, '-batch', '-notext', '-in', `${name}.csr`, '-out', `${name}.pem`, '-extensions', ext, ...dates]);
    } else {
      openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'other.pem', '-CAkey', 'other-key.pem', '-CAcreateserial',
        '-out', `${name}.pem`, '-days', '30', '-extfile', 'openssl.cnf', '-extensions', ext]);
    }
  };
  selfSignedCa('ca', 'concord test CA');
  selfSignedCa('other', 'another CA');
  issue('server', 'concord-server', 'server', 'ca');
  issue('client', 'root', 'client', 'ca');
  issue('foreign', 'root', 'client', 'other');
  issue('revoked', 'root', 'client', 'ca');
  issue('expired', 'root', 'client', 'ca', ['-startdate', '20200101000000Z', '-enddate', '20200102000000Z']);
  openssl(dir, ['ca', ...cnf, '-revoke', 'revoked.pem']);
  openssl(dir, ['ca', ...cnf, '-gencrl', '-out', 'crl.pem']);
  const p = (f: string): string => join(dir, f);
  return {
    dir, ca: p('ca.pem'),
    serverCert: p('server.pem'), serverKey: p('server-key.pem'),
    clientCert: p('client.pem'), clientKey: p('client-key.pem'),
    otherCert: p('foreign.pem'), otherKey: p('foreign-key.pem'),
    revokedCert: p('revoked.pem'), revokedKey: p('revoked-key.pem'),
    expiredCert: p('expired.pem'), expiredKey: p('expired-key.pem'),
    crl: p('crl.pem'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
