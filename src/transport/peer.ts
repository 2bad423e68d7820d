/**
 * One remote member (etcd's peer): the two streams we dial, the two streams it dials (our
 * writers), the pipeline, and the choice between them for each message.
 */
import type { PeerClientTls } from './dial.js';
import type { ServerResponse } from 'node:http';
import { MessageType, type Message } from '../proto/index.js';
import type { Logger } from '../log/index.js';
import { idString, type LocalIdentity } from './headers.js';
import { Pipeline, isMsgSnap } from './pipeline.js';
import { StreamReader } from './stream-reader.js';
import { StreamWriter } from './stream-writer.js';
import type { StreamKind, TransportHandlers } from './types.js';
import { UrlPicker } from './url-picker.js';
import { sendSnapshot, type SnapshotToSend } from './snapshot-sender.js';

export interface PeerConfig {
  local: LocalIdentity;
  id: bigint;
  urls: readonly string[];
  handlers: TransportHandlers;
  logger: Logger;
  maxMessageBytes: number;
  maxStreamQueuedBytes: number;
  dialRetryMs: number;
  tls: PeerClientTls | undefined;
}

export class Peer {
  readonly id: bigint;
  private readonly picker: UrlPicker;
  private readonly writers: Record<StreamKind, StreamWriter>;
  private readonly readers: StreamReader[];
  private readonly pipeline: Pipeline;
  /** When the connection became active (Date.now() ms); undefined while inactive. */
  private activeSinceMs: number | undefined;
  private snapshotInFlight = false;

  constructor(private readonly c: PeerConfig) {
    this.id = c.id;
    this.picker = new UrlPicker(c.urls);
    const peerId = idString(c.id);
    const localId = idString(c.local.memberId);
    const writer = (kind: StreamKind) => new StreamWriter(kind, peerId, localId, c.logger, c.maxStreamQueuedBytes, (hadQueued) => {
      if (hadQueued) c.handlers.onUnreachable(c.id);
    });
    this.writers = { message: writer('message'), msgappv2: writer('msgappv2') };
    this.pipeline = new Pipeline({
      local: c.local, picker: this.picker, maxQueuedBytes: c.maxStreamQueuedBytes, tls: c.tls,
      onResult: (m, r) => {
        if (r.ok) this.setActive();
        else {
          this.setInactive(r.error);
          if (r.removed) c.handlers.onRemovedFromCluster();
          c.handlers.onUnreachable(m.to);
        }
        if (isMsgSnap(m)) c.handlers.onSnapshotStatus(m.to, r.ok ? 'finish' : 'failure');
      },
    });
    const reader = (kind: StreamKind) => new StreamReader({
      kind, local: c.local, peerId: c.id, picker: this.picker, logger: c.logger,
      maxMessageBytes: c.maxMessageBytes, dialRetryMs: c.dialRetryMs, tls: c.tls,
      onMessage: (m) => c.handlers.onMessage(m),
      onActive: () => this.setActive(),
      onInactive: (reason) => this.setInactive(reason),
      onRemovedFromCluster: () => c.handlers.onRemovedFromCluster(),
    });
    this.readers = [reader('msgappv2'), reader('message')];
    for (const r of this.readers) r.start();
  }

  /**
   * etcd's peer.send: pick a stream or the pipeline; when its queue is full, drop and report.
   * A stream sends what it took at the next flush().
   */
  send(m: Message): void {
    if (this.pick(m).offer(m)) return;
    this.c.handlers.onUnreachable(m.to);
    if (isMsgSnap(m)) this.c.handlers.onSnapshotStatus(m.to, 'failure');
    this.c.logger.warn('dropped internal Raft message since sending buffer is full (overloaded network)', {
      'message-type': MessageType[m.type],
      'local-member-id': idString(this.c.local.memberId),
      from: idString(m.from),
      'remote-peer-id': idString(this.id),
      'remote-peer-active': this.isActive,
    });
  }

  /** The end of a send batch: the streams write what they gathered, one write each. */
  flush(): void {
    this.writers.msgappv2.flush();
    this.writers.message.flush();
  }

  get isActive(): boolean {
    return this.activeSinceMs !== undefined;
  }

  /** etcd's peerStatus.activeSince: when the connection last became active; undefined while inactive. */
  get activeSince(): number | undefined {
    return this.activeSinceMs;
  }

  /** One snapshot upload at a time (etcd sends them one by one too); a second fails at once. */
  async sendSnapshot(s: SnapshotToSend): Promise<boolean> {
    if (this.snapshotInFlight) {
      this.c.handlers.onSnapshotStatus(s.message.to, 'failure');
      return false;
    }
    this.snapshotInFlight = true;
    try {
      return await sendSnapshot(s, this.c.local, this.picker, this.c.handlers, this.c.logger, this.c.tls);
    } finally {
      this.snapshotInFlight = false;
    }
  }

  /** A GET for one of our streams to this peer was accepted: write to it from now on. */
  attachStream(kind: StreamKind, res: ServerResponse): void {
    this.writers[kind].attach(res);
  }

  update(urls: readonly string[]): void {
    this.picker.update(urls);
  }

  stop(): void {
    this.c.logger.info('stopping remote peer', { 'remote-peer-id': idString(this.id) });
    this.writers.message.detach();
    this.writers.msgappv2.detach();
    for (const r of this.readers) r.stop();
    this.pipeline.stop();
    this.c.logger.info('stopped remote peer', { 'remote-peer-id': idString(this.id) });
  }

  /** MsgSnap may be huge: never on a stream. MsgApp prefers msgappv2. */
  private pick(m: Message): { offer(m: Message): boolean } {
    if (isMsgSnap(m)) return this.pipeline;
    if (m.type === MessageType.MsgApp && this.writers.msgappv2.working) return this.writers.msgappv2;
    if (this.writers.message.working) return this.writers.message;
    return this.pipeline;
  }

  private setActive(): void {
    if (this.activeSinceMs !== undefined) return;
    this.activeSinceMs = Date.now();
    this.c.logger.info('peer became active', { 'peer-id': idString(this.id) });
  }

  private setInactive(reason: string): void {
    if (this.activeSinceMs === undefined) return;
    this.activeSinceMs = undefined;
    this.c.logger.warn('peer became inactive (message send to peer failed)', { 'peer-id': idString(this.id), error: reason });
  }
}
