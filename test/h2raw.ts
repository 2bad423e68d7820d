// Raw HTTP/2 and gRPC-over-HTTP/2 helpers for the front-end hardening and fuzz tests: they
// send what real clients never would (malformed frames, bad header blocks, bad gRPC framing)
// to a real server over a real socket, and report what came back.

import net from 'node:net';
import http2 from 'node:http2';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const hpack = require('hpack.js') as {
  compressor: { create(o: { table: { size: number } }): { write(h: Array<{ name: string; value: string; huffman?: boolean; incremental?: boolean }>): void; read(): Buffer } };
  decompressor: { create(o: { table: { size: number } }): { write(b: Buffer): void; execute(): void; read(): { name: string; value: string } | null } };
};

export const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const FRAME = { data: 0, headers: 1, priority: 2, rst: 3, settings: 4, ping: 6, goaway: 7, window: 8, continuation: 9 } as const;
export const FLAG = { endStream: 0x1, ack: 0x1, endHeaders: 0x4, padded: 0x8, priority: 0x20 } as const;

export function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream >>> 0, 5);
  return Buffer.concat([h, payload]);
}

/**
 * An HPACK header block (fresh encoder state: valid only as the first block of a connection,
 * unless `indexing` is false: then nothing enters the dynamic table and any number of such
 * blocks may follow one another).
 */
export function headerBlock(headers: Array<[string, string]>, huffman = true, indexing = true): Buffer {
  const c = hpack.compressor.create({ table: { size: 4096 } });
  c.write(headers.map(([name, value]) => ({ name, value, huffman, incremental: indexing })));
  return c.read();
}

/**
 * The grpc-status and grpc-message each stream ended with, from the server's frames in the
 * order received (one HPACK decoder for the connection; header blocks in one frame each,
 * as small responses are).
 */
export function grpcStatuses(frames: readonly RawFrame[]): Map<number, { status: string; message: string }> {
  const d = hpack.decompressor.create({ table: { size: 4096 } });
  const out = new Map<number, { status: string; message: string }>();
  for (const f of frames) {
    if (f.type !== FRAME.headers) continue;
    if ((f.flags & (FLAG.padded | FLAG.priority)) !== 0 || (f.flags & FLAG.endHeaders) === 0) throw new Error('grpcStatuses: padded, prioritized or continued header blocks are not read');
    d.write(f.payload);
    d.execute();
    const h = new Map<string, string>();
    for (let e = d.read(); e !== null; e = d.read()) h.set(e.name, e.value);
    const status = h.get('grpc-status');
    if (status !== undefined) out.set(f.stream, { status, message: decodeURIComponent(h.get('grpc-message') ?? '') });
  }
  return out;
}

/** Request headers of a gRPC call. */
export function grpcRequestHeaders(path: string, authority = '127.0.0.1'): Array<[string, string]> {
  return [[':method', 'POST'], [':scheme', 'http'], [':path', path], [':authority', authority],
    ['content-type', 'application/grpc'], ['te', 'trailers']];
}

/** A gRPC length-prefixed message. */
export function grpcMessage(body: Buffer, compressed = false): Buffer {
  const h = Buffer.alloc(5);
  h[0] = compressed ? 1 : 0;
  h.writeUInt32BE(body.length, 1);
  return Buffer.concat([h, body]);
}

export interface RawFrame { type: number; flags: number; stream: number; payload: Buffer }

/** A raw TCP connection that collects the frames the server sends. */
export class RawConn {
  readonly frames: RawFrame[] = [];
  readonly closed: Promise<void>;
  private buf = Buffer.alloc(0);
  private prefaceSeen = false;
  private waiters: Array<() => void> = [];
  isClosed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d) => this.onData(d));
    socket.on('error', () => { /* the server may reset us; 'close' follows */ });
    this.closed = new Promise((resolve) => socket.once('close', () => { this.isClosed = true; this.wake(); resolve(); }));
  }

  static connect(port: number): Promise<RawConn> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => { s.off('error', reject); resolve(new RawConn(s)); });
      s.once('error', reject);
    });
  }

  /** Connects, sends the preface and empty SETTINGS, waits for the server's SETTINGS and ACKs it. */
  static async handshake(port: number): Promise<RawConn> {
    const c = await RawConn.connect(port);
    c.write(Buffer.concat([preface, frame(FRAME.settings, 0, 0)]));
    await c.until((f) => f.type === FRAME.settings && (f.flags & FLAG.ack) === 0, 5000);
    c.write(frame(FRAME.settings, FLAG.ack, 0));
    return c;
  }

  write(b: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(b, () => { /* errors surface as close */ });
  }

  /** Resolves with the first frame matching `pred` (or undefined once the connection closed or `ms` passed). */
  async until(pred: (f: RawFrame) => boolean, ms: number): Promise<RawFrame | undefined> {
    const deadline = Date.now() + ms;
    for (;;) {
      const f = this.frames.find(pred);
      if (f || this.isClosed || Date.now() >= deadline) return f;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }

  /** Waits until the server closed the connection (true) or `ms` passed (false). */
  async waitClosed(ms: number): Promise<boolean> {
    let t: NodeJS.Timeout | undefined;
    const r = await Promise.race([this.closed.then(() => true), new Promise<boolean>((res) => { t = setTimeout(() => res(false), ms); })]);
    clearTimeout(t);
    return r;
  }

  goaway(): { lastStream: number; code: number } | undefined {
    const f = this.frames.find((x) => x.type === FRAME.goaway);
    return f && f.payload.length >= 8 ? { lastStream: f.payload.readUInt32BE(0) & 0x7fffffff, code: f.payload.readUInt32BE(4) } : undefined;
  }

  destroy(): void { this.socket.destroy(); }

  private onData(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d]);
    let pos = 0;
    if (!this.prefaceSeen) this.prefaceSeen = true; // servers send no preface string, only SETTINGS
    while (pos + 9 <= this.buf.length) {
      const len = this.buf.readUIntBE(pos, 3);
      if (pos + 9 + len > this.buf.length) break;
      this.frames.push({ type: this.buf[pos + 3]!, flags: this.buf[pos + 4]!, stream: this.buf.readUInt32BE(pos + 5) & 0x7fffffff,
        payload: this.buf.subarray(pos + 9, pos + 9 + len) });
      pos += 9 + len;
    }
    this.buf = this.buf.subarray(pos);
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

/** What a gRPC call got back: HTTP status, grpc-status and grpc-message, or a transport error. */
export interface CallResult { status?: number; grpcStatus?: string; grpcMessage?: string; body: Buffer; error?: string }

/**
 * One gRPC call over node:http2 with exactly the given DATA bytes (no framing added) and
 * headers, on `session` or a fresh connection.
 */
export function rawCall(target: string | http2.ClientHttp2Session, path: string, data: Buffer,
  extraHeaders: Record<string, string> = {}, timeoutMs = 10_000): Promise<CallResult> {
  const session = typeof target === 'string' ? http2.connect(target) : target;
  const own = typeof target === 'string';
  if (own) session.on('error', () => { /* reported through the stream */ });
  return new Promise((resolve) => {
    const out: CallResult = { body: Buffer.alloc(0) };
    const chunks: Buffer[] = [];
    const req = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...extraHeaders });
    const timer = setTimeout(() => { out.error = 'timeout'; req.close(); }, timeoutMs);
    req.on('response', (h) => {
      out.status = Number(h[':status']);
      if (h['grpc-status'] !== undefined) out.grpcStatus = String(h['grpc-status']);
      if (h['grpc-message'] !== undefined) out.grpcMessage = decodeURIComponent(String(h['grpc-message']));
    });
    req.on('trailers', (h) => {
      if (h['grpc-status'] !== undefined) out.grpcStatus = String(h['grpc-status']);
      if (h['grpc-message'] !== undefined) out.grpcMessage = decodeURIComponent(String(h['grpc-message']));
    });
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('error', (e) => { out.error ??= e.message; });
    req.on('close', () => {
      clearTimeout(timer);
      out.body = Buffer.concat(chunks);
      if (out.grpcStatus === undefined && out.error === undefined && req.rstCode) out.error = `RST_STREAM ${req.rstCode}`;
      if (own) session.close();
      resolve(out);
    });
    req.end(data);
  });
}

/** Resident set size of a process, in bytes (Linux). */
export async function rssBytes(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) * 1024 : 0;
}

/**
 * Writes with backpressure. False when the server stopped reading for stallMs (it may bound
 * a flooding peer by not reading; the kernel buffers are then the bound) or closed.
 */
export async function send(c: RawConn, b: Buffer, stallMs = 2000): Promise<boolean> {
  if (c.isClosed) return false;
  if (c.socket.write(b)) return true;
  let t: NodeJS.Timeout | undefined;
  const drained = await Promise.race([
    new Promise<boolean>((r) => c.socket.once('drain', () => r(true))),
    c.closed.then(() => false),
    new Promise<boolean>((r) => { t = setTimeout(() => r(false), stallMs); }),
  ]);
  clearTimeout(t);
  if (!drained && !c.isClosed) process.stderr.write(`[fuzz] server stopped reading (flood bounded by TCP)\n`);
  return drained;
}

