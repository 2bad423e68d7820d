/**
 * The plain-HTTP endpoints etcd serves on its client port beside gRPC: GET /health and
 * GET /version, byte for byte as etcd 3.4 answers them (bodies, status codes, content types,
 * and the CORS headers etcd's client handler adds). Load balancers, Kubernetes probes and
 * Patroni call these. Served to HTTP/1.1 and to plain HTTP/2 (h2c) GETs alike.
 */
import type http from 'node:http';
import type http2 from 'node:http2';
import type { HealthReport } from '../server/index.js';
import { etcdClusterVersion, etcdServerVersion } from '../version.js';

export interface HttpReply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

const cors = {
  'access-control-allow-headers': 'accept, content-type, authorization',
  'access-control-allow-methods': 'POST, GET, OPTIONS, PUT, DELETE',
  'access-control-allow-origin': '*',
} as const;

const textPlain = 'text/plain; charset=utf-8';
const versionBody = JSON.stringify({ etcdserver: etcdServerVersion, etcdcluster: etcdClusterVersion });

/** Go's http.Error: text/plain, nosniff, the message and a newline. */
function goError(status: number, message: string, extra: Record<string, string> = {}): HttpReply {
  return {
    status,
    headers: { ...cors, ...extra, 'content-type': textPlain, 'x-content-type-options': 'nosniff' },
    body: message + '\n',
  };
}

/**
 * The reply to one request. etcd 3.4's /health body carries no reason (3.5 added one), so the
 * reason from `health()` is only for logs. Unhealthy is 503 through http.Error, hence the newline.
 */
export function httpReply(method: string, path: string, health: () => HealthReport): HttpReply {
  const q = path.indexOf('?');
  const p = q < 0 ? path : path.slice(0, q);
  if (p === '/health') {
    if (method !== 'GET') return goError(405, 'Method Not Allowed', { allow: 'GET' });
    const h = health();
    if (!h.health) return goError(503, '{"health":"false"}');
    // Go sniffs the JSON body as text/plain.
    return { status: 200, headers: { ...cors, 'content-type': textPlain }, body: '{"health":"true"}' };
  }
  if (p === '/version') {
    if (method !== 'GET') return goError(405, 'Method Not Allowed', { allow: 'GET' });
    return { status: 200, headers: { ...cors, 'content-type': 'application/json' }, body: versionBody };
  }
  return goError(404, '404 page not found');
}

/**
 * Where /health gets its report: synchronously from the service (API in the main thread), or
 * as a promise (the transport worker asks the main thread).
 */
export type HealthSource = () => HealthReport | Promise<HealthReport>;

/** Computes the reply, asking `health` only for GET /health; calls `done` (maybe later). */
function replyTo(method: string, path: string, health: HealthSource, done: (r: HttpReply) => void): void {
  const q = path.indexOf('?');
  if (method !== 'GET' || (q < 0 ? path : path.slice(0, q)) !== '/health') {
    done(httpReply(method, path, unreachableHealth));
    return;
  }
  const h = health();
  if (!(h instanceof Promise)) { done(httpReply(method, path, () => h)); return; }
  h.then((r) => done(httpReply(method, path, () => r)),
    () => done(httpReply(method, path, () => ({ health: false, reason: 'UNAVAILABLE' }))));
}

function unreachableHealth(): HealthReport { throw new Error('health asked for a request other than GET /health'); }

/** Request listener for the HTTP/1.1 server. */
export function http1Handler(health: HealthSource): http.RequestListener {
  return (req, res) => {
    replyTo(req.method ?? 'GET', req.url ?? '/', health, (r) => {
      if (res.destroyed) return;
      res.writeHead(r.status, { ...r.headers, 'content-length': String(Buffer.byteLength(r.body)) });
      res.end(r.body);
    });
  };
}

/** Handler for non-gRPC HTTP/2 streams (h2c GET /health). */
export function http2Handler(health: HealthSource): (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void {
  return (stream, headers) => {
    stream.on('error', () => { /* client went away */ });
    replyTo(String(headers[':method'] ?? 'GET'), String(headers[':path'] ?? '/'), health, (r) => {
      if (stream.destroyed || stream.closed) return;
      stream.respond({ ':status': r.status, ...r.headers });
      stream.end(r.body);
    });
  };
}
