/**
 * The serving side of etcd's peer API under /raft (rafthttp/http.go and the probing
 * handler): statuses, bodies and the order of checks are etcd's. Everything in a request is
 * hostile: bodies are read with a byte bound, decoded with typed errors, and a bad request
 * ends that request only.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { MessageType, sizeMessage, type Message } from '../proto/index.js';
import type { Logger } from '../log/index.js';
import { etcdServerVersion } from '../version.js';
import { checkCompatibility, getHeader, idString, parseId } from './headers.js';
import { StreamMessageDecoder, decodePeerMessage } from './message-codec.js';
import { TransportDecodeError } from './errors.js';
import type { StreamKind, TransportHandlers } from './types.js';

/** What the handler needs of the transport. */
export interface PeerHandlerContext {
  localId: bigint;
  clusterId: bigint;
  handlers: TransportHandlers;
  logger: Logger;
  maxMessageBytes: number;
  maxSnapshotBytes: number;
  /**
   * Finds the peer `from`; when known, calls accept() (the last checks, which answer the
   * request) and attaches res to that peer's writer if it returns true. False when unknown.
   */
  attachStream(from: bigint, kind: StreamKind, res: ServerResponse, accept: () => boolean): boolean;
}

/**
 * Go's http.Error: text/plain body with a trailing newline. A request body we stopped
 * reading (refused, too large) is not drained: the connection closes after the answer.
 */
export function httpError(res: ServerResponse, status: number, msg: string): void {
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'X-Content-Type-Options': 'nosniff',
    ...(res.req.complete ? {} : { Connection: 'close' }),
  });
  res.end(msg + '\n');
}

function methodNotAllowed(res: ServerResponse, allow: string): void {
  res.setHeader('Allow', allow);
  httpError(res, 405, 'Method Not Allowed');
}

/**
 * Serves req when its path is one of etcd's /raft endpoints; returns false otherwise (the
 * caller serves /members, /version and the rest).
 */
export function handlePeerRequest(ctx: PeerHandlerContext, req: IncomingMessage, res: ServerResponse): boolean {
  const path = new URL(req.url ?? '/', 'http://peer').pathname;
  if (path === '/raft') void servePipeline(ctx, req, res);
  else if (path === '/raft/snapshot') void serveSnapshot(ctx, req, res);
  else if (path === '/raft/probing') serveProbing(res);
  else if (path.startsWith('/raft/stream/')) serveStream(ctx, req, res, path);
  else return false;
  return true;
}

/**
 * What every /raft request passes first, in etcd's order: the method (405), our cluster id
 * on the answer (and our version on streams'), the compatibility checks (412). False when
 * it answered.
 */
function admit(ctx: PeerHandlerContext, req: IncomingMessage, res: ServerResponse, method: 'GET' | 'POST'): boolean {
  if (req.method !== method) {
    methodNotAllowed(res, method);
    return false;
  }
  if (method === 'GET') res.setHeader('X-Server-Version', etcdServerVersion);
  res.setHeader('X-Etcd-Cluster-ID', idString(ctx.clusterId));
  const c = checkCompatibility(req.headers, ctx.clusterId);
  if (c.ok) return true;
  ctx.logger.warn(c.body === 'cluster ID mismatch' ? 'request cluster ID mismatch' : 'failed to check version compatibility', {
    'local-member-id': idString(ctx.localId),
    'local-member-cluster-id': idString(ctx.clusterId),
    'remote-peer-server-name': getHeader(req.headers, 'X-Server-From'),
    'remote-peer-cluster-id': getHeader(req.headers, 'X-Etcd-Cluster-ID'),
    error: c.reason,
  });
  httpError(res, 412, c.body);
  return false;
}

/** The whole body, or 'too-large' once it passes maxBytes (the rest is not read). */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<Uint8Array | 'too-large' | 'failed'> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let total = 0;
    req.on('data', (c: Buffer) => {
      total += c.length;
      if (total > maxBytes) {
        req.removeAllListeners('data');
        req.pause();
        resolve('too-large');
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks, total)));
    req.on('error', () => resolve('failed'));
  });
}

async function servePipeline(ctx: PeerHandlerContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (!admit(ctx, req, res, 'POST')) return;
  const body = await readBody(req, ctx.maxMessageBytes);
  if (typeof body === 'string') {
    ctx.logger.warn('failed to read Raft message', { 'local-member-id': idString(ctx.localId), error: body });
    return httpError(res, 400, 'error reading raft message');
  }
  let m: Message;
  try {
    m = decodePeerMessage(body);
  } catch (err) {
    if (!(err instanceof TransportDecodeError)) throw err;
    ctx.logger.warn('failed to unmarshal Raft message', { 'local-member-id': idString(ctx.localId), error: err.message });
    return httpError(res, 400, 'error unmarshalling raft message');
  }
  if (refuseRemoved(ctx, m, res)) return;
  ctx.handlers.onMessage(m);
  res.writeHead(204);
  res.end();
}

/**
 * EtcdServer.Process's first check: a message from a removed member gets 403 and etcd's
 * HTTPError JSON. True when it answered.
 */
function refuseRemoved(ctx: PeerHandlerContext, m: Message, res: ServerResponse): boolean {
  if (!ctx.handlers.isIdRemoved(m.from)) return false;
  ctx.logger.warn('rejected Raft message from removed member', { 'local-member-id': idString(ctx.localId), 'removed-member-id': idString(m.from) });
  res.writeHead(403, { 'Content-Type': 'application/json', ...(res.req.complete ? {} : { Connection: 'close' }) });
  res.end(JSON.stringify({ message: 'cannot process message from removed member' }));
  return true;
}

async function serveSnapshot(ctx: PeerHandlerContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (!admit(ctx, req, res, 'POST')) return;
  const head = await readSnapshotHead(req, ctx.maxMessageBytes);
  if (typeof head === 'string') {
    ctx.logger.warn('failed to decode Raft message', { 'local-member-id': idString(ctx.localId), error: head });
    return httpError(res, 400, `failed to decode raft message (${head})`);
  }
  const { m, rest } = head;
  const from = idString(m.from);
  if (m.type !== MessageType.MsgSnap) {
    ctx.logger.warn('unexpected Raft message type', { 'local-member-id': idString(ctx.localId), 'remote-snapshot-sender-id': from, 'message-type': MessageType[m.type] });
    return httpError(res, 400, 'wrong raft message type');
  }
  // etcd saves the backend first and refuses after; refusing first spares the upload.
  if (refuseRemoved(ctx, m, res)) return;
  const index = m.snapshot?.metadata.index ?? 0;
  ctx.logger.info('receiving database snapshot', {
    'local-member-id': idString(ctx.localId), 'remote-snapshot-sender-id': from,
    'incoming-snapshot-index': index, 'incoming-snapshot-message-size-bytes': sizeMessage(m),
  });
  const save = ctx.handlers.saveSnapshot;
  try {
    if (save === undefined) throw new Error('snapshots are not accepted');
    await save(m, boundedBody(req, rest, ctx.maxSnapshotBytes));
  } catch (err) {
    ctx.logger.warn('failed to save incoming database snapshot', {
      'local-member-id': idString(ctx.localId), 'remote-snapshot-sender-id': from, 'incoming-snapshot-index': index, error: (err as Error).message,
    });
    return httpError(res, 500, `failed to save KV snapshot (${(err as Error).message})`);
  }
  ctx.logger.info('received and saved database snapshot', { 'local-member-id': idString(ctx.localId), 'remote-snapshot-sender-id': from, 'incoming-snapshot-index': index });
  ctx.handlers.onMessage(m);
  res.writeHead(204);
  res.end();
}

/** The snapshot POST's leading framed MsgSnap, and the bytes that arrived after it. */
function readSnapshotHead(req: IncomingMessage, maxBytes: number): Promise<{ m: Message; rest: Uint8Array } | string> {
  return new Promise((resolve) => {
    const dec = new StreamMessageDecoder(maxBytes);
    const onData = (c: Buffer) => {
      try {
        dec.push(c);
        const m = dec.next();
        if (m === undefined) return;
        req.off('data', onData);
        req.pause();
        resolve({ m, rest: dec.takeRest() });
      } catch (err) {
        req.off('data', onData);
        req.pause();
        resolve((err as Error).message);
      }
    };
    req.on('data', onData);
    req.on('end', () => resolve('unexpected EOF'));
    req.on('error', (e) => resolve(e.message));
  });
}

/** The backend bytes of a snapshot POST, failing once they pass maxBytes. */
async function* boundedBody(req: IncomingMessage, first: Uint8Array, maxBytes: number): AsyncIterable<Uint8Array> {
  let total = first.length;
  if (total > maxBytes) throw new Error(`snapshot larger than ${maxBytes} bytes`);
  if (first.length > 0) yield first;
  for await (const c of req as AsyncIterable<Buffer>) {
    total += c.length;
    if (total > maxBytes) throw new Error(`snapshot larger than ${maxBytes} bytes`);
    yield c;
  }
}

/** xiang90/probing's handler: {"OK":true,"Now":<time>} as Go's json.Encoder writes it. */
function serveProbing(res: ServerResponse): void {
  res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
  res.end(JSON.stringify({ OK: true, Now: new Date().toISOString() }) + '\n');
}

const streamKinds: Record<string, StreamKind> = {
  '/raft/stream/message': 'message',
  '/raft/stream/msgapp': 'msgappv2',
};

function serveStream(ctx: PeerHandlerContext, req: IncomingMessage, res: ServerResponse, path: string): void {
  if (!admit(ctx, req, res, 'GET')) return;
  const slash = path.lastIndexOf('/');
  const kind = streamKinds[path.slice(0, slash)];
  if (kind === undefined) return httpError(res, 404, 'invalid path');
  const fromStr = path.slice(slash + 1);
  const from = parseId(fromStr);
  if (from === undefined) {
    ctx.logger.warn('failed to parse path into ID', { 'local-member-id': idString(ctx.localId), path: fromStr });
    return httpError(res, 404, 'invalid from');
  }
  const fields = { 'local-member-id': idString(ctx.localId), 'remote-peer-id-from': idString(from) };
  if (ctx.handlers.isIdRemoved(from)) {
    ctx.logger.warn('rejected stream from remote peer because it was removed', fields);
    return httpError(res, 410, 'removed member');
  }
  const gto = getHeader(req.headers, 'X-Raft-To');
  const accept = () => {
    if (gto !== idString(ctx.localId)) {
      ctx.logger.warn('ignored streaming request; ID mismatch', { ...fields, 'remote-peer-id-header': gto, 'cluster-id': idString(ctx.clusterId) });
      httpError(res, 412, 'to field mismatch');
      return false;
    }
    res.writeHead(200);
    res.flushHeaders();
    return true;
  };
  if (!ctx.attachStream(from, kind, res, accept)) {
    ctx.logger.warn('failed to find remote peer in cluster', { ...fields, 'cluster-id': idString(ctx.clusterId) });
    httpError(res, 404, 'error sender not found');
  }
}
