/**
 * etcd's access controller for plain HTTP on the client port (embed/serve.go accessController,
 * etcdserver/server_access_control.go): `--host-whitelist` refuses a request over a cleartext
 * connection whose Host is not listed (a DNS-rebinding defence, CVE-2018-5702), and `--cors`
 * decides which Origin gets the CORS headers. gRPC never passes through it, nor does the
 * metrics listener.
 */
import type { Logger } from '../log/index.js';

/** The lists as the flags give them; "*" (or an empty list) allows everything. */
export interface AccessOptions {
  /** --cors: allowed origins (URLs as Go prints them) or "*". etcd's default: ["*"]. */
  cors: readonly string[];
  /** --host-whitelist: allowed host names (no port) or "*". etcd's default: ["*"]. */
  hostWhitelist: readonly string[];
}

export type CorsHeaders = Readonly<Record<string, string>>;

/** etcd's addCORSHeader for one origin. */
function corsHeadersFor(origin: string): CorsHeaders {
  return {
    'access-control-allow-methods': 'POST, GET, OPTIONS, PUT, DELETE',
    'access-control-allow-origin': origin,
    'access-control-allow-headers': 'accept, content-type, authorization',
  };
}

const anyOrigin = corsHeadersFor('*');
const noHeaders: CorsHeaders = Object.freeze({});

/** A set that allows everything when empty or holding "*", as etcd's AccessController reads its maps. */
function allowList(values: readonly string[]): ReadonlySet<string> | 'all' {
  return values.length === 0 || values.includes('*') ? 'all' : new Set(values);
}

export class AccessControl {
  private readonly origins: ReadonlySet<string> | 'all';
  private readonly hosts: ReadonlySet<string> | 'all';

  constructor(opts: AccessOptions, private readonly log?: Pick<Logger, 'warn'>) {
    this.origins = allowList(opts.cors);
    this.hosts = allowList(opts.hostWhitelist);
  }

  /** Allows everything (etcd's defaults): callers may skip the per-request checks. */
  static readonly open = new AccessControl({ cors: ['*'], hostWhitelist: ['*'] });

  /**
   * The refusal for a cleartext request whose Host header is not whitelisted (Go's
   * http.Error with status 421 and etcd's text), or undefined when it may pass.
   */
  hostRefusal(hostHeader: string | undefined): { status: number; message: string } | undefined {
    if (this.hosts === 'all') return undefined;
    const host = hostnameOf(hostHeader ?? '');
    if (this.hosts.has(host)) return undefined;
    this.log?.warn('rejecting HTTP request to prevent DNS rebinding attacks', { host });
    return { status: 421, message: hostRefusalText(host) };
  }

  /** The CORS headers for a request with this Origin header (none when the origin is not allowed). */
  corsHeaders(origin: string | undefined): CorsHeaders {
    if (this.origins === 'all') return anyOrigin;
    const o = origin ?? '';
    return this.origins.has(o) ? corsHeadersFor(o) : noHeaders;
  }
}

/** etcd's errCVE20185702 (Go's %q of an ASCII host is JSON's quoting). */
function hostRefusalText(host: string): string {
  return `
etcd received your request, but the Host header was unrecognized.

To fix this, choose one of the following options:
- Enable TLS, then any HTTPS request will be allowed.
- Add the hostname you want to use to the whitelist in settings.
  - e.g. etcd --host-whitelist ${JSON.stringify(host)}

This requirement has been added to help prevent "DNS Rebinding" attacks (CVE-2018-5702).
`;
}

/**
 * etcd's httputil.GetHostname: the host of "host:port" as Go's net.SplitHostPort splits it,
 * or the whole Host value when it does not split ("localhost", "[::1]", "a:b:c").
 */
export function hostnameOf(hostport: string): string {
  if (hostport.startsWith('[')) {
    const close = hostport.indexOf(']');
    if (close < 0 || hostport[close + 1] !== ':') return hostport;
    const host = hostport.slice(1, close);
    const port = hostport.slice(close + 2);
    return host.includes('[') || /[[\]:]/.test(port) ? hostport : host;
  }
  const colon = hostport.lastIndexOf(':');
  if (colon < 0) return hostport;
  const host = hostport.slice(0, colon);
  const port = hostport.slice(colon + 1);
  if (host.includes(':') || host.includes('[') || host.includes(']') || port.includes('[') || port.includes(']')) return hostport;
  return host;
}
