/**
 * The JSON gateway etcd serves under /v3/ (and /v3beta/) on its client URLs: grpc-gateway v1
 * in front of the v3 gRPC API. Each call goes through the same bytes-in, bytes-out method
 * table as gRPC (services.ts etcdMethods): JSON → request message → bytes → method → bytes →
 * response message → JSON, so the gateway and gRPC cannot disagree. Unary answers are one
 * JSON object; server streams (snapshot) and Watch are chunked lines of {"result":...}
 * (watch.ts). Errors are grpc-gateway's {"error","message","code"} with its HTTP status.
 */
import type http from 'node:http';
import { GrpcCode } from '../../errors/index.js';
import type { Logger } from '../../log/index.js';
import { grpcMethodMetrics, recordHandled, type GrpcMethodMetrics } from '../../metrics/index.js';
import type { EtcdService } from '../../server/index.js';
import { GrpcStatusError, statusOf } from '../grpc/index.js';
import { leaseKeepAlivePath } from '../lease-service.js';
import { callerAsMethodUses, etcdMethods, watchDeniedReason, type EtcdMethod, type MethodTable } from '../services.js';
import { lockElectionMethods, recipeContext, type RecipeMethod } from '../lock-election.js';
import type { AuthInfo } from '../../server/index.js';
import { BadJsonError, messageFromJson, messageToJson } from './json.js';
import { routes, type Route } from './routes.js';
import { serveWatch } from './watch.js';
import { serveKeepAliveJson } from './keepalive.js';
import { calledHeaders, jsonError, plainError, streamError } from './replies.js';
import { StreamSlots } from './stream-slots.js';

export interface GatewayOptions {
  /** Largest request body read, in bytes; past it the call fails as gRPC's receive limit would. */
  maxBodyBytes: number;
  /** Bytes of request bodies buffered at once across all gateway requests; past it new bytes are refused. */
  maxBufferedBodyBytes: number;
  /** --max-concurrent-streams: gateway calls in flight at once; later ones wait (stream-slots.ts). */
  maxConcurrentStreams: number;
  /** Calls waiting for a stream at once; past it a call is refused (ResourceExhausted). */
  maxWaitingCalls: number;
}

/** Bytes of request bodies held right now, shared by every request of one gateway. */
interface BodyBudget { usedBytes: number; readonly maxBytes: number }

type Target =
  | { kind: 'method'; route: Route; method: EtcdMethod; metrics: GrpcMethodMetrics }
  | { kind: 'recipe'; route: Route; method: RecipeMethod; metrics: GrpcMethodMetrics }
  | { kind: 'unimplemented'; route: Route; message: string; metrics: GrpcMethodMetrics }
  | { kind: 'watch'; route: Route }
  | { kind: 'keepalive'; route: Route };

/** A decoded call: what the method needs besides its request. */
interface CallContext {
  /** The caller from the Authorization header (grpc-gateway's `authorization` metadata); throws etcd's invalid auth token. */
  identify(): AuthInfo | undefined;
  /** Aborted when the HTTP client goes. */
  readonly signal: AbortSignal;
}

export function gatewayHandler(service: EtcdService, log?: Logger, opts?: Partial<GatewayOptions>): http.RequestListener {
  const table = etcdMethods(service, log);
  const byPath = new Map(table.methods.map((m) => [m.path, m]));
  const missing = new Map(table.unimplemented.map((u) => [u.path, u.message]));
  // gRPC's receive limit (etcd: max-request-bytes + 512 KiB), applied to the encoded request.
  const maxMessageBytes = service.limits.maxRequestBytes + 512 * 1024;
  // JSON carries bytes as base64 (4/3) plus field names: twice the gRPC limit is ample.
  const maxBodyBytes = opts?.maxBodyBytes ?? 2 * maxMessageBytes;
  const budget: BodyBudget = { usedBytes: 0, maxBytes: opts?.maxBufferedBodyBytes ?? 16 * maxBodyBytes };
  const slots = new StreamSlots(opts?.maxConcurrentStreams ?? 0xffffffff, opts?.maxWaitingCalls ?? 10_000);
  // Lock and Election run over the lessor and the watchable store, as on gRPC (services.ts).
  const recipes = new Map((service.watch && service.lease ? lockElectionMethods(service, service.watch) : []).map((m) => [m.path, m]));
  const targets = new Map<string, Target>();
  for (const [path, route] of routes) {
    const method = byPath.get(route.grpcPath);
    const recipe = recipes.get(route.grpcPath);
    const type = (method ?? recipe)?.kind === 'serverStream' ? 'server_stream' : 'unary';
    if (method) targets.set(path, { kind: 'method', route, method, metrics: grpcMethodMetrics(route.grpcPath, type) });
    else if (recipe) targets.set(path, { kind: 'recipe', route, method: recipe, metrics: grpcMethodMetrics(route.grpcPath, type) });
    else if (route.grpcPath === '/etcdserverpb.Watch/Watch' && service.watch) targets.set(path, { kind: 'watch', route });
    else if (route.grpcPath === leaseKeepAlivePath && service.lease) targets.set(path, { kind: 'keepalive', route });
    else {
      const streaming = route.grpcPath.endsWith('/Watch') || route.grpcPath.endsWith('/LeaseKeepAlive');
      const message = missing.get(route.grpcPath) ?? `unknown method ${route.grpcPath}`;
      targets.set(path, { kind: 'unimplemented', route, message, metrics: grpcMethodMetrics(route.grpcPath, streaming ? 'bidi_stream' : 'unary') });
    }
  }

  /** A bug met while serving one request ends that request's connection, never the process. */
  const failed = (res: http.ServerResponse) => (e: unknown): void => {
    log?.error('gateway request failed; closing its connection', { error: e instanceof Error ? e.message : String(e) });
    res.destroy();
  };

  return (req, res) => {
    res.on('error', () => { /* the client went away */ });
    const url = (req.url ?? '/').split('?')[0]!;
    const path = url.startsWith('/v3beta/') ? '/v3/' + url.slice('/v3beta/'.length) : url;
    const target = targets.get(path);
    if (target === undefined) { plainError(res, 404, 'Not Found'); req.resume(); return; }
    if (req.method !== 'POST') { plainError(res, 405, 'Method Not Allowed'); req.resume(); return; }
    if (!slots.enter(res, () => serve(target, req, res))) {
      jsonError(res, GrpcCode.ResourceExhausted, 'etcdserver: too many requests', false);
      req.resume();
    }
  };

  function serve(target: Target, req: http.IncomingMessage, res: http.ServerResponse): void {
    if (target.kind === 'watch') {
      serveWatch(req, res, {
        host: service.watch!, header: () => service.header(), fragmentAtBytes: service.limits.maxRequestBytes + 512 * 1024, maxBodyBytes,
        deniedReason: (call, key, rangeEnd) => watchDeniedReason(service, table, call, key, rangeEnd),
      }, failed(res));
      return;
    }
    if (target.kind === 'keepalive') {
      serveKeepAliveJson(req, res, { lease: service.lease!, header: () => service.header(), maxBodyBytes }, failed(res));
      return;
    }
    readBody(req, maxBodyBytes, budget).then(
      (body) => call(target, body, res, maxMessageBytes, callContext(table, req, res)),
      (e: unknown) => jsonError(res, GrpcCode.ResourceExhausted, (e as Error).message, false),
    ).catch(failed(res));
  }
}

/** The gateway's side of a call: the Authorization header, and the client's presence. */
function callContext(table: MethodTable, req: http.IncomingMessage, res: http.ServerResponse): CallContext {
  const abort = new AbortController();
  res.once('close', () => abort.abort());
  const token = req.headers.authorization;
  return { identify: () => table.identify(token), signal: abort.signal };
}

async function call(target: Exclude<Target, { kind: 'watch' | 'keepalive' }>, body: string, res: http.ServerResponse,
  maxMessageBytes: number, ctx: CallContext): Promise<void> {
  let request: Buffer;
  try {
    request = Buffer.from(target.route.request.encode(messageFromJson(target.route.request, body)).finish());
  } catch (e) {
    if (!(e instanceof BadJsonError)) throw e;
    jsonError(res, GrpcCode.InvalidArgument, e.message, false);
    return;
  }
  if (request.length > maxMessageBytes) {
    // grpc-go refuses it while reading, before any interceptor (so no grpc_server_* count).
    jsonError(res, GrpcCode.ResourceExhausted, `grpc: received message larger than max (${request.length} vs. ${maxMessageBytes})`, true);
    return;
  }
  target.metrics.started.inc();
  const startedAtMs = performance.now();
  if (target.kind === 'unimplemented') {
    recordHandled(target.metrics, GrpcCode.Unimplemented, startedAtMs);
    jsonError(res, GrpcCode.Unimplemented, target.message, true);
    return;
  }
  const { metrics, route } = target;
  try {
    const finished = target.kind === 'recipe'
      ? await callRecipe(target.method, route, route.request.decode(request), res, ctx)
      : await callMethod(target.method, route, request, res, ctx);
    // A stream the HTTP client left counts as Canceled, as the cancelled gRPC call does in etcd.
    recordHandled(metrics, finished ? GrpcCode.OK : GrpcCode.Canceled, startedAtMs);
  } catch (e) {
    const [code, message] = statusOf(e);
    recordHandled(metrics, code, startedAtMs);
    if (target.method.kind === 'serverStream') streamError(res, code, message);
    else jsonError(res, code, message, true);
  }
}

/** A method of the bytes-in, bytes-out table (services.ts), as gRPC calls it. False: the client left a stream first. */
async function callMethod(method: EtcdMethod, route: Route, request: Buffer, res: http.ServerResponse, ctx: CallContext): Promise<boolean> {
  // The method's TokenUse decides, as on gRPC: Status ignores a bad token, Alarm answers it raw.
  const ai = callerAsMethodUses(method, () => ctx.identify());
  if (method.kind === 'unary') {
    replyOnce(res, messageToJson(route.response, route.response.decode(await method.run(request, ai))));
    return true;
  }
  const messages = method.open(request, ai);
  const gone = new Promise<void>((resolve) => res.once('close', resolve));
  try {
    for (;;) {
      const next = await Promise.race([messages.next(), gone.then(() => undefined)]);
      if (next?.done === true) { endStream(res); return true; }
      if (next === undefined || res.destroyed) return false;
      await writeResult(res, messageToJson(route.response, route.response.decode(next.value)), gone);
    }
  } finally {
    await messages.return(undefined); // an error goes on to call(), which ends the stream with its line
  }
}

/** The end of a stream that finished without error (an empty one is an empty 200). */
function endStream(res: http.ServerResponse): void {
  if (res.writableEnded) return;
  if (!res.headersSent) res.writeHead(200, { ...calledHeaders, 'transfer-encoding': 'chunked' });
  res.end();
}

/** A Lock or Election method (lock-election.ts); the recipe gives up when the client goes. False: the client left a stream first. */
async function callRecipe(method: RecipeMethod, route: Route, request: unknown, res: http.ServerResponse, ctx: CallContext): Promise<boolean> {
  const rctx = recipeContext(ctx.signal, () => ctx.identify());
  if (method.kind === 'unary') {
    replyOnce(res, messageToJson(route.response, await method.run(request, rctx)));
    return true;
  }
  const gone = new Promise<void>((resolve) => res.once('close', resolve));
  await method.run(request, rctx, (m) => writeResult(res, messageToJson(route.response, m), gone));
  endStream(res);
  return !ctx.signal.aborted;
}

function replyOnce(res: http.ServerResponse, reply: string): void {
  if (res.destroyed) return;
  res.writeHead(200, { ...calledHeaders, 'content-length': String(Buffer.byteLength(reply)) });
  res.end(reply);
}

/** One message of a server stream as grpc-gateway forwards it: a {"result":...} line, written as the client reads. */
async function writeResult(res: http.ServerResponse, json: string, gone: Promise<void>): Promise<void> {
  if (res.destroyed) throw new GrpcStatusError(GrpcCode.Canceled, 'context canceled');
  if (!res.headersSent) res.writeHead(200, { ...calledHeaders, 'transfer-encoding': 'chunked' });
  if (!res.write(`{"result":${json}}\n`)) await Promise.race([new Promise((r) => res.once('drain', r)), gone]);
}

/**
 * The request body as text, refused past `maxBytes`, or when all requests together hold
 * `budget.maxBytes` (the bytes are given back once the body is decoded or refused).
 */
function readBody(req: http.IncomingMessage, maxBytes: number, budget: BodyBudget): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    const release = (): void => { budget.usedBytes -= bytes; bytes = 0; };
    const refuse = (message: string): void => {
      release();
      req.removeAllListeners('data');
      req.resume();
      reject(new Error(message));
    };
    req.on('data', (c: Buffer) => {
      bytes += c.length;
      budget.usedBytes += c.length;
      if (bytes > maxBytes) { refuse(`grpc: received message larger than max (${bytes} vs. ${maxBytes})`); return; }
      if (budget.usedBytes > budget.maxBytes) { refuse('etcdserver: too many requests'); return; }
      chunks.push(c);
    });
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      release();
      resolve(text);
    });
    req.on('error', (e) => { release(); reject(e); });
  });
}
