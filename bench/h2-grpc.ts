// A lean gRPC client for the streaming benchmark generator (bench/watchgen.ts): raw
// node:http2 sessions, hand-encoded protobuf fields, and a frame reader that hands out
// whole gRPC messages without decoding them, so the generator's cost stays far below the
// server's and the server is what is measured.
import * as http2 from 'node:http2';

/** The connection-level receive window the generator offers (the server may send this much ahead). */
const sessionWindowBytes = 16 * 1024 * 1024;

/** One HTTP/2 connection; `bigWindow` false keeps HTTP/2's 64 KiB defaults (a client that reads slowly). */
export function connect(endpoint: string, bigWindow = true): http2.ClientHttp2Session {
  const session = http2.connect(endpoint, bigWindow ? { settings: { initialWindowSize: 4 * 1024 * 1024 } } : {});
  session.on('error', () => { /* surfaced per stream */ });
  if (bigWindow) session.once('connect', () => session.setLocalWindowSize(sessionWindowBytes));
  return session;
}

function pushVarint(n: number | bigint, out: number[]): void {
  let v = BigInt(n);
  while (v > 0x7fn) { out.push(Number(v & 0x7fn) | 0x80); v >>= 7n; }
  out.push(Number(v));
}

/** A length-delimited protobuf field. */
export function pbBytes(field: number, value: Buffer): Buffer {
  const head: number[] = [];
  pushVarint((field << 3) | 2, head);
  pushVarint(value.length, head);
  return Buffer.concat([Buffer.from(head), value]);
}

/** A varint protobuf field. */
export function pbVarint(field: number, value: number | bigint): Buffer {
  const out: number[] = [];
  pushVarint(field << 3, out);
  pushVarint(value, out);
  return Buffer.from(out);
}

/** A gRPC message: uncompressed flag, 4-byte big-endian length, the message. */
export function grpcFrame(message: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  message.copy(out, 5);
  return out;
}

const requestHeaders = (path: string): http2.OutgoingHttpHeaders => ({
  ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers',
});

/** One unary call with an already framed body; null on grpc-status 0, else the error text. */
export function unary(session: http2.ClientHttp2Session, path: string, framedBody: Buffer): Promise<string | null> {
  return new Promise((resolve) => {
    let status: string | undefined;
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request(requestHeaders(path));
    } catch (e) {
      resolve(String(e));
      return;
    }
    const onMeta = (h: http2.IncomingHttpHeaders): void => { status ??= h['grpc-status'] as string | undefined; };
    stream.on('response', onMeta);
    stream.on('trailers', onMeta);
    stream.on('error', () => { /* reported on close */ });
    stream.on('close', () => resolve(status === '0' ? null : `grpc-status ${status ?? `missing (rst ${stream.rstCode})`}`));
    stream.resume();
    stream.end(framedBody);
  });
}

/** A bidirectional stream; every whole response message goes to `onMessage` (a view into the chunk when it fits in one). */
export function openBidi(session: http2.ClientHttp2Session, path: string, onMessage: (message: Buffer) => void): http2.ClientHttp2Stream {
  const stream = session.request(requestHeaders(path));
  stream.on('error', () => { /* the generator notices by missing answers */ });
  const reader = new FrameReader(onMessage);
  stream.on('data', (chunk: Buffer) => reader.push(chunk));
  return stream;
}

/**
 * Splits a byte stream into gRPC messages. A message within one chunk is handed out as a view
 * of it; only a message that spans chunks is copied, once, when its last piece arrives (the
 * chunk it ends in is not copied along with it).
 */
class FrameReader {
  /** Pieces of a message that spans chunks (copies), and their bytes. */
  private parts: Buffer[] = [];
  private partBytes = 0;
  /** That message's size with its 5-byte prefix; 0 while the prefix itself is incomplete. */
  private need = 0;

  constructor(private readonly onMessage: (message: Buffer) => void) {}

  push(chunk: Buffer): void {
    let at = this.partBytes > 0 ? this.finishSpanning(chunk) : 0;
    if (at < 0) return; // still incomplete
    while (chunk.length - at >= 5) {
      const len = chunk.readUInt32BE(at + 1);
      if (chunk.length - at - 5 < len) break;
      this.onMessage(chunk.subarray(at + 5, at + 5 + len));
      at += 5 + len;
    }
    if (at < chunk.length) this.keep(chunk.subarray(at));
  }

  /** Adds the start of `chunk` to the spanning message; returns where the rest begins, or -1 if the chunk ended first. */
  private finishSpanning(chunk: Buffer): number {
    let at = 0;
    if (this.need === 0) {
      at = Math.min(5 - this.partBytes, chunk.length);
      this.keep(chunk.subarray(0, at));
      if (this.need === 0) return -1;
    }
    const take = Math.min(this.need - this.partBytes, chunk.length - at);
    this.keep(chunk.subarray(at, at + take));
    at += take;
    if (this.partBytes < this.need) return -1;
    const message = Buffer.concat(this.parts, this.need);
    this.parts = [];
    this.partBytes = 0;
    this.need = 0;
    this.onMessage(message.subarray(5));
    return at;
  }

  private keep(piece: Buffer): void {
    this.parts.push(Buffer.from(piece));
    this.partBytes += piece.length;
    if (this.need === 0 && this.partBytes >= 5) this.need = 5 + Buffer.concat(this.parts).readUInt32BE(1);
  }
}
