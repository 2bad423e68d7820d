/**
 * The API with its transport on a worker thread (CONCORD_API_THREAD=1): the worker
 * (worker.ts) owns sockets, HTTP/2 and gRPC framing; this side, on the main thread with
 * raft, the WAL and MVCC, decodes, validates, calls the EtcdService and encodes, through
 * the same method table as the in-thread mode (services.ts). Both directions are batched
 * (bridge.ts): one postMessage of one transferred ArrayBuffer per event-loop turn.
 */
import http from 'node:http';
import { Worker } from 'node:worker_threads';
import { GrpcCode } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import type { EtcdService } from '../server/index.js';
import { BatchWriter, CallFlag, M2W, W2M, methodIndexMask, readBatch } from './bridge.js';
import { H1Relay } from './h1-relay.js';
import { statusOf } from './grpc/index.js';
import { callerAsMethodUses, etcdMethods, type EtcdMethod } from './services.js';
import type { AuthInfo } from '../server/index.js';
import type { MainToWorker, WorkerConfig, WorkerToMain } from './worker.js';
import type { AccessOptions } from './access.js';

export interface ThreadApiOptions {
  service: EtcdService;
  listen: URL[];
  log?: Logger;
  closeGraceMs: number;
  maxReceiveMessageBytes: number;
  /** --cors and --host-whitelist for plain HTTP on the client URLs (the worker applies them). */
  access?: AccessOptions;
  /** --max-concurrent-streams: per HTTP/2 connection. */
  maxConcurrentStreams?: number;
  /**
   * Serves the HTTP/1.1 connections the worker relays (the gateway, the probes, /metrics...),
   * as the in-thread mode's listener would. Absent: the worker serves them itself (/health,
   * /version and its own /metrics only).
   */
  http1?: http.RequestListener;
  /** Called if the worker dies while the API is open. Default: log and exit the process with 1. */
  onWorkerFailure?: (err: Error) => void;
}

export interface ThreadApi {
  readonly addresses: string[];
  close(): Promise<void>;
  /** The transport worker (tests). */
  readonly worker: Worker;
}

interface OpenStream {
  readonly it: AsyncGenerator<Uint8Array, void, undefined>;
  busy: boolean;
  cancelled: boolean;
}

export async function startThreadApi(opts: ThreadApiOptions): Promise<ThreadApi> {
  const { service, log } = opts;
  const table = etcdMethods(service, log);
  const methods: EtcdMethod[] = table.methods;
  const config: WorkerConfig = {
    methods: methods.map((m) => ({ path: m.path, kind: m.kind })),
    unimplemented: table.unimplemented,
    maxReceiveMessageBytes: opts.maxReceiveMessageBytes,
    listen: opts.listen.map((u) => u.toString()),
    ...(opts.access ? { access: opts.access } : {}),
    ...(opts.maxConcurrentStreams === undefined ? {} : { maxConcurrentStreams: opts.maxConcurrentStreams }),
    relayHttp1: opts.http1 !== undefined,
  };
  const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: config, name: 'concord-api' });
  const out = new BatchWriter((ab) => worker.postMessage(ab, [ab]));
  const streams = new Map<number, OpenStream>();
  const empty = new Uint8Array(0);
  // Same settings as the in-thread listener's http.Server (listener.ts).
  const h1 = opts.http1 ? new H1Relay(http.createServer({ keepAliveTimeout: 5000 }, opts.http1), out) : undefined;
  const relay = (): H1Relay => {
    if (h1 === undefined) throw new Error('api: a relayed HTTP/1.1 record, but no relay was asked for');
    return h1;
  };

  const sendError = (id: number, e: unknown): void => {
    const [code, msg] = statusOf(e);
    out.push(M2W.status, id, code, msg === '' ? empty : Buffer.from(msg, 'utf8'));
  };

  const pump = (id: number, s: OpenStream): void => {
    s.busy = true;
    s.it.next().then((r) => {
      s.busy = false;
      if (s.cancelled) { streams.delete(id); void s.it.return(undefined).catch(() => {}); return; }
      if (r.done) { streams.delete(id); out.push(M2W.status, id, GrpcCode.OK); return; }
      out.push(M2W.message, id, 0, r.value, true);
    }, (e) => {
      streams.delete(id);
      sendError(id, e);
    });
  };

  /** The token record just read, for the call record that follows it (W2M.token). */
  let pendingToken: { id: number; token: string } | undefined;
  /** The token of call `id`, if the worker sent one just before it. */
  const takeToken = (id: number): string | undefined => {
    const pending = pendingToken;
    pendingToken = undefined;
    if (pending !== undefined && pending.id !== id) throw new Error(`api: token record for call ${pending.id} before call ${id}`);
    return pending?.token;
  };

  const onRecord = (type: number, id: number, arg: number, payload: Buffer): void => {
    switch (type) {
      case W2M.token:
        if (pendingToken !== undefined) throw new Error(`api: two token records (calls ${pendingToken.id}, ${id}) without a call`);
        pendingToken = { id, token: payload.toString('utf8') };
        return;
      case W2M.call: {
        const m = methods[arg & methodIndexMask];
        const token = takeToken(id);
        if (m === undefined) { out.push(M2W.status, id, GrpcCode.Internal, Buffer.from('concord: unknown method index')); return; }
        let ai: AuthInfo | undefined;
        try {
          // As in the in-thread mode (services.ts registerMethods): etcd's interceptors first,
          // then the caller as the method's TokenUse decides.
          table.admit(m, (arg & CallFlag.requireLeader) !== 0, m.kind === 'unary' ? payload : undefined);
          ai = callerAsMethodUses(m, () => table.identify(token));
        } catch (e) {
          sendError(id, e);
          return;
        }
        if (m.kind === 'unary') {
          const res = m.run(payload, ai);
          if (res instanceof Promise) res.then((r) => out.push(M2W.reply, id, 0, r, true), (e) => sendError(id, e));
          else out.push(M2W.reply, id, 0, res, true);
        } else {
          const s: OpenStream = { it: m.open(payload, ai), busy: false, cancelled: false };
          streams.set(id, s);
          pump(id, s);
        }
        return;
      }
      case W2M.pull: {
        const s = streams.get(id);
        if (s !== undefined && !s.busy) pump(id, s);
        return;
      }
      case W2M.cancel: {
        const s = streams.get(id);
        if (s === undefined) return;
        s.cancelled = true;
        if (!s.busy) { streams.delete(id); void s.it.return(undefined).catch(() => {}); }
        return;
      }
      case W2M.health: {
        let h: { health: boolean; reason: string };
        try { h = service.health(); } catch (e) { h = { health: false, reason: (e as Error).message }; }
        out.push(M2W.health, id, h.health ? 1 : 0, Buffer.from(h.reason, 'utf8'));
        return;
      }
      case W2M.h1open: relay().open(id); return;
      case W2M.h1data: relay().data(id, payload); return;
      case W2M.h1end: relay().end(id); return;
      case W2M.h1close: relay().closed(id); return;
      case W2M.h1ack: relay().ack(id, arg); return;
      default:
        throw new Error(`api: unknown record type ${type} from the transport worker`);
    }
  };

  let state: 'starting' | 'open' | 'closing' | 'closed' = 'starting';
  let onStarted: { resolve: (a: string[]) => void; reject: (e: Error) => void } | undefined;
  let onClosed: (() => void) | undefined;
  const started = new Promise<string[]>((resolve, reject) => { onStarted = { resolve, reject }; });

  const failed = (err: Error): void => {
    if (state === 'starting') { onStarted?.reject(err); return; }
    if (state !== 'open') return;
    if (opts.onWorkerFailure) { opts.onWorkerFailure(err); return; }
    if (log) log.fatal('the client API worker thread died; exiting', { error: err });
    console.error(`concord: the client API worker thread died: ${err.stack ?? err.message}`);
    process.exit(1);
  };

  worker.on('message', (m: ArrayBuffer | WorkerToMain) => {
    if (m instanceof ArrayBuffer) { readBatch(m, onRecord); return; }
    switch (m.t) {
      case 'ready': state = 'open'; onStarted?.resolve(m.addresses); return;
      case 'failed': {
        const e = Object.assign(new Error(m.message), { code: m.code });
        onStarted?.reject(e);
        return;
      }
      case 'closed': onClosed?.(); return;
      case 'log': log?.log(m.level, m.msg, m.fields); return;
    }
  });
  worker.on('error', (err) => {
    log?.error('client API worker thread error', { error: err });
    failed(err);
  });
  worker.on('exit', (code) => {
    out.closed = true;
    onClosed?.();
    failed(new Error(`the client API worker thread exited with code ${code}`));
  });

  let addresses: string[];
  try {
    addresses = await started;
  } catch (e) {
    state = 'closed';
    await worker.terminate();
    throw e;
  }

  let closing: Promise<void> | undefined;
  return {
    addresses,
    worker,
    close() {
      closing ??= (async () => {
        state = 'closing';
        const closed = new Promise<void>((r) => { onClosed = r; });
        const msg: MainToWorker = { t: 'close', graceMs: opts.closeGraceMs };
        worker.postMessage(msg);
        await closed;
        state = 'closed';
        h1?.destroyAll();
        out.closed = true;
        for (const [, s] of streams) void s.it.return(undefined).catch(() => {});
        streams.clear();
        await worker.terminate();
      })();
      return closing;
    },
  };
}
