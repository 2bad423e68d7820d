/**
 * Peer TLS from the --peer-* flags, as etcd sets it up (embed.configurePeerListeners and
 * transport.TLSInfo): the peer listeners' server TLS (client certificates required and
 * verified whenever a trusted CA is given or --peer-client-cert-auth is set), the client TLS
 * used to dial peers, --peer-auto-tls's self-signed pair (peers then skip verification, as
 * etcd's self-signed setup does), --peer-crl-file, --peer-cert-allowed-cn/-hostname.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ClientTls, selfCert } from '../api/index.js';
import type { Logger } from '../log/index.js';
import { urlString, type PeerTls, type ServerConfig } from '../server/index.js';

/** etcd's refusal of an https peer URL without a certificate and key. */
function httpsWithoutPeerCert(url: string): string {
  return `TLS key/cert (--peer-cert-file, --peer-key-file) must be provided for peer url ${url} with HTTPS scheme`;
}

/** The peer TLS to serve and dial with, undefined for plain HTTP; throws etcd's start-up errors. */
export function peerTlsSetup(config: ServerConfig, log: Logger): PeerTls | undefined {
  const t = config.tls;
  let certFile = t.peerCertFile;
  let keyFile = t.peerKeyFile;
  let selfSigned = false;
  if (t.peerAutoTls) {
    if (certFile !== '' || keyFile !== '') log.warn('ignoring peer auto TLS since certs given', {});
    else {
      const made = selfCert(join(config.dataDir, 'fixtures', 'peer'), config.listenPeerUrls.map((u) => u.host));
      if (made.created) log.info('created cert file', { path: made.certFile });
      if (made.created) log.info('created key file', { path: made.keyFile });
      certFile = made.certFile;
      keyFile = made.keyFile;
      selfSigned = true;
    }
  }
  const haveFiles = certFile !== '' || keyFile !== '';
  for (const url of config.listenPeerUrls) {
    const shown = urlString(url);
    if (url.protocol === 'http:') {
      if (haveFiles) log.warn('scheme is HTTP while key and cert files are present; ignoring key and cert files', { 'peer-url': shown });
      if (t.peerClientCertAuth) log.warn('scheme is HTTP while --peer-client-cert-auth is enabled; ignoring client cert auth for this URL', { 'peer-url': shown });
    } else if (url.protocol === 'https:' && !haveFiles) {
      throw new Error(httpsWithoutPeerCert(shown));
    }
  }
  if (!haveFiles) return undefined;
  const server = new ClientTls({
    certFile, keyFile, trustedCaFile: t.peerTrustedCaFile, clientCertAuth: t.peerClientCertAuth,
    ...(t.peerCrlFile ? { crlFile: t.peerCrlFile } : {}),
  });
  const ca = t.peerTrustedCaFile !== '' ? readFileSync(t.peerTrustedCaFile) : undefined;
  return {
    server: { ...server.serverOptions(), ALPNProtocols: ['http/1.1'] },
    client: {
      cert: readFileSync(certFile), key: readFileSync(keyFile),
      ...(ca ? { ca } : {}),
      ...(t.peerCrlFile ? { crl: readFileSync(t.peerCrlFile) } : {}),
      rejectUnauthorized: !selfSigned,
    },
    ...(t.peerAllowedCn ? { allowedCn: t.peerAllowedCn } : {}),
    ...(t.peerAllowedHostname ? { allowedHostname: t.peerAllowedHostname } : {}),
  };
}
