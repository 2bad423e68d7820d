/**
 * Requests to peers over http or https by the peer URL's scheme, with the member's peer
 * client TLS (--peer-cert-file/--peer-key-file as the client certificate, --peer-trusted-ca-file
 * to verify the peer; --peer-auto-tls skips verification, as etcd's self-signed setup does).
 */
import * as http from 'node:http';
import * as https from 'node:https';

/** The TLS a member presents and checks when it dials a peer's https URL. */
export type PeerClientTls = Pick<https.RequestOptions, 'ca' | 'cert' | 'key' | 'rejectUnauthorized' | 'crl'>;

export function peerRequest(url: string | URL, opts: http.RequestOptions, tls: PeerClientTls | undefined): http.ClientRequest {
  const u = typeof url === 'string' ? new URL(url) : url;
  const req = u.protocol === 'https:' ? https.request(u, { ...opts, ...tls }) : http.request(u, opts);
  // Raft messages are small and latency-bound: no Nagle delay (Go's TCP default too).
  req.on('socket', (s) => s.setNoDelay(true));
  return req;
}

/** One agent per scheme (an https request needs an https agent). */
export class PeerAgents {
  private readonly plain: http.Agent;
  private readonly secure: https.Agent;

  constructor(opts: http.AgentOptions) {
    this.plain = new http.Agent(opts);
    this.secure = new https.Agent(opts);
  }

  for(url: string | URL): http.Agent {
    return (typeof url === 'string' ? url.startsWith('https:') : url.protocol === 'https:') ? this.secure : this.plain;
  }

  destroy(): void {
    this.plain.destroy();
    this.secure.destroy();
  }
}
