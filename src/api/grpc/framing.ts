/**
 * gRPC message framing: each message is a 1-byte compressed flag, a 4-byte big-endian
 * length, then the bytes. HTTP/2 DATA frames cut messages anywhere, so the reader
 * reassembles; the length prefix is checked against the receive limit before any body
 * byte is buffered, so an oversized message costs no memory.
 */
import type { BinaryWriter } from '@bufbuild/protobuf/wire';
import { GrpcCode } from '../../errors/index.js';
import { GrpcStatusError } from './status.js';

/** The part of a generated ts-proto codec the server needs. */
export interface Codec<T> {
  encode(message: T, writer?: BinaryWriter): BinaryWriter;
  decode(input: Uint8Array): T;
  /**
   * Set on a response codec whose messages are already framed Buffers (prefix included):
   * the server writes them as they are (the transport worker gets framed bytes from the
   * main thread).
   */
  readonly framed?: boolean;
  /** Set on a response codec whose messages are already encoded bytes: only the prefix is added. */
  readonly encoded?: boolean;
  /** Set on a response codec that encodes a message straight to its bytes (no BinaryWriter): used instead of encode. */
  readonly toBytes?: (message: T) => Uint8Array;
}

export interface MessageSink {
  /** Called once per whole message, in order. `body` may share memory with the DATA chunk. */
  onMessage(compressed: boolean, body: Buffer): void;
}

const prefixBytes = 5;
/** The gRPC message prefix: a compressed flag and a 4-byte big-endian length. */
export const framePrefixBytes = prefixBytes;

/** Incremental parser of length-prefixed messages from DATA chunks. */
export class MessageReader {
  /** Prefix bytes taken so far (a prefix may be split across DATA chunks; kept as numbers, no buffer per call). */
  private headerFill = 0;
  private prefixLength = 0;
  /**
   * The parts of a message body received so far, joined once complete. Not preallocated from
   * the length prefix: a client announcing large messages on many streams would otherwise
   * make us allocate what it never sends (memory stays proportional to bytes received, which
   * HTTP/2 flow control bounds).
   */
  private body: Buffer[] | null = null;
  private bodyLength = 0;
  private bodyFill = 0;
  private compressed = false;

  constructor(private readonly sink: MessageSink, private readonly maxMessageBytes: number) {}

  /** True when no message is half received (a stream may only end at such a point). */
  get idle(): boolean { return this.headerFill === 0 && this.body === null; }

  /** Feeds one DATA chunk; throws GrpcStatusError(ResourceExhausted) for an oversized message. */
  push(chunk: Buffer): void {
    let off = 0;
    const n = chunk.length;
    // Fast path: the chunk is exactly one whole message (the usual unary request).
    if (this.headerFill === 0 && this.body === null && isWholeMessage(chunk)) {
      deliverWholeMessage(chunk, this.sink, this.maxMessageBytes);
      return;
    }
    while (off < n) {
      if (this.body === null) {
        for (; this.headerFill < prefixBytes && off < n; this.headerFill++) {
          const b = chunk[off++]!;
          if (this.headerFill === 0) this.compressed = b !== 0;
          else this.prefixLength = this.prefixLength * 256 + b; // big-endian uint32, exact in a double
        }
        if (this.headerFill < prefixBytes) return;
        this.headerFill = 0;
        const len = this.prefixLength;
        this.prefixLength = 0;
        this.checkLength(len);
        if (n - off >= len) {
          // Whole body inside this chunk: no copy.
          this.sink.onMessage(this.compressed, chunk.subarray(off, off + len));
          off += len;
          continue;
        }
        this.body = [];
        this.bodyLength = len;
        this.bodyFill = 0;
      }
      const take = Math.min(this.bodyLength - this.bodyFill, n - off);
      // Kept as a view, as the whole-body path does (node hands each DATA chunk in fresh memory).
      this.body.push(chunk.subarray(off, off + take));
      this.bodyFill += take;
      off += take;
      if (this.bodyFill === this.bodyLength) {
        const body = this.body.length === 1 ? this.body[0]! : Buffer.concat(this.body, this.bodyLength);
        this.body = null;
        this.sink.onMessage(this.compressed, body);
      }
    }
  }

  private checkLength(len: number): void {
    checkMessageLength(len, this.maxMessageBytes);
  }
}

/**
 * Whether `chunk` is exactly one whole message, prefix and body: a unary request's usual DATA.
 * Such a chunk needs no MessageReader (deliverWholeMessage), so a unary call makes none.
 */
export function isWholeMessage(chunk: Buffer): boolean {
  return chunk.length >= prefixBytes && chunk.readUInt32BE(1) + prefixBytes === chunk.length;
}

/** Hands a whole-message chunk (isWholeMessage) to `sink` without a copy, after the size check. */
export function deliverWholeMessage(chunk: Buffer, sink: MessageSink, maxMessageBytes: number): void {
  checkMessageLength(chunk.length - prefixBytes, maxMessageBytes);
  sink.onMessage(chunk[0] !== 0, chunk.subarray(prefixBytes));
}

function checkMessageLength(len: number, maxMessageBytes: number): void {
  if (len > maxMessageBytes) {
    // grpc-go's wording (rpc_util.go recvAndDecompress), which etcd clients see from etcd.
    throw new GrpcStatusError(GrpcCode.ResourceExhausted, `grpc: received message larger than max (${len} vs. ${maxMessageBytes})`);
  }
}

/**
 * Encodes a message with its 5-byte prefix in one buffer, so the stream gets one write.
 * (Reserving the prefix inside the BinaryWriter with raw() and patching it was measured
 * slower: raw() splits the writer's chunks and finish() then joins them; copying a small
 * encoded message into a pooled Buffer costs less.)
 */
export function frameMessage<T>(codec: Codec<T>, message: T): Buffer {
  if (codec.framed === true) return message as unknown as Buffer;
  if (codec.encoded === true) return frameBytes(message as unknown as Uint8Array);
  if (codec.toBytes !== undefined) return frameBytes(codec.toBytes(message));
  return frameBytes(codec.encode(message).finish());
}

/**
 * Frames already-encoded bytes (used by tests and by handlers that pre-encode), into `into`
 * when given (at least bytes.length + 5 long; the frame is a view of it), else a new buffer.
 */
export function frameBytes(bytes: Uint8Array, into?: Buffer): Buffer {
  const buf = into === undefined ? Buffer.allocUnsafe(bytes.length + prefixBytes) : into.subarray(0, bytes.length + prefixBytes);
  if (buf.length !== bytes.length + prefixBytes) throw new RangeError(`frameBytes: ${bytes.length + prefixBytes} bytes do not fit a ${into?.length}-byte buffer`);
  buf[0] = 0;
  buf.writeUInt32BE(bytes.length, 1);
  buf.set(bytes, prefixBytes);
  return buf;
}
