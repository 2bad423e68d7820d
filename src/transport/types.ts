/** The contract between the peer transport and the member (server/) that owns raft. */
import type { Message } from '../proto/index.js';
import type { Logger } from '../log/index.js';
import type { LocalIdentity } from './headers.js';
import type { PeerClientTls } from './dial.js';

/** raft.SnapshotStatus, as the transport reports it (raft/ is not importable from here). */
export type SnapshotOutcome = 'finish' | 'failure';

/** The two long-lived streams, by their etcd names. */
export type StreamKind = 'message' | 'msgappv2';

/** What the transport calls on the member. Every callback is synchronous and must not throw. */
export interface TransportHandlers {
  /** A raft message from a peer (streams, pipeline, or after a snapshot was saved). */
  onMessage(m: Message): void;
  /** raft.ReportUnreachable: a message to `id` may have been lost. */
  onUnreachable(id: bigint): void;
  /** raft.ReportSnapshot: how sending a MsgSnap to `id` ended. */
  onSnapshotStatus(id: bigint, outcome: SnapshotOutcome): void;
  /** Raft.IsIDRemoved: streams from removed members are refused with 410. */
  isIdRemoved(id: bigint): boolean;
  /**
   * A peer told us we were removed from the cluster (410 on a stream dial, 403 on a post):
   * etcd's errMemberRemoved on Transport.ErrorC; the member stops.
   */
  onRemovedFromCluster(): void;
  /**
   * POST /raft/snapshot: `m` is the MsgSnap, `db` the backend bytes that follow it (the
   * transport stops the upload past maxSnapshotBytes). Resolve once the bytes are durable;
   * the transport then gives `m` to onMessage and answers 204. A rejection answers 500
   * "failed to save KV snapshot (...)". Absent: snapshots are refused with that 500.
   */
  saveSnapshot?(m: Message, db: AsyncIterable<Uint8Array>): Promise<void>;
}

export interface TransportOptions {
  local: LocalIdentity;
  handlers: TransportHandlers;
  logger: Logger;
  /** Largest raft message accepted from a stream or a pipeline POST. Default etcd's 512 MiB. */
  maxMessageBytes?: number;
  /** Largest backend accepted after a MsgSnap. Default 8 GiB (etcd's max quota). */
  maxSnapshotBytes?: number;
  /** Least time between two dials of one stream (etcd's DialRetryFrequency: 100 ms). */
  dialRetryMs?: number;
  /** Bytes one peer's stream queue may hold besides its count bound. Default 64 MiB. */
  maxStreamQueuedBytes?: number;
  /** TLS for dialing peers' https URLs (absent: https peers are verified against the system CAs). */
  clientTls?: PeerClientTls;
}
