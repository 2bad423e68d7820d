/**
 * --auto-tls: a self-signed certificate made at start-up, as etcd's transport.SelfCert makes
 * it: an ECDSA P-521 key, subject O=etcd, valid for a year (--self-signed-cert-validity years
 * as 3.5), server authentication, the listen hosts as IP or DNS subject alternative names,
 * written as cert.pem and key.pem in the given directory and reused while both exist.
 *
 * Node can sign but not build certificates, so the certificate's DER is written here: a
 * few ASN.1 shapes, encode-only (nothing here parses untrusted input).
 */
import { generateKeyPairSync, randomBytes, sign, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';

export interface SelfCertFiles { certFile: string; keyFile: string; created: boolean }

/** Makes (or finds) `dir`/cert.pem and `dir`/key.pem for `hosts` ("host:port" or "host"). */
export function selfCert(dir: string, hosts: string[], validityYears = 1, now = new Date()): SelfCertFiles {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  if (existsSync(certFile) && existsSync(keyFile)) return { certFile, keyFile, created: false };
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-521' });
  const notAfter = new Date(now.getTime() + validityYears * 365 * 24 * 3600 * 1000);
  const tbs = tbsCertificate(publicKey.export({ type: 'spki', format: 'der' }), hosts.map(hostOf), now, notAfter);
  const signature = sign('sha512', tbs, privateKey);
  const der = seq(tbs, ecdsaWithSha512(), bitString(signature));
  new X509Certificate(der); // a certificate OpenSSL cannot read is a bug here: fail loudly
  writeFileSync(certFile, pem('CERTIFICATE', der), { mode: 0o600 });
  writeFileSync(keyFile, privateKey.export({ type: 'sec1', format: 'pem' }), { mode: 0o600 });
  return { certFile, keyFile, created: true };
}

function hostOf(hostPort: string): string {
  const m = /^\[(.*)\](?::\d+)?$/.exec(hostPort);
  if (m) return m[1]!;
  const colon = hostPort.lastIndexOf(':');
  return colon > 0 && hostPort.indexOf(':') === colon ? hostPort.slice(0, colon) : hostPort;
}

function tbsCertificate(spki: Buffer, hosts: string[], notBefore: Date, notAfter: Date): Buffer {
  const serial = randomBytes(16);
  const subject = seq(set(seq(oid('2.5.4.10'), tlv(0x0c, Buffer.from('etcd')))));
  const names = hosts.map((h) => {
    const family = isIP(h);
    if (family === 4) return tlv(0x87, Buffer.from(h.split('.').map(Number)));
    if (family === 6) return tlv(0x87, ipv6Bytes(h));
    return tlv(0x82, Buffer.from(h, 'latin1'));
  });
  const extensions = [
    extension('2.5.29.15', true, tlv(0x03, Buffer.from([0x05, 0xa0]))), // digitalSignature, keyEncipherment
    extension('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.1'))), // serverAuth
    extension('2.5.29.19', true, seq()), // basicConstraints: not a CA
    ...(names.length > 0 ? [extension('2.5.29.17', false, seq(...names))] : []),
  ];
  return seq(
    tlv(0xa0, integer(Buffer.from([2]))), // v3
    integer(serial),
    ecdsaWithSha512(),
    subject, // issuer: self-signed
    seq(time(notBefore), time(notAfter)),
    subject,
    spki,
    tlv(0xa3, seq(...extensions)),
  );
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(id), ...(critical ? [Buffer.from([0x01, 0x01, 0xff])] : []), tlv(0x04, value));
}

function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  const len = n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), len, content]);
}

const seq = (...parts: Buffer[]): Buffer => tlv(0x30, Buffer.concat(parts));
const set = (...parts: Buffer[]): Buffer => tlv(0x31, Buffer.concat(parts));
const bitString = (b: Buffer): Buffer => tlv(0x03, Buffer.concat([Buffer.from([0]), b]));

function integer(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  const body = b.subarray(i);
  return tlv(0x02, body[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), body]) : body);
}

function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number) as [number, number, ...number[]];
  const out = [40 * a + b];
  for (const v of rest) {
    const bytes = [v & 0x7f];
    for (let x = v >>> 7; x > 0; x >>>= 7) bytes.unshift((x & 0x7f) | 0x80);
    out.push(...bytes);
  }
  return tlv(0x06, Buffer.from(out));
}

/** UTCTime before 2050, GeneralizedTime from then on (RFC 5280 §4.1.2.5). */
function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z'; // YYYYMMDDHHMMSSZ
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(iso.slice(2))) : tlv(0x18, Buffer.from(iso));
}

function ipv6Bytes(ip: string): Buffer {
  const [head, tail = ''] = ip.split('::') as [string, string?];
  const parts = (s: string): number[] => (s === '' ? [] : s.split(':').map((h) => parseInt(h, 16)));
  const h = parts(head);
  const t = parts(tail);
  const groups = ip.includes('::') ? [...h, ...new Array(8 - h.length - t.length).fill(0), ...t] : h;
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}

/** AlgorithmIdentifier ecdsa-with-SHA512 (Go signs with it for a P-521 key). */
const ecdsaWithSha512 = (): Buffer => seq(oid('1.2.840.10045.4.3.4'));

function pem(type: string, der: Buffer): string {
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${type}-----\n${b64}\n-----END ${type}-----\n`;
}
