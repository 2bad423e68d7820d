/**
 * The transport worker thread (CONCORD_API_THREAD=1; started by thread.ts): the client
 * listener (accept, sniffing, h2 authority fix-up), node:http2 and the gRPC server (framing,
 * deadlines, size limits, trailers, cancellation); HTTP/1.1 connections are relayed whole to
 * the main thread, which serves the gateway and the probes there (h1-relay.ts). Handlers never decode:
 * they forward (call id, method index, request bytes) to the main thread in batches
 * (bridge.ts) and write back the framed bytes the main thread answers with.
 */
import type { IncomingHttpHeaders } from 'node:http2';
import type { Socket } from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import { GrpcCode } from '../errors/index.js';
import type { HealthReport } from '../server/index.js';
import { BatchWriter, CallFlag, M2W, W2M, methodIndexMask, readBatch, relayWindowBytes } from './bridge.js';
import { GrpcServer, GrpcStatusError } from './grpc/index.js';
import type { Codec } from './grpc/framing.js';
import { http1Handler, http2Handler, type HttpEndpoints } from './http.js';
import { AccessControl, type AccessOptions } from './access.js';
import { ClientListener } from './listener.js';
import { requiresLeader, tokenOf } from './metadata.js';

export interface WorkerConfig {
  methods: Array<{ path: string; kind: 'unary' | 'serverStream' }>;
  unimplemented: Array<{ path: string; message: string }>;
  maxReceiveMessageBytes: number;
  listen: string[];
  /** --cors and --host-whitelist (etcd's defaults, allowing all, if absent). */
  access?: AccessOptions;
  /** --max-concurrent-streams: HTTP/2 streams per connection (SETTINGS), as in the in-thread mode. */
  maxConcurrentStreams?: number;
  /** Relay HTTP/1.1 connections to the main thread (relayHttp1) rather than serve them here. */
  relayHttp1: boolean;
}

/** Control messages (structured-cloned, rare); batches travel as bare ArrayBuffers. */
export type WorkerToMain =
  | { t: 'ready'; addresses: string[] }
  | { t: 'failed'; message: string; code?: string }
  | { t: 'closed' }
  | { t: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; msg: string; fields?: Record<string, unknown> };
export type MainToWorker = { t: 'close'; graceMs: number };

const port = parentPort!;
const cfg = workerData as WorkerConfig;
const out = new BatchWriter((ab) => port.postMessage(ab, [ab]));
const post = (m: WorkerToMain): void => port.postMessage(m);
/** Log records go to the main thread's logger, so there is one log stream. */
const log = (level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>): void =>
  post({ t: 'log', level, msg, fields });

interface Waiter<T> { resolve: (v: T) => void; reject: (e: Error) => void }
let nextId = 1;
const unary = new Map<number, Waiter<Buffer>>();
const healthWaiters = new Map<number, Waiter<HealthReport>>();

/** A server stream's next item from the main thread: a framed message, or its end (null) or error. */
class StreamSlot {
  private waiter: Waiter<Buffer | null> | undefined;
  private item: Buffer | null | Error | undefined;
  deliver(v: Buffer | null | Error): void {
    const w = this.waiter;
    if (w === undefined) { this.item = v; return; }
    this.waiter = undefined;
    if (v instanceof Error) w.reject(v); else w.resolve(v);
  }
  next(): Promise<Buffer | null> {
    const v = this.item;
    if (v !== undefined) {
      this.item = undefined;
      return v instanceof Error ? Promise.reject(v) : Promise.resolve(v);
    }
    return new Promise((resolve, reject) => { this.waiter = { resolve, reject }; });
  }
}
const streams = new Map<number, StreamSlot>();

const rawCodec: Codec<Buffer> = {
  encode: () => { throw new Error('unreachable'); },
  decode: (b) => b as Buffer,
};
const framedCodec: Codec<Buffer> = {
  encode: () => { throw new Error('unreachable'); },
  decode: () => { throw new Error('unreachable'); },
  framed: true,
};

function statusError(code: number, payload: Buffer): GrpcStatusError {
  return new GrpcStatusError(code as GrpcCode, payload.toString('utf8'));
}

function onRecord(type: number, id: number, arg: number, payload: Buffer): void {
  switch (type) {
    case M2W.reply: {
      const w = unary.get(id);
      if (w !== undefined) { unary.delete(id); w.resolve(payload); }
      return;
    }
    case M2W.status: {
      const w = unary.get(id);
      if (w !== undefined) { unary.delete(id); w.reject(statusError(arg, payload)); return; }
      streams.get(id)?.deliver(arg === 0 ? null : statusError(arg, payload));
      return;
    }
    case M2W.message:
      streams.get(id)?.deliver(payload);
      return;
    case M2W.health: {
      const w = healthWaiters.get(id);
      if (w !== undefined) { healthWaiters.delete(id); w.resolve({ health: arg === 1, reason: payload.toString('utf8') }); }
      return;
    }
    case M2W.h1data: {
      const r = relayed.get(id);
      // The payload is a view of the batch, which is ours; acknowledged once the kernel has it.
      if (r !== undefined) r.socket.write(payload, () => out.push(W2M.h1ack, id, payload.length));
      return;
    }
    case M2W.h1end:
      relayed.get(id)?.socket.end();
      return;
    case M2W.h1destroy:
      relayed.get(id)?.socket.destroy();
      return;
    case M2W.h1ack: {
      const r = relayed.get(id);
      if (r === undefined) return;
      r.unackedBytes -= arg;
      if (r.unackedBytes < relayWindowBytes && r.socket.isPaused()) r.socket.resume();
      return;
    }
    default:
      log('error', 'api worker: unknown record type from the main thread', { type });
      throw new Error(`api worker: unknown record type ${type} from the main thread`);
  }
}

function health(): Promise<HealthReport> {
  return new Promise((resolve, reject) => {
    const id = nextId++;
    healthWaiters.set(id, { resolve, reject });
    out.push(W2M.health, id, 0);
  });
}

/**
 * A call to the main thread with the metadata it acts on: the auth token (if any) in a record
 * first, for the main thread to resolve the caller; `hasleader` as a flag on the call record.
 */
function pushCall(id: number, index: number, body: Buffer, headers: IncomingHttpHeaders): void {
  const token = tokenOf(headers);
  if (token !== undefined) out.push(W2M.token, id, 0, Buffer.from(token, 'utf8'));
  out.push(W2M.call, id, index | (requiresLeader(headers) ? CallFlag.requireLeader : 0), body);
}

/** The HTTP/1.1 connections relayed to the main thread, by id; each its client's bytes not yet acknowledged. */
const relayed = new Map<number, { socket: Socket; unackedBytes: number }>();

/**
 * Relays a connection that is not HTTP/2 to the main thread whole (h1-relay.ts): the JSON
 * gateway, the probes and /metrics need the service, which lives there. Reading stops while
 * `relayWindowBytes` of the client's bytes are unacknowledged.
 */
function relayHttp1(socket: Socket): void {
  const id = nextId++;
  const r = { socket, unackedBytes: 0 };
  relayed.set(id, r);
  out.push(W2M.h1open, id, 0);
  socket.on('data', (chunk: Buffer) => {
    r.unackedBytes += chunk.length;
    out.push(W2M.h1data, id, 0, chunk);
    if (r.unackedBytes >= relayWindowBytes) socket.pause();
  });
  socket.on('end', () => out.push(W2M.h1end, id, 0));
  socket.on('error', () => { /* 'close' follows */ });
  socket.once('close', () => {
    relayed.delete(id);
    out.push(W2M.h1close, id, 0);
  });
}

// Plain-HTTP requests over h2c are served here (HTTP/1.1 is relayed to the main thread): this
// thread sees neither the server's metrics nor its probes, so /health only (its query ignored),
// behind etcd's access controller, as in-thread.
const access = cfg.access ? new AccessControl(cfg.access, { warn: (msg, fields) => log('warn', msg, fields) }) : undefined;
const endpoints: HttpEndpoints = { port: 'client', health, ...(access ? { access } : {}) };
const grpc = new GrpcServer({ maxReceiveMessageBytes: cfg.maxReceiveMessageBytes, httpHandler: http2Handler(endpoints) });
if (cfg.methods.length > methodIndexMask) throw new Error(`api worker: ${cfg.methods.length} methods do not fit a call record`);
cfg.methods.forEach((m, index) => {
  if (m.kind === 'unary') {
    grpc.addUnary(m.path, rawCodec, framedCodec, (body, call) => new Promise<Buffer>((resolve, reject) => {
      const id = nextId++;
      unary.set(id, { resolve, reject });
      pushCall(id, index, body, call.headers);
    }));
  } else {
    grpc.addServerStream(m.path, rawCodec, framedCodec, async (body, call) => {
      const id = nextId++;
      const slot = new StreamSlot();
      streams.set(id, slot);
      let finished = false;
      const onAbort = (): void => { slot.deliver(new GrpcStatusError(GrpcCode.Canceled, 'context canceled')); };
      call.signal.addEventListener('abort', onAbort, { once: true });
      // The main thread answers the call with the first message: a pull is implied.
      pushCall(id, index, body, call.headers);
      try {
        for (;;) {
          let m: Buffer | null;
          try {
            m = await slot.next();
          } catch (e) {
            if (!(e instanceof GrpcStatusError && e.code === GrpcCode.Canceled && call.cancelled)) finished = true;
            throw e;
          }
          if (m === null) { finished = true; return; }
          await call.write(m); // resolves once the stream can take more (HTTP/2 flow control)
          out.push(W2M.pull, id, 0);
        }
      } finally {
        call.signal.removeEventListener('abort', onAbort);
        streams.delete(id);
        if (!finished) out.push(W2M.cancel, id, 0);
      }
    });
  }
});
for (const u of cfg.unimplemented) grpc.addUnimplemented(u.path, u.message);

const listener = new ClientListener({
  onStream: grpc.handleStream, onRequest: http1Handler(endpoints), ...(cfg.relayHttp1 ? { onHttp1Connection: relayHttp1 } : {}),
  ...(cfg.maxConcurrentStreams === undefined ? {} : { maxConcurrentStreams: cfg.maxConcurrentStreams }),
});

port.on('message', (m: ArrayBuffer | MainToWorker) => {
  if (m instanceof ArrayBuffer) { readBatch(m, onRecord); return; }
  if (m.t === 'close') void close(m.graceMs);
});

let closing: Promise<void> | undefined;
function close(graceMs: number): Promise<void> {
  closing ??= (async () => {
    grpc.endStreams(GrpcCode.Unavailable, 'etcdserver: server stopped');
    await listener.close(graceMs);
    for (const r of relayed.values()) r.socket.destroy();
    out.flush();
    post({ t: 'closed' });
  })();
  return closing;
}

try {
  const addresses: string[] = [];
  for (const u of cfg.listen) addresses.push((await listener.listen(new URL(u))).origin);
  post({ t: 'ready', addresses });
} catch (e) {
  await listener.close(0);
  log('debug', 'api worker: listen failed', { error: (e as Error).message });
  post({ t: 'failed', message: (e as Error).message, code: (e as NodeJS.ErrnoException).code });
}
