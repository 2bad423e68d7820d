/**
 * The member's side of the peer network: the peer listeners on --listen-peer-urls (etcd's
 * peer handler: /raft... through the transport, /members, /version, 404 for the rest), the
 * PeerTransport kept in step with the membership, and the TransportPort the raft loop sends
 * through. What peers send reaches raft through `PeerRaft`; a MsgSnap's backend through
 * `saveSnapshot`.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { PeerTransport, type PeerClientTls, type TransportHandlers } from '../transport/index.js';
import type { MergedSnapshot } from './snapshot-db.js';
import type { Message } from '../proto/index.js';
import type { Logger } from '../log/index.js';
import { etcdServerVersion } from '../version.js';
import type { Membership } from './membership.js';
import { idToHex, memberToJson } from './membership.js';
import type { TransportPort } from './ports.js';
import type { HashKVResult } from '../mvcc/index.js';
import { peerHashKVPath, serveHashKV } from './corrupt-check.js';
import { leaseInternalPrefix, leasePrefix, serveLeaseRequest, type LeasePrimary } from './lease-forward.js';
import { promotePrefix, servePromoteRequest, type PromoteMember } from './promote-forward.js';
import type { PeerActivity } from './cluster-service.js';

/** What the peer network needs of the raft loop (RaftNode). */
export interface PeerRaft {
  step(m: Message): void;
  reportUnreachable(id: bigint): void;
  reportSnapshot(id: bigint, delivered: boolean): void;
}

export interface PeerNetworkOptions {
  memberId: bigint;
  clusterId: bigint;
  /** This member's advertised peer URLs (X-PeerURLs). */
  advertisePeerUrls: readonly string[];
  membership: Membership;
  log: Logger;
  /** The cluster version for /version ("not_decided" until set). */
  clusterVersion(): string | undefined;
  /** Set once the raft loop exists: messages arriving before it are dropped (raft retries). */
  raft(): PeerRaft | undefined;
  /** The backend image to stream after a MsgSnap (snapshot catch-up); absent: MsgSnap fails. */
  snapshotDb?(m: Message): Promise<MergedSnapshot>;
  /** Saves a received backend image durably before its MsgSnap is stepped. */
  saveSnapshot?(m: Message, db: AsyncIterable<Uint8Array>): Promise<void>;
  /** A peer said this member was removed (etcd stops the member). */
  onRemoved(): void;
  /** Peer TLS (https:// peer URLs); absent: plain HTTP. */
  tls?: PeerTls;
}

/** The peer TLS the composition root builds from the --peer-* flags (cli/peer-tls.ts). */
export interface PeerTls {
  /** The peer listeners' TLS (certificate, CA, client-certificate policy, CRL). */
  server: https.ServerOptions;
  /** What this member presents and checks when it dials a peer. */
  client: PeerClientTls;
  /** --peer-cert-allowed-cn: a peer's client certificate must carry this CommonName. */
  allowedCn?: string;
  /** --peer-cert-allowed-hostname: a peer's client certificate must be valid for this name. */
  allowedHostname?: string;
}

/** etcd's checks of a verified peer client certificate against --peer-cert-allowed-cn/-hostname. */
function certificateRefusal(socket: TLSSocket, tls: PeerTls): string | undefined {
  if (!tls.allowedCn && !tls.allowedHostname) return undefined;
  const cert = socket.getPeerX509Certificate();
  if (cert === undefined) return undefined; // no client certificate asked for: nothing to check
  if (tls.allowedCn && !cert.subject.split('\n').includes(`CN=${tls.allowedCn}`)) return 'CommonName authentication failed';
  if (tls.allowedHostname && cert.checkHost(tls.allowedHostname) === undefined && cert.checkIP(tls.allowedHostname) === undefined) {
    return 'client certificate authentication failed';
  }
  return undefined;
}

/** One listener per --listen-peer-urls, serving `handle`; resolves once all listen. */
async function listenAll(urls: readonly URL[], handle: http.RequestListener, tls: PeerTls | undefined, log: Logger): Promise<http.Server[]> {
  const servers: http.Server[] = [];
  try {
    for (const u of urls) {
      const secure = u.protocol === 'https:' && tls !== undefined;
      const s = secure ? https.createServer(tls.server, handle) : http.createServer(handle);
      // Streams carry small raft messages one by one: no Nagle delay (Go's TCP default too).
      s.on('connection', (socket: Socket) => socket.setNoDelay(true));
      if (secure) {
        s.on('secureConnection', (socket: TLSSocket) => {
          const refusal = certificateRefusal(socket, tls);
          if (refusal === undefined) return;
          log.warn('rejected connection', { 'remote-addr': `${socket.remoteAddress}:${socket.remotePort}`, error: refusal });
          socket.destroy();
        });
      }
      // Peer streams are long-lived: no request timeout; the transport bounds idleness itself.
      s.requestTimeout = 0;
      s.keepAliveTimeout = 0;
      servers.push(s);
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(Number(u.port || (u.protocol === 'https:' ? 443 : 80)), u.hostname.replace(/^\[|\]$/g, ''), () => {
          s.off('error', reject);
          resolve();
        });
      });
    }
  } catch (e) {
    for (const s of servers) s.close();
    throw e;
  }
  return servers;
}

export class PeerNetwork implements TransportPort, PeerActivity {
  readonly transport: PeerTransport;
  /** The leader's lease endpoints (/leases, /leases/internal), once the lessor is up. */
  leases: LeasePrimary | undefined;
  /** The member's PromoteMember for /members/promote/<id>, once the server is up. */
  promote: PromoteMember | undefined;
  /** etcd's /members/hashkv: the store's HashByRev, once the store is open. */
  hashKV: ((rev: number) => Promise<HashKVResult>) | undefined;
  private servers: http.Server[] = [];
  private readonly o: PeerNetworkOptions;

  constructor(o: PeerNetworkOptions) {
    this.o = o;
    const handlers: TransportHandlers = {
      onMessage: (m) => {
        // etcd's Process: a removed member's messages are refused.
        if (o.membership.isRemoved(m.from)) return;
        o.raft()?.step(m);
      },
      onUnreachable: (id) => o.raft()?.reportUnreachable(id),
      onSnapshotStatus: (id, outcome) => o.raft()?.reportSnapshot(id, outcome === 'finish'),
      isIdRemoved: (id) => o.membership.isRemoved(id),
      onRemovedFromCluster: () => o.onRemoved(),
      ...(o.saveSnapshot ? { saveSnapshot: o.saveSnapshot } : {}),
    };
    this.transport = new PeerTransport({
      local: { memberId: o.memberId, clusterId: o.clusterId, peerUrls: o.advertisePeerUrls },
      handlers, logger: o.log,
      ...(o.tls ? { clientTls: o.tls.client } : {}),
    });
  }

  /** Starts the peer listeners (before raft runs, as etcd serves peers first). */
  async listen(urls: readonly URL[]): Promise<string[]> {
    this.servers = await listenAll(urls, (req, res) => this.serve(req, res), this.o.tls, this.o.log);
    const addresses = this.servers.map((s, i) => {
      const a = s.address() as AddressInfo;
      return `${urls[i]!.protocol}//${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
    });
    for (const a of addresses) this.o.log.info('serving peer traffic', { address: a.replace(/^https?:\/\//, '') });
    return addresses;
  }

  /**
   * Adds, updates and removes transport peers to match the membership (etcd does this as
   * each conf change applies). Called after every membership change and once at start.
   */
  syncMembers(): void {
    const { membership, memberId } = this.o;
    for (const m of membership.list()) {
      if (m.id === memberId) continue;
      if (this.transport.hasPeer(m.id)) this.transport.updatePeer(m.id, m.peerURLs);
      else this.transport.addPeer(m.id, m.peerURLs);
    }
    // Only a removal takes a peer away: a joining member knows peers its log has not added yet.
    for (const id of this.transport.peerIds()) if (membership.isRemoved(id)) this.transport.removePeer(id);
  }

  /** Adds peers known from elsewhere (a joining member's view of the cluster, fetched from a peer). */
  addPeers(members: ReadonlyArray<{ id: bigint; peerURLs: string[] }>): void {
    for (const m of members) if (m.id !== this.o.memberId) this.transport.addPeer(m.id, m.peerURLs);
  }

  get activePeers(): number {
    return this.transport.activePeers();
  }

  activeSince(id: bigint): number | undefined {
    return this.transport.activeSince(id);
  }

  send(messages: readonly Message[]): void {
    this.transport.send(messages);
  }

  sendSnapshot(m: Message): void {
    const source = this.o.snapshotDb;
    if (source === undefined) {
      this.o.log.warn('cannot send a snapshot to a peer: snapshot catch-up is not available', { 'remote-peer-id': idToHex(m.to) });
      this.o.raft()?.reportSnapshot(m.to, false);
      return;
    }
    // The transport reports the outcome to raft itself (onSnapshotStatus).
    source(m).then(
      (merged) => this.transport.sendSnapshot(merged.send).finally(() => merged.release()),
      (e: unknown) => {
        this.o.log.warn('failed to prepare database snapshot', { 'remote-peer-id': idToHex(m.to), error: String(e) });
        this.o.raft()?.reportSnapshot(m.to, false);
      },
    ).catch((e: unknown) => this.o.log.warn('failed to send database snapshot', { 'remote-peer-id': idToHex(m.to), error: String(e) }));
  }

  async close(): Promise<void> {
    this.transport.stop();
    await Promise.all(this.servers.map((s) => new Promise<void>((resolve) => {
      s.closeAllConnections();
      s.close(() => resolve());
    })));
    this.servers = [];
  }

  /** etcd's peer handler: /raft... (transport), /members, /members/hashkv, /members/promote/, /leases, /version, 404 for anything else. */
  private serve(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (this.transport.handle(req, res)) return;
    const path = new URL(req.url ?? '/', 'http://peer').pathname;
    if (path === '/members') this.serveMembers(req, res);
    else if ((path === leasePrefix || path === leaseInternalPrefix) && this.leases) {
      // A failure ends this request only, never the member.
      serveLeaseRequest(this.leases, req, res, path).catch((e: unknown) => {
        this.o.log.warn('failed to serve lease request', { error: String(e) });
        res.destroy();
      });
    }
    else if (path.startsWith(promotePrefix) && this.promote) {
      servePromoteRequest(this.promote, this.o.clusterId, this.o.log, req, res, path).catch((e: unknown) => {
        this.o.log.warn('failed to serve member promote request', { error: String(e) });
        res.destroy();
      });
    }
    else if (path === peerHashKVPath && this.hashKV) {
      const hashKV = this.hashKV;
      serveHashKV(req, res, { hashKV, clusterId: this.o.clusterId, log: this.o.log }).catch((e: unknown) => {
        this.o.log.warn('failed to serve hash kv request', { error: String(e) });
        res.destroy();
      });
    }
    else if (path === '/version') this.serveVersion(req, res);
    else httpText(res, 404, '404 page not found');
  }

  /** GET /members: the member list as JSON (etcd's json.Encoder output, newline included). */
  private serveMembers(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (!allowGet(req, res)) return;
    const body = `[${this.o.membership.list().map(memberToJson).join(',')}]\n`;
    res.writeHead(200, { 'X-Etcd-Cluster-ID': idToHex(this.o.clusterId), 'Content-Type': 'application/json' });
    res.end(body);
  }

  private serveVersion(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (!allowGet(req, res)) return;
    const cluster = this.o.clusterVersion() ?? 'not_decided';
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ etcdserver: etcdServerVersion, etcdcluster: cluster }));
  }
}

/** Go's http.Error. */
function httpText(res: http.ServerResponse, status: number, msg: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' });
  res.end(msg + '\n');
}

/** etcdhttp's allowMethod(w, r, "GET"). */
function allowGet(req: http.IncomingMessage, res: http.ServerResponse): boolean {
  if (req.method === 'GET') return true;
  res.setHeader('Allow', 'GET');
  httpText(res, 405, 'Method Not Allowed');
  return false;
}
