/**
 * etcd's snapshotSender: one POST to <peer>/raft/snapshot whose body is the framed MsgSnap
 * followed by the backend's bytes, streamed (never held whole). Its outcome goes to raft as
 * ReportSnapshot (and ReportUnreachable on failure).
 */
import { PeerAgents, type PeerClientTls } from './dial.js';
import { Readable } from 'node:stream';
import { sizeMessage, type Message } from '../proto/index.js';
import type { Logger } from '../log/index.js';
import { idString, type LocalIdentity } from './headers.js';
import { encodeStreamMessage } from './message-codec.js';
import { post } from './post.js';
import type { TransportHandlers } from './types.js';
import type { UrlPicker } from './url-picker.js';

/** A snapshot upload with no progress this long has failed (etcd: snapResponseReadTimeout 5 s for the answer). */
const snapshotIdleTimeoutMs = 30_000;

export interface SnapshotToSend {
  /** The MsgSnap raft produced (its snapshot metadata names the index). */
  message: Message;
  /** The backend's bytes, read once. */
  db: AsyncIterable<Uint8Array>;
  /** Their total, for the log (etcd logs the merged size). */
  dbBytes: number;
}

export async function sendSnapshot(
  s: SnapshotToSend, local: LocalIdentity, picker: UrlPicker, handlers: TransportHandlers, logger: Logger, tls: PeerClientTls | undefined,
): Promise<boolean> {
  const m = s.message;
  const to = idString(m.to);
  const fields = { 'snapshot-index': m.snapshot?.metadata.index ?? 0, 'remote-peer-id': to, bytes: sizeMessage(m) + 8 + s.dbBytes };
  logger.info('sending database snapshot', fields);
  const u = picker.pick();
  const body = Readable.from(frameThenDb(m, s.db));
  const url = new URL('/raft/snapshot', u);
  const agents = new PeerAgents({ keepAlive: false });
  const r = await post({
    url: url.toString(), local, contentType: 'application/octet-stream',
    body, idleTimeoutMs: snapshotIdleTimeoutMs, agent: agents.for(url), tls,
  });
  agents.destroy();
  if (!r.ok) {
    logger.warn('failed to send database snapshot', { ...fields, error: r.error });
    if (r.removed) handlers.onRemovedFromCluster();
    picker.unreachable(u);
    handlers.onUnreachable(m.to);
    handlers.onSnapshotStatus(m.to, 'failure');
    return false;
  }
  handlers.onSnapshotStatus(m.to, 'finish');
  logger.info('sent database snapshot', fields);
  return true;
}

async function* frameThenDb(m: Message, db: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  yield encodeStreamMessage(m);
  yield* db;
}
