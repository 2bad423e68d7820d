/**
 * The peer transport of one member (etcd's rafthttp.Transport): the peers it knows, what it
 * sends them, and its /raft handler for what they send. The member (server/) owns it:
 *
 *   const t = new PeerTransport({ local, handlers, logger });
 *   peerHttpServer.on('request', (req, res) => t.handle(req, res) || serveTheRest(req, res));
 *   t.addPeer(id, urls);  ...  t.send(ready.messages);  ...  t.stop();
 *
 * Incoming messages reach handlers.onMessage; failures reach onUnreachable/onSnapshotStatus.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Message } from '../proto/index.js';
import { idString } from './headers.js';
import { defaultMaxMessageBytes } from './message-codec.js';
import { Peer } from './peer.js';
import { handlePeerRequest, type PeerHandlerContext } from './peer-handler.js';
import type { TransportOptions } from './types.js';
import type { SnapshotToSend } from './snapshot-sender.js';

const defaultMaxSnapshotBytes = 8 * 1024 * 1024 * 1024;
const defaultMaxStreamQueuedBytes = 64 * 1024 * 1024;
const defaultDialRetryMs = 100;

export class PeerTransport {
  private readonly peers = new Map<bigint, Peer>();
  private readonly handlerContext: PeerHandlerContext;
  private stopped = false;

  constructor(private readonly o: TransportOptions) {
    this.handlerContext = {
      localId: o.local.memberId,
      clusterId: o.local.clusterId,
      handlers: o.handlers,
      logger: o.logger,
      maxMessageBytes: o.maxMessageBytes ?? defaultMaxMessageBytes,
      maxSnapshotBytes: o.maxSnapshotBytes ?? defaultMaxSnapshotBytes,
      attachStream: (from, kind, res, accept) => {
        const p = this.peers.get(from);
        if (p === undefined) return false;
        if (accept()) p.attachStream(kind, res);
        return true;
      },
    };
  }

  /** Serves req if it is for /raft...; false leaves it to the caller. */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    return handlePeerRequest(this.handlerContext, req, res);
  }

  /**
   * Sends each message to its `to` peer; unknown peers are skipped (etcd logs and skips too).
   * One batch: each peer's streams write what it got in one write, after the loop.
   */
  send(messages: readonly Message[]): void {
    for (const m of messages) {
      if (m.to === 0n) continue;
      const p = this.peers.get(m.to);
      if (p !== undefined) p.send(m);
      else this.o.logger.debug('ignored message send request; unknown remote peer target', { type: m.type, 'unknown-target-peer-id': idString(m.to) });
    }
    for (const p of this.peers.values()) p.flush();
  }

  /**
   * etcd's Transport.SendSnapshot: POSTs the MsgSnap and the backend to its `to` peer, one
   * upload per peer at a time; resolves true once the peer saved it. Raft hears the outcome
   * through onSnapshotStatus either way (failure at once for an unknown or busy peer).
   */
  sendSnapshot(s: SnapshotToSend): Promise<boolean> {
    const p = this.peers.get(s.message.to);
    if (p === undefined) {
      this.o.handlers.onSnapshotStatus(s.message.to, 'failure');
      return Promise.resolve(false);
    }
    return p.sendSnapshot(s);
  }

  addPeer(id: bigint, urls: readonly string[]): void {
    if (this.stopped || this.peers.has(id)) return;
    this.peers.set(id, new Peer({
      local: this.o.local, id, urls, handlers: this.o.handlers, logger: this.o.logger,
      maxMessageBytes: this.o.maxMessageBytes ?? defaultMaxMessageBytes,
      maxStreamQueuedBytes: this.o.maxStreamQueuedBytes ?? defaultMaxStreamQueuedBytes,
      dialRetryMs: this.o.dialRetryMs ?? defaultDialRetryMs,
      tls: this.o.clientTls,
    }));
    this.o.logger.info('added remote peer', { 'local-member-id': idString(this.o.local.memberId), 'remote-peer-id': idString(id), 'remote-peer-urls': urls.join(',') });
  }

  removePeer(id: bigint): void {
    const p = this.peers.get(id);
    if (p === undefined) return;
    this.peers.delete(id);
    p.stop();
    this.o.logger.info('removed remote peer', { 'local-member-id': idString(this.o.local.memberId), 'removed-remote-peer-id': idString(id) });
  }

  updatePeer(id: bigint, urls: readonly string[]): void {
    this.peers.get(id)?.update(urls);
  }

  hasPeer(id: bigint): boolean {
    return this.peers.has(id);
  }

  peerIds(): bigint[] {
    return [...this.peers.keys()];
  }

  /** etcd's Transport.ActivePeers: peers with a working connection. */
  activePeers(): number {
    let n = 0;
    for (const p of this.peers.values()) if (p.isActive) n++;
    return n;
  }

  /** etcd's Transport.ActiveSince: when the connection to `id` became active (Date.now() ms); undefined if not connected. */
  activeSince(id: bigint): number | undefined {
    return this.peers.get(id)?.activeSince;
  }

  stop(): void {
    this.stopped = true;
    for (const p of this.peers.values()) p.stop();
    this.peers.clear();
  }
}
