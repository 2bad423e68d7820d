/**
 * The plain-HTTP endpoints etcd serves beside gRPC, byte for byte as etcd answers them
 * (bodies, status codes, content types, and on the client port the CORS headers etcd's
 * client handler adds): /health, /livez, /readyz (health.ts), /version, /metrics,
 * /debug/vars, and POST /v3/... handed to the JSON gateway. The metrics listener
 * (--listen-metrics-urls) serves /metrics and /health only, without CORS, as etcd does.
 * GET endpoints are served to HTTP/1.1 and plain HTTP/2 (h2c) alike; the gateway to HTTP/1.1.
 */
import type http from 'node:http';
import type http2 from 'node:http2';
import { etcdClusterVersion, etcdServerVersion } from '../version.js';
import { metricsContentType, registry } from '../metrics/index.js';
import { healthReply, probeReply, type HealthHost, type Reply } from './health.js';

export type { HealthHost, ProbeHost } from './health.js';

export interface HttpReply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** What one listener serves. */
export interface HttpEndpoints extends HealthHost {
  /** 'client': every endpoint, with CORS headers; 'metrics': /metrics and /health only. */
  readonly port: 'client' | 'metrics';
  /** /debug/vars (expvar JSON); absent: 404. */
  debugVars?(): string;
  /** POST /v3/* and /v3beta/* (HTTP/1.1); absent (--enable-grpc-gateway=false): 404. */
  gateway?: http.RequestListener;
}

/** The CORS headers etcd's client handler adds to every HTTP reply on the client port. */
export const cors = {
  'access-control-allow-headers': 'accept, content-type, authorization',
  'access-control-allow-methods': 'POST, GET, OPTIONS, PUT, DELETE',
  'access-control-allow-origin': '*',
} as const;

const textPlain = 'text/plain; charset=utf-8';
const versionBody = JSON.stringify({ etcdserver: etcdServerVersion, etcdcluster: etcdClusterVersion });

/** A reply with the port's common headers: CORS on the client port. */
function finish(e: HttpEndpoints, status: number, headers: Record<string, string>, body: string): HttpReply {
  return { status, headers: e.port === 'client' ? { ...cors, ...headers } : headers, body };
}

/** Go's http.Error: text/plain, nosniff, the message and a newline. */
function goError(e: HttpEndpoints, status: number, message: string, extra: Record<string, string> = {}): HttpReply {
  return finish(e, status, { ...extra, 'content-type': textPlain, 'x-content-type-options': 'nosniff' }, message + '\n');
}

function fromReply(e: HttpEndpoints, r: Reply): HttpReply {
  if (r.kind === 'error') return goError(e, r.status, r.body, r.allowGet ? { allow: 'GET' } : {});
  // Go sniffs a JSON body as text/plain; the probes set nosniff themselves.
  const extra: Record<string, string> = r.kind === 'text' ? { 'x-content-type-options': 'nosniff' } : {};
  return finish(e, r.status, { 'content-type': textPlain, ...extra }, r.body);
}

/** The reply to one non-gateway request. */
export async function httpReply(method: string, url: string, e: HttpEndpoints): Promise<HttpReply> {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const query = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
  // etcd's CORS handler answers every preflight on the client port itself, whatever the path.
  if (method === 'OPTIONS' && e.port === 'client') return finish(e, 200, {}, '');
  if (path === '/health') return fromReply(e, await healthReply(method, query, e));
  if (path === '/metrics') return finish(e, 200, { 'content-type': metricsContentType }, registry.render());
  if (e.port === 'metrics') return goError(e, 404, '404 page not found');
  if (path === '/version') {
    if (method !== 'GET') return goError(e, 405, 'Method Not Allowed', { allow: 'GET' });
    return finish(e, 200, { 'content-type': 'application/json' }, versionBody);
  }
  if (path === '/debug/vars' && e.debugVars) {
    return finish(e, 200, { 'content-type': 'application/json; charset=utf-8' }, e.debugVars());
  }
  const probe = await probeReply(method, path, query, e);
  if (probe !== undefined) return fromReply(e, probe);
  return goError(e, 404, '404 page not found');
}

function isGatewayPath(url: string): boolean {
  return url.startsWith('/v3/') || url.startsWith('/v3beta/');
}

/** Request listener for the HTTP/1.1 server. */
export function http1Handler(e: HttpEndpoints): http.RequestListener {
  return (req, res) => {
    const url = req.url ?? '/';
    if (e.gateway !== undefined && e.port === 'client' && req.method !== 'OPTIONS' && isGatewayPath(url)) {
      e.gateway(req, res);
      return;
    }
    void httpReply(req.method ?? 'GET', url, e).then((r) => {
      if (res.destroyed) return;
      res.writeHead(r.status, { ...r.headers, 'content-length': String(Buffer.byteLength(r.body)) });
      res.end(r.body);
    }).catch(() => res.destroy()); // per-request code: a failure ends this connection only
  };
}

/** Handler for non-gRPC HTTP/2 streams (h2c GET /health and the other GET endpoints). */
export function http2Handler(e: HttpEndpoints): (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void {
  return (stream, headers) => {
    stream.on('error', () => { /* client went away */ });
    void httpReply(String(headers[':method'] ?? 'GET'), String(headers[':path'] ?? '/'), e).then((r) => {
      if (stream.destroyed || stream.closed) return;
      stream.respond({ ':status': r.status, ...r.headers });
      stream.end(r.body);
    }).catch(() => stream.destroy());
  };
}
