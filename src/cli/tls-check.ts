/**
 * Client TLS at start-up: the flags as the API takes them, and etcd's checks of them
 * (loaded with the server, not by --help or --version).
 */
import { join } from 'node:path';
import { ClientTls, httpsWithoutCertMessage, selfCert, type ClientTlsOptions } from '../api/index.js';
import type { Logger } from '../log/index.js';
import { urlString, type ServerConfig } from '../server/index.js';
import { errnoText } from './preflight.js';

/** The client TLS flags as the API takes them. */
export function clientTlsOptions(config: ServerConfig): ClientTlsOptions {
  const t = config.tls;
  return {
    certFile: t.certFile, keyFile: t.keyFile, trustedCaFile: t.trustedCaFile, clientCertAuth: t.clientCertAuth,
    ...(t.crlFile ? { crlFile: t.crlFile } : {}),
    ...(t.allowedHostname ? { allowedHostname: t.allowedHostname } : {}),
    ...(t.cipherSuites ? { cipherSuites: t.cipherSuites } : {}),
    ...(t.minVersion ? { minVersion: t.minVersion } : {}),
    ...(t.maxVersion ? { maxVersion: t.maxVersion } : {}),
  };
}

/**
 * etcd's configureClientListeners checks for client TLS: an https URL needs a certificate
 * and key (and they must load: a missing file or a key that does not match fails here, before
 * anything is written); an http URL ignores them, with a warning. Returns the fatal error.
 */
export function checkClientTls(config: ServerConfig, log: Logger): string | undefined {
  const warn = (msg: string, fields: Record<string, string>): void => log.warn(msg, fields);
  const t = config.tls;
  if (t.autoTls) {
    if (t.certFile !== '' || t.keyFile !== '') warn('ignoring client auto TLS since certs given', {});
    else {
      // etcd's ClientSelfCert: made before the listeners, in <data-dir>/fixtures/client.
      const made = selfCert(join(config.dataDir, 'fixtures', 'client'), config.listenClientUrls.map((u) => u.host));
      if (made.created) log.info('created cert file', { path: made.certFile });
      if (made.created) log.info('created key file', { path: made.keyFile });
      t.certFile = made.certFile;
      t.keyFile = made.keyFile;
    }
  }
  const haveFiles = t.certFile !== '' || t.keyFile !== '';
  for (const url of config.listenClientUrls) {
    const shown = urlString(url);
    if (url.protocol === 'http:') {
      if (haveFiles) warn('scheme is HTTP while key and cert files are present; ignoring key and cert files', { 'client-url': shown });
      if (t.clientCertAuth) warn('scheme is HTTP while --client-cert-auth is enabled; ignoring client cert auth for this URL', { 'client-url': shown });
    } else if (url.protocol === 'https:' && !haveFiles) {
      return httpsWithoutCertMessage(shown);
    }
  }
  if (!haveFiles || !config.listenClientUrls.some((u) => u.protocol === 'https:')) return undefined;
  try {
    new ClientTls(clientTlsOptions(config));
    return undefined;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return e.code !== undefined && e.path !== undefined ? `open ${e.path}: ${errnoText(err)}` : e.message;
  }
}
