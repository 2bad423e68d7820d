/**
 * Client TLS as etcd's transport.TLSInfo sets it up (pkg/transport/listener.go): the
 * server's certificate and key (re-read when the files change, so a rotated certificate is
 * served without a restart, as etcd re-reads them per handshake), TLS 1.2 at least unless
 * told otherwise, client certificates required and verified whenever a trusted CA is given,
 * a CRL, an allowed hostname the client certificate must match, and Go's cipher-suite names.
 */
import { readFileSync, statSync } from 'node:fs';
import tls from 'node:tls';
import { X509Certificate } from 'node:crypto';

/** The client TLS flags (--cert-file, --key-file, --trusted-ca-file, ...), file paths as given. */
export interface ClientTlsOptions {
  certFile: string;
  keyFile: string;
  trustedCaFile: string;
  clientCertAuth: boolean;
  /** --client-crl-file: certificates whose serials it lists are refused. */
  crlFile?: string;
  /** --client-cert-allowed-hostname: a client certificate must be valid for this name. */
  allowedHostname?: string;
  /** --cipher-suites, in Go's names (TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, ...). */
  cipherSuites?: string[];
  /** --tls-min-version / --tls-max-version as etcd 3.5 spells them (TLS1.2, TLS1.3). */
  minVersion?: string;
  maxVersion?: string;
}

/** etcd's refusal of an https client URL without a certificate and key (embed/etcd.go). */
export function httpsWithoutCertMessage(shownUrl: string): string {
  return `TLS key/cert (--cert-file, --key-file) must be provided for client url ${shownUrl} with HTTPS scheme`;
}

/** A TLS setting etcd would refuse at start-up; the message is etcd's. */
export class TlsConfigError extends Error {}

/** Go's cipher-suite names (crypto/tls) and OpenSSL's names for the same suites. */
const goCipherSuites: Record<string, string> = {
  TLS_RSA_WITH_AES_128_CBC_SHA: 'AES128-SHA',
  TLS_RSA_WITH_AES_256_CBC_SHA: 'AES256-SHA',
  TLS_RSA_WITH_AES_128_GCM_SHA256: 'AES128-GCM-SHA256',
  TLS_RSA_WITH_AES_256_GCM_SHA384: 'AES256-GCM-SHA384',
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA: 'ECDHE-ECDSA-AES128-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA: 'ECDHE-ECDSA-AES256-SHA',
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA: 'ECDHE-RSA-AES128-SHA',
  TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA: 'ECDHE-RSA-AES256-SHA',
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: 'ECDHE-RSA-AES128-GCM-SHA256',
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: 'ECDHE-ECDSA-AES128-GCM-SHA256',
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: 'ECDHE-RSA-AES256-GCM-SHA384',
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: 'ECDHE-ECDSA-AES256-GCM-SHA384',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305: 'ECDHE-RSA-CHACHA20-POLY1305',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305: 'ECDHE-ECDSA-CHACHA20-POLY1305',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-RSA-CHACHA20-POLY1305',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-ECDSA-CHACHA20-POLY1305',
};

const tlsVersions: Record<string, tls.SecureVersion> = { 'TLS1.2': 'TLSv1.2', 'TLS1.3': 'TLSv1.3' };

/** OpenSSL's cipher list for Go's names, refusing an unknown name with etcd's message. */
export function opensslCiphers(goNames: string[]): string {
  return goNames.map((name) => {
    const openssl = goCipherSuites[name];
    if (openssl === undefined) throw new TlsConfigError(`unexpected TLS cipher suite ${JSON.stringify(name)}`);
    return openssl;
  }).join(':');
}

function secureVersion(v: string | undefined, fallback: tls.SecureVersion): tls.SecureVersion {
  if (v === undefined || v === '') return fallback;
  const version = tlsVersions[v];
  if (version === undefined) throw new TlsConfigError(`unexpected TLS version ${JSON.stringify(v)} (must be one of: TLS1.2, TLS1.3)`);
  return version;
}

/**
 * The client TLS of one member: tls.Server options built from the flags (start-up fails with
 * TlsConfigError, or the file error, on settings etcd refuses), kept current when the
 * certificate or key file changes, and the checks made after a handshake.
 */
export class ClientTls {
  private stamp: string;
  private readonly context: tls.SecureContextOptions;
  private readonly verifyClients: boolean;

  constructor(private readonly opts: ClientTlsOptions) {
    if (opts.certFile === '' || opts.keyFile === '') {
      throw new TlsConfigError(`KeyFile and CertFile must both be present[key: ${opts.keyFile}, cert: ${opts.certFile}]`);
    }
    const minVersion = secureVersion(opts.minVersion, 'TLSv1.2');
    const maxVersion = secureVersion(opts.maxVersion, 'TLSv1.3');
    const ciphers = opts.cipherSuites !== undefined && opts.cipherSuites.length > 0 ? opensslCiphers(opts.cipherSuites) : undefined;
    this.context = {
      ...(opts.trustedCaFile !== '' ? { ca: readFileSync(opts.trustedCaFile) } : {}),
      ...(opts.crlFile ? { crl: readFileSync(opts.crlFile) } : {}),
      minVersion,
      // Go applies a cipher list to TLS 1.2 only; OpenSSL's list does the same, so a list
      // limits 1.2 and 1.3 keeps its own suites, as in etcd.
      maxVersion,
      ...(ciphers !== undefined ? { ciphers } : {}),
    };
    this.verifyClients = opts.trustedCaFile !== '' || opts.clientCertAuth;
    this.stamp = this.filesStamp();
    this.keyPair(); // a bad certificate or key fails start-up, as etcd's tlsutil.NewCert does
  }

  serverOptions(): tls.TlsOptions {
    return {
      ...this.context,
      ...this.keyPair(),
      requestCert: this.verifyClients,
      rejectUnauthorized: this.verifyClients,
      ALPNProtocols: ['h2', 'http/1.1'],
    };
  }

  /** Serves a rotated certificate from the next handshake on (etcd re-reads the files per handshake). */
  refresh(server: tls.Server): void {
    const stamp = this.filesStamp();
    if (stamp === this.stamp) return;
    server.setSecureContext({ ...this.context, ...this.keyPair() });
    this.stamp = stamp;
  }

  /** Why a verified client certificate is still refused (etcd's allowed-hostname check), if it is. */
  problem(socket: tls.TLSSocket): string | undefined {
    const host = this.opts.allowedHostname;
    if (!host) return undefined;
    const cert = socket.getPeerX509Certificate();
    const ok = cert !== undefined && (cert.checkHost(host) !== undefined || cert.checkIP(host) !== undefined);
    return ok ? undefined : 'client certificate authentication failed';
  }

  private keyPair(): { cert: Buffer; key: Buffer } {
    const cert = readFileSync(this.opts.certFile);
    new X509Certificate(cert); // refuses a file that is not a certificate, with OpenSSL's reason
    const pair = { cert, key: readFileSync(this.opts.keyFile) };
    tls.createSecureContext(pair); // refuses a key that does not match
    return pair;
  }

  private filesStamp(): string {
    return `${statSync(this.opts.certFile).mtimeMs}/${statSync(this.opts.keyFile).mtimeMs}`;
  }
}
