/**
 * The sending half of a stream a peer dialed (etcd's streamWriter): the peer's GET stays
 * open and we write our raft messages for it into the response. Messages go to the socket
 * at once; only while the socket pushes back do they wait in a queue bounded by etcd's
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

/** etcd's names for the streams in logs (streamType.String). */
export const streamTypeName: Record<StreamKind, string> = {
  message: 'stream Message',
  msgappv2: 'stream MsgApp v2',
};

const linkHeartbeat = newMessage({ type: MessageType.MsgHeartbeat });

interface Connection {
  res: ServerResponse;
  encode: (m: Message) => Uint8Array[];
  heartbeat: NodeJS.Timeout;
}

export class StreamWriter {
  private conn: Connection | undefined;
  private blocked = false;
  private readonly queue: BoundedQueue<Message>;

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
    const heartbeat = setInterval(() => this.write(linkHeartbeat), connReadTimeoutMs / 3);
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

  /** Queues m; false when the queue is full (the caller drops m and reports it). */
  offer(m: Message): boolean {
    if (this.conn === undefined) return false;
    if (!this.blocked && this.queue.length === 0) {
      this.write(m);
      return true;
    }
    if (!this.queue.offer(m)) return false;
    return true;
  }

  /** Closes the attached stream, if any; true when there was one. */
  detach(): boolean {
    const conn = this.conn;
    if (conn === undefined) return false;
    this.conn = undefined;
    this.blocked = false;
    clearInterval(conn.heartbeat);
    conn.res.destroy();
    const hadQueued = this.queue.clear() > 0;
    this.onLost(hadQueued);
    return true;
  }

  private write(m: Message): void {
    const conn = this.conn;
    if (conn === undefined || this.blocked) return;
    const chunks = conn.encode(m);
    const socket = conn.res.socket;
    socket?.cork();
    let ok = true;
    for (const c of chunks) ok = conn.res.write(c);
    socket?.uncork();
    if (!ok) {
      this.blocked = true;
      conn.res.once('drain', () => this.drain(conn));
    }
  }

  private drain(conn: Connection): void {
    if (this.conn !== conn) return;
    this.blocked = false;
    for (let m = this.queue.poll(); m !== undefined; m = this.queue.poll()) {
      this.write(m);
      if (this.blocked) return;
    }
  }

  private fields(): Record<string, string> {
    return { 'stream-writer-type': streamTypeName[this.kind], 'local-member-id': this.localId, 'remote-peer-id': this.peerId };
  }
}

function encoderFor(enc: MsgAppV2Encoder): (m: Message) => Uint8Array[] {
  return (m) => enc.encode(m);
}
