// The load generator, run as its own process by bench/main.ts (identical for every target).
// One HTTP/2 connection per `connections`, requests framed as gRPC messages (1-byte compressed
// flag + 4-byte big-endian length), content-type application/grpc, te: trailers; grpc-status
// read from the trailers (or from the headers of a trailers-only response). Requests are
// hand-encoded protobuf (a few bytes of tags), responses are not decoded beyond the status: the
// generator stays cheap so the server is what is measured. Two clients: 'lean' (the default on
// http endpoints: HTTP/2 framed by hand on a TCP socket, bench/h2-lean.ts, about a fifth of
// node:http2's CPU per request) and 'http2' (node:http2 sessions; always used for https).
//
// Input: argv[2] = JSON LoadConfig. Output over IPC: {type:'progress'|'window-start'|'result'}.

import * as http2 from 'node:http2';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { LeanGrpcConnection, maxLeanBodyBytes } from './h2-lean.js';

/** The unary call a load generator repeats (txn-put: etcd's `benchmark txn-put`, a Txn of one put). */
export type LoadOp = 'put' | 'range' | 'txn-put';

export interface LoadConfig {
  endpoint: string;          // http://127.0.0.1:P
  endpoints?: string[];      // a cluster's members: connection i dials endpoints[i % n] (overrides endpoint)
  op: LoadOp;
  clients: number;           // concurrent request loops
  connections: number;       // HTTP/2 sessions; client i uses connection i % connections
  valueBytes: number;
  keySpace: number;          // random keys drawn from [0, keySpace)
  sequentialKeys?: boolean;  // keys 0, 1, 2, ... (wrapping at keySpace) instead of random: loads every key once
  rangeKey: string;          // the key ranged over (op 'range')
  serializable: boolean;
  warmupMs: number;
  durationMs: number;        // measured window (0: use totalRequests)
  totalRequests: number;     // measured requests when durationMs is 0
  token?: string;            // sent as the `token` metadata (auth on)
  caFile?: string;           // https endpoint: the CA its certificate is checked against
  client?: 'lean' | 'http2'; // which HTTP/2 client (default lean; https endpoints always use http2)
  progressP99?: boolean;     // each progress report also gives the p99 since the last one (sorts that second's latencies)
}

export interface LoadResult {
  requests: number;
  errors: number;
  firstError: string | null;
  elapsedMs: number;
  throughput: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  cpuUserMs: number;
  cpuSystemMs: number;
}

const {
  HTTP2_HEADER_METHOD, HTTP2_HEADER_PATH, HTTP2_HEADER_CONTENT_TYPE, HTTP2_HEADER_TE,
} = http2.constants;

/** The p-quantile of ascending `sorted` (NaN when empty). */
function quantile(sorted: readonly number[], p: number): number {
  return sorted.length > 0 ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! : NaN;
}

function varint(n: number, out: number[]): void {
  while (n > 0x7f) { out.push((n & 0x7f) | 0x80); n >>>= 7; }
  out.push(n);
}

/** A protobuf message made of length-delimited fields and bools. */
function message(fields: Array<[number, Buffer | boolean]>): Buffer {
  const parts: Buffer[] = [];
  for (const [no, v] of fields) {
    const h: number[] = [];
    if (typeof v === 'boolean') { if (!v) continue; varint((no << 3) | 0, h); h.push(1); parts.push(Buffer.from(h)); continue; }
    varint((no << 3) | 2, h);
    varint(v.length, h);
    parts.push(Buffer.from(h), v);
  }
  return Buffer.concat(parts);
}

/** A gRPC frame (uncompressed, length-prefixed) around an encoded message. */
function grpcFrame(body: Buffer): Buffer {
  const len = body.length;
  return Buffer.concat([Buffer.from([0, (len >>> 24) & 0xff, (len >>> 16) & 0xff, (len >>> 8) & 0xff, len & 0xff]), body]);
}

const methodPath: Record<LoadOp, string> = { put: '/etcdserverpb.KV/Put', range: '/etcdserverpb.KV/Range', 'txn-put': '/etcdserverpb.KV/Txn' };

/** One connection's unary calls: resolve with null on grpc-status 0, else the error text. */
interface UnaryConn { call(body: Buffer): Promise<string | null>; close(): void }

class Http2Conn implements UnaryConn {
  session: http2.ClientHttp2Session;
  constructor(endpoint: string, private readonly headers: http2.OutgoingHttpHeaders, ca?: Buffer) {
    this.session = http2.connect(endpoint, { settings: { initialWindowSize: 4 * 1024 * 1024 }, ...(ca ? { ca } : {}) });
    this.session.on('error', () => { /* surfaced per request */ });
    this.session.once('connect', () => this.session.setLocalWindowSize(16 * 1024 * 1024));
  }

  /** One unary call; resolves with null on grpc-status 0, else the error text. */
  call(body: Buffer): Promise<string | null> {
    const headers = this.headers;
    return new Promise((resolve) => {
      let status: string | undefined;
      let message: string | undefined;
      let stream: http2.ClientHttp2Stream;
      try {
        stream = this.session.request(headers);
      } catch (e) {
        resolve(String(e));
        return;
      }
      const onMeta = (h: http2.IncomingHttpHeaders) => {
        const st = h['grpc-status'];
        if (st !== undefined) { status = st as string; message = h['grpc-message'] as string | undefined; }
      };
      stream.on('response', onMeta);
      stream.on('trailers', onMeta);
      stream.on('close', () => {
        if (status === '0') resolve(null);
        else resolve(status === undefined ? `stream closed without grpc-status (rst ${stream.rstCode})` : `grpc-status ${status} ${decodeURIComponent(message ?? '')}`);
      });
      stream.on('error', () => { /* reported on close */ });
      stream.resume(); // drain the response body: it is not decoded
      stream.end(body);
    });
  }

  close(): void { this.session.close(); }
}

async function run(cfg: LoadConfig): Promise<LoadResult> {
  const ca = cfg.caFile ? readFileSync(cfg.caFile) : undefined;
  const eps = cfg.endpoints && cfg.endpoints.length > 0 ? cfg.endpoints : [cfg.endpoint];
  const path = methodPath[cfg.op];
  const headers: http2.OutgoingHttpHeaders = {
    [HTTP2_HEADER_METHOD]: 'POST',
    [HTTP2_HEADER_PATH]: path,
    [HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc',
    [HTTP2_HEADER_TE]: 'trailers',
    ...(cfg.token ? { token: cfg.token } : {}),
  };
  const value = randomBytes(cfg.valueBytes);
  const rangeBody = grpcFrame(message([[1, Buffer.from(cfg.rangeKey)], [7, cfg.serializable]]));
  const keyWidth = String(Math.max(1, cfg.keySpace - 1)).length;
  let nextKey = 0;
  // Put bodies: one template (fixed-width key), a fresh copy per request with new key digits.
  // txn-put is etcd's `benchmark txn-put`: a Txn with no compare and the put as its one success op.
  const put = message([[1, Buffer.from(`bench/${'0'.repeat(keyWidth)}`)], [2, value]]);
  const template = grpcFrame(cfg.op === 'txn-put' ? message([[2, message([[2, put]])]]) : put);
  const writes = cfg.op !== 'range';
  const bodyBytes = writes ? template.length : rangeBody.length;
  const connect = (endpoint: string): UnaryConn => {
    const url = new URL(endpoint);
    // The lean client sends each request as one DATA frame of at most 16 KiB.
    if (url.protocol === 'https:' || cfg.client === 'http2' || bodyBytes > maxLeanBodyBytes) return new Http2Conn(endpoint, headers, ca);
    return new LeanGrpcConnection(url.hostname, Number(url.port), path, cfg.token ? [['token', cfg.token]] : []);
  };
  const conns = Array.from({ length: cfg.connections }, (_, i) => connect(eps[i % eps.length]!));
  const keyDigitsAt = template.indexOf(Buffer.from('bench/')) + 6;
  const makeBody = writes
    ? () => {
      const body = Buffer.allocUnsafe(template.length);
      template.copy(body);
      let k = cfg.sequentialKeys ? nextKey++ % cfg.keySpace : Math.floor(Math.random() * cfg.keySpace);
      for (let i = keyWidth - 1; i >= 0; i--) { body[keyDigitsAt + i] = 48 + (k % 10); k = Math.floor(k / 10); }
      return body;
    }
    : () => rangeBody;

  const start = performance.now();
  const warmEnd = start + cfg.warmupMs;
  let windowStart = -1;
  let windowEnd = Infinity;
  let cpuStart = process.cpuUsage();
  let measured = 0;
  let errors = 0;
  let firstError: string | null = null;
  const lat: number[] = [];
  let stop = false;

  // With progressP99, each report also gives the p99 of the requests measured since the one
  // before (first-seconds.ts: how long a fresh server's tail takes to settle). Off by default:
  // sorting a second of 100k ranges would take the generator's CPU from the servers' machine.
  let reported = 0;
  const recentP99 = (): number => {
    const recent = lat.slice(reported).sort((a, b) => a - b);
    reported = lat.length;
    return quantile(recent, 0.99);
  };
  const progress = setInterval(() => {
    const now = performance.now();
    const recentP99Ms = cfg.progressP99 === true ? recentP99() : undefined;
    process.send?.({ type: 'progress', phase: windowStart < 0 ? 'warmup' : 'measure', elapsedMs: windowStart < 0 ? now - start : now - windowStart, requests: measured, errors, recentP99Ms });
  }, 1000);

  const openWindow = () => {
    windowStart = performance.now();
    cpuStart = process.cpuUsage();
    if (cfg.durationMs > 0) windowEnd = windowStart + cfg.durationMs;
    process.send?.({ type: 'window-start' });
  };
  if (cfg.warmupMs <= 0) openWindow();

  const loop = async (i: number) => {
    const conn = conns[i % conns.length]!;
    while (!stop) {
      const t0 = performance.now();
      if (windowStart < 0 && t0 >= warmEnd) openWindow();
      if (t0 >= windowEnd) { stop = true; break; }
      const err = await conn.call(makeBody());
      const t1 = performance.now();
      if (windowStart >= 0 && t0 >= windowStart) {
        if (err) { errors++; firstError ??= err; } else { measured++; lat.push(t1 - t0); }
        if (cfg.durationMs === 0 && measured + errors >= cfg.totalRequests) stop = true;
      } else if (err) { errors++; firstError ??= err; }
      if (err && errors > 1000 && measured === 0) stop = true; // server refuses everything: give up
    }
  };
  await Promise.all(Array.from({ length: cfg.clients }, (_, i) => loop(i)));
  const end = performance.now();
  const cpu = process.cpuUsage(cpuStart);
  clearInterval(progress);
  for (const c of conns) c.close();

  lat.sort((a, b) => a - b);
  const q = (p: number) => quantile(lat, p);
  const elapsedMs = end - (windowStart < 0 ? start : windowStart);
  return {
    requests: measured, errors, firstError, elapsedMs,
    throughput: measured / (elapsedMs / 1000),
    p50Ms: q(0.5), p90Ms: q(0.9), p99Ms: q(0.99), maxMs: lat.length ? lat[lat.length - 1]! : NaN,
    cpuUserMs: cpu.user / 1000, cpuSystemMs: cpu.system / 1000,
  };
}

const cfg = JSON.parse(process.argv[2] ?? '{}') as LoadConfig;
run(cfg).then((result) => {
  if (process.send) process.send({ type: 'result', result }, () => process.exit(0));
  else { console.log(JSON.stringify(result)); process.exit(0); }
}, (e) => { console.error(e); process.exit(1); });
