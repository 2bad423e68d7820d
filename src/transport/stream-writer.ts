/**
 * The sending half of a stream a peer dialed (etcd's streamWriter): the peer's GET stays
 * open and we write our raft messages for it into the response. The frames of one send
 * batch (a Ready's messages, or what raft raised during a save) are gathered and go out in
 * one write at flush(): one HTTP chunk and one writev per batch instead of one per message.
 * Only while the socket pushes back do messages wait, unencoded, in a queue bounded by etcd's
 * streamBufSize (count) and maxQueuedBytes.
 */
import type { ServerResponse } from 'node:http';
import { MessageType, newMessage, sizeMessage, type Message } from '../proto/index.js';
import type { Logger } from '../log/index.js';
import { BoundedQueue } from './bounded-queue.js';
import { encodeStreamMessage } from './message-codec.js';
import { MsgAppV2Encoder } from './msgappv2-codec.js';
import type { StreamKind } from './types.js';

/** etcd's streamBufSize: messages one stream writer may hold. */
export const streamBufSize = 4096;
/** etcd's ConnReadTimeout: a stream silent this long is dead; we beat at a third of it. */
export const connReadTimeoutMs = 5000;
/** etcd's ConnWriteTimeout: a stream whose peer reads nothing this long is closed. */
const connWriteTimeoutMs = 5000;
/** Bytes of frames gathered before they go out without waiting for the batch's flush(). */
export const maxBatchBytes = 256 * 1024;

/** etcd's names for the streams in logs (streamType.String). */
export const streamTypeName: Record<StreamKind, string> = {
  message: 'stream Message',
  msgappv2: 'stream MsgApp v2',
};

const linkHeartbeat = newMessage({ type: MessageType.MsgHeartbeat });

interface Connection {
  res: ServerResponse;
  encode: (m: Message) => Uint8Array;
  heartbeat: NodeJS.Timeout;
}

export class StreamWriter {
  private conn: Connection | undefined;
  private blocked = false;
  private readonly queue: BoundedQueue<Message>;
  /** Frames encoded since the last flush, in order (at most maxBatchBytes plus one frame). */
  private batch: Uint8Array[] = [];
  private batchBytes = 0;

  constructor(
    private readonly kind: StreamKind,
    private readonly peerId: string,
    private readonly localId: string,
    private readonly logger: Logger,
    maxQueuedBytes: number,
    private readonly onLost: (hadQueued: boolean) => void,
  ) {
    this.queue = new BoundedQueue(streamBufSize, maxQueuedBytes, sizeMessage);
  }

  /** True while a peer's GET is attached: messages offered now go out on this stream. */
  get working(): boolean {
    return this.conn !== undefined;
  }

  /** Hands the stream a freshly accepted GET (replacing any older one). */
  attach(res: ServerResponse): void {
    const replaced = this.detach();
    const encode = this.kind === 'msgappv2' ? encoderFor(new MsgAppV2Encoder()) : encodeStreamMessage;
    const heartbeat = setInterval(() => {
      this.offer(linkHeartbeat);
      this.flush();
    }, connReadTimeoutMs / 3);
    const conn: Connection = { res, encode, heartbeat };
    this.conn = conn;
    res.on('close', () => {
      if (this.conn !== conn) return;
      this.detach();
      this.logger.warn('lost TCP streaming connection with remote peer', this.fields());
    });
    res.on('error', () => {}); // 'close' follows and handles it
    // We write at least a heartbeat every connReadTimeoutMs / 3, so a socket idle this long
    // is one whose peer stopped reading (etcd's write deadline).
    res.socket?.setTimeout(connWriteTimeoutMs, () => res.destroy());
    if (replaced) this.logger.warn('closed TCP streaming connection with remote peer', this.fields());
    this.logger.warn('established TCP streaming connection with remote peer', this.fields());
  }

  /**
   * Takes m for the current batch (sent at the next flush()), or queues it while the socket
   * pushes back; false when the queue is full (the caller drops m and reports it).
   */
  offer(m: Message): boolean {
    if (this.conn === undefined) return false;
    if (this.blocked || this.queue.length > 0) return this.queue.offer(m);
    this.gather(m);
    return true;
  }

  /** Writes the batch gathered since the last flush in one write: the end of a send batch. */
  flush(): void {
    const conn = this.conn;
    if (conn === undefined || this.batch.length === 0) return;
    const data = this.batch.length === 1 ? this.batch[0]! : Buffer.concat(this.batch, this.batchBytes);
    this.batch = [];
    this.batchBytes = 0;
    // node:http corks the socket for the chunk's head, data and tail (one writev) and uncorks
    // it on the next tick, after whatever else this turn does (a leader's applies, a
    // follower's, before its acknowledgement leaves). The batch is whole: uncork now.
    const socket = conn.res.socket;
    const corked = socket?.writableCorked ?? 0;
    const ok = conn.res.write(data);
    if (socket && socket.writableCorked > corked) socket.uncork();
    if (!ok) {
      this.blocked = true;
      conn.res.once('drain', () => this.drain(conn));
    }
  }

  /** Closes the attached stream, if any; true when there was one. */
  detach(): boolean {
    const conn = this.conn;
    if (conn === undefined) return false;
    this.conn = undefined;
    this.blocked = false;
    const hadBatch = this.batch.length > 0;
    this.batch = [];
    this.batchBytes = 0;
    clearInterval(conn.heartbeat);
    conn.res.destroy();
    const hadQueued = this.queue.clear() > 0 || hadBatch;
    this.onLost(hadQueued);
    return true;
  }

  /** Encodes m into the batch (in offer order: the msgappv2 encoder carries state across frames). */
  private gather(m: Message): void {
    const frame = this.conn!.encode(m);
    this.batch.push(frame);
    this.batchBytes += frame.length;
    if (this.batchBytes >= maxBatchBytes) this.flush();
  }

  /** The socket took what it held: what queued meanwhile goes out, in batches, until it pushes back again. */
  private drain(conn: Connection): void {
    if (this.conn !== conn) return;
    this.blocked = false;
    while (!this.blocked) {
      const m = this.queue.poll();
      if (m === undefined) break;
      this.gather(m); // may flush, and block again
    }
    this.flush();
  }

  private fields(): Record<string, string> {
    return { 'stream-writer-type': streamTypeName[this.kind], 'local-member-id': this.localId, 'remote-peer-id': this.peerId };
  }
}

function encoderFor(enc: MsgAppV2Encoder): (m: Message) => Uint8Array {
  return (m) => enc.encode(m);
}
