/**
 * The plain-HTTP endpoints etcd serves beside gRPC, byte for byte as etcd answers them
 * (bodies, status codes, content types, and on the client port the CORS headers etcd's
 * client handler adds): /health, /livez, /readyz (health.ts), /version, /metrics,
 * /debug/vars, and POST /v3/... handed to the JSON gateway. On the client port every request
 * first passes etcd's access controller (access.ts: --host-whitelist, --cors), which also
 * answers OPTIONS. The metrics listener (--listen-metrics-urls) serves /metrics and /health
 * only, without either, as etcd does.
 * GET endpoints are served to HTTP/1.1 and plain HTTP/2 (h2c) alike; the gateway to HTTP/1.1.
 */
import type http from 'node:http';
import { etcdClusterVersion, etcdServerVersion } from '../version.js';
import { loopTrace, metricsContentType, registry } from '../metrics/index.js';
import { healthReply, probeReply, type HealthHost, type Reply } from './health.js';
import { AccessControl } from './access.js';
import type { StreamHandler } from './grpc/transport.js';

export type { HealthHost, ProbeHost } from './health.js';

export interface HttpReply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** What one listener serves. */
export interface HttpEndpoints extends HealthHost {
  /** 'client': every endpoint, behind the access controller; 'metrics': /metrics and /health only. */
  readonly port: 'client' | 'metrics';
  /** The client port's --host-whitelist and --cors (etcd's defaults, allowing all, if absent). */
  access?: AccessControl;
  /** /debug/vars (expvar JSON); absent: 404. */
  debugVars?(): string;
  /** POST /v3/* and /v3beta/* (HTTP/1.1); absent (--enable-grpc-gateway=false): 404. */
  gateway?: http.RequestListener;
}

const textPlain = 'text/plain; charset=utf-8';
const versionBody = JSON.stringify({ etcdserver: etcdServerVersion, etcdcluster: etcdClusterVersion });

function finish(status: number, headers: Record<string, string>, body: string): HttpReply {
  return { status, headers, body };
}

/** Go's http.Error: text/plain, nosniff, the message and a newline. */
function goError(status: number, message: string, extra: Record<string, string> = {}): HttpReply {
  return finish(status, { ...extra, 'content-type': textPlain, 'x-content-type-options': 'nosniff' }, message + '\n');
}

function fromReply(r: Reply): HttpReply {
  if (r.kind === 'error') return goError(r.status, r.body, r.allowGet ? { allow: 'GET' } : {});
  // Go sniffs a JSON body as text/plain; the probes set nosniff themselves.
  const extra: Record<string, string> = r.kind === 'text' ? { 'x-content-type-options': 'nosniff' } : {};
  return finish(r.status, { 'content-type': textPlain, ...extra }, r.body);
}

/** The reply to one non-gateway request. */
export async function httpReply(method: string, url: string, e: HttpEndpoints): Promise<HttpReply> {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const query = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
  if (path === '/health') return fromReply(await healthReply(method, query, e));
  if (path === '/metrics') return finish(200, { 'content-type': metricsContentType }, await renderMetrics());
  if (e.port === 'metrics') return goError(404, '404 page not found');
  if (path === '/version') {
    if (method !== 'GET') return goError(405, 'Method Not Allowed', { allow: 'GET' });
    return finish(200, { 'content-type': 'application/json' }, versionBody);
  }
  if (path === '/debug/vars' && e.debugVars) {
    return finish(200, { 'content-type': 'application/json; charset=utf-8' }, e.debugVars());
  }
  const probe = await probeReply(method, path, query, e);
  if (probe !== undefined) return fromReply(probe);
  return goError(404, '404 page not found');
}

/** The registry's text, rendered a slice per loop turn (the loop trace gets a span per slice, its families as items). */
function renderMetrics(): Promise<string> {
  return registry.renderInSlices(metricsSliceMs, loopTrace ? (t0, families) => loopTrace?.span('http.metrics', t0, families) : undefined);
}

/** At most about this much of the event loop (ms) per turn of a /metrics render. */
const metricsSliceMs = 1;

function isGatewayPath(url: string): boolean {
  return url.startsWith('/v3/') || url.startsWith('/v3beta/');
}

/**
 * etcd's access controller in front of the client port's HTTP mux: a cleartext request with
 * a Host not whitelisted is refused (421); the CORS headers for its Origin are added to
 * whatever follows; OPTIONS is answered here, whatever the path. Undefined: serve it.
 */
function admit(e: HttpEndpoints, method: string, host: string | undefined, origin: string | undefined, encrypted: boolean):
  { headers: Readonly<Record<string, string>>; reply?: HttpReply } {
  if (e.port !== 'client') return { headers: {} };
  const access = e.access ?? AccessControl.open;
  const refusal = encrypted ? undefined : access.hostRefusal(host);
  if (refusal) return { headers: {}, reply: goError(refusal.status, refusal.message) };
  const headers = access.corsHeaders(origin);
  return method === 'OPTIONS' ? { headers, reply: finish(200, {}, '') } : { headers };
}

/** Request listener for the HTTP/1.1 server. */
export function http1Handler(e: HttpEndpoints): http.RequestListener {
  const send = (res: http.ServerResponse, r: HttpReply): void => {
    if (res.destroyed) return;
    res.writeHead(r.status, { ...r.headers, 'content-length': String(Buffer.byteLength(r.body)) });
    res.end(r.body);
  };
  return (req, res) => {
    const url = req.url ?? '/';
    const method = req.method ?? 'GET';
    const gate = admit(e, method, req.headers.host, req.headers.origin, (req.socket as { encrypted?: boolean }).encrypted === true);
    // Set on the response, as etcd adds them to the ResponseWriter: every reply below carries them.
    for (const name in gate.headers) res.setHeader(name, gate.headers[name]!);
    if (gate.reply) { send(res, gate.reply); req.resume(); return; }
    if (e.gateway !== undefined && e.port === 'client' && isGatewayPath(url)) {
      e.gateway(req, res);
      return;
    }
    void httpReply(method, url, e).then((r) => send(res, r))
      .catch(() => res.destroy()); // per-request code: a failure ends this connection only
  };
}

/** Handler for non-gRPC HTTP/2 streams (h2c GET /health and the other GET endpoints). */
export function http2Handler(e: HttpEndpoints): StreamHandler {
  return (stream, headers) => {
    stream.on('error', () => { /* client went away */ });
    const method = String(headers[':method'] ?? 'GET');
    const encrypted = (stream.session?.socket as { encrypted?: boolean } | undefined)?.encrypted === true;
    const gate = admit(e, method, headers[':authority'] ?? headers.host, headers.origin, encrypted);
    const reply = gate.reply ? Promise.resolve(gate.reply) : httpReply(method, String(headers[':path'] ?? '/'), e);
    void reply.then((r) => {
      if (stream.destroyed || stream.closed) return;
      stream.respond({ ':status': r.status, ...gate.headers, ...r.headers });
      stream.end(r.body);
    }).catch(() => stream.destroy());
  };
}
