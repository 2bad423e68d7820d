/**
 * etcd's "stream Message" codec (rafthttp/msg_codec.go), also the head of a snapshot POST:
 * each raft message is an 8-byte big-endian length, then the raftpb.Message bytes.
 */
import { MessageType, Writer, decodeMessage, sizeMessage, writeMessage, type Message } from '../proto/index.js';
import { ByteQueue, writeUint64BE } from './byte-queue.js';
import { TransportDecodeError, exceedSizeLimitMessage } from './errors.js';

/** etcd's readBytesLimit: the largest message a stream decoder accepts. */
export const defaultMaxMessageBytes = 512 * 1024 * 1024;

/** The frame for m in one buffer (length, then body): one allocation, one write. */
export function encodeStreamMessage(m: Message): Uint8Array {
  const size = sizeMessage(m);
  const w = new Writer(8 + size);
  writeUint64BE(w.buf, 0, size);
  w.pos = 8;
  writeMessage(w, m);
  return w.finish();
}

/** A raftpb.Message from bytes a peer sent; typed error instead of the Reader's. */
export function decodePeerMessage(body: Uint8Array): Message {
  try {
    return decodeMessage(body);
  } catch (err) {
    throw new TransportDecodeError('bad-protobuf', `rafthttp: ${(err as Error).message}`);
  }
}

/** etcd's linkHeartbeatMessage: a MsgHeartbeat with from = to = 0, never given to raft. */
export function isLinkHeartbeat(m: Message): boolean {
  return m.type === MessageType.MsgHeartbeat && m.from === 0n && m.to === 0n;
}

/**
 * Incremental decoder of the message stream: push() what the socket gave, then next()
 * until it returns undefined. A length above maxMessageBytes throws before anything of that
 * frame is buffered beyond what arrived.
 */
export class StreamMessageDecoder {
  private readonly queue = new ByteQueue();
  private pendingLength: number | undefined;

  constructor(private readonly maxMessageBytes = defaultMaxMessageBytes) {}

  push(chunk: Uint8Array): void {
    this.queue.push(chunk);
  }

  /** Bytes received and not yet decoded (at most one frame plus one chunk). */
  get bufferedBytes(): number {
    return this.queue.bufferedBytes;
  }

  /** Everything buffered and not decoded, removed from the decoder (a snapshot's backend). */
  takeRest(): Uint8Array {
    return this.queue.take(this.queue.bufferedBytes);
  }

  next(): Message | undefined {
    if (this.pendingLength === undefined) {
      if (!this.queue.has(8)) return undefined;
      const len = this.queue.uint64();
      if (len === undefined || len > this.maxMessageBytes) {
        throw new TransportDecodeError('exceeds-limit', exceedSizeLimitMessage);
      }
      this.pendingLength = len;
    }
    if (!this.queue.has(this.pendingLength)) return undefined;
    const body = this.queue.take(this.pendingLength);
    this.pendingLength = undefined;
    return decodePeerMessage(body);
  }
}
