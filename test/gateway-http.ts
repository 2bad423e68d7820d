// Curl-shaped HTTP for the gateway tests: a POST with a JSON body, the streamed answer read
// line by line, and the normalization of what differs between two members by nature.

import * as http from 'node:http';

export const b64 = (s: string): string => Buffer.from(s).toString('base64');

export interface Answer { status: number; body: string; headers: http.IncomingHttpHeaders; trailers: NodeJS.Dict<string> }

export function post(url: string, body: string | undefined, method = 'POST', headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent: false, timeout: 10_000, headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers, trailers: res.trailers }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

/** Values that differ between two members by nature (ids, sizes, raft indexes, hashes, URLs, tokens). */
const varying = new Set(['cluster_id', 'member_id', 'ID', 'leader', 'dbSize', 'dbSizeInUse', 'raftIndex', 'raftAppliedIndex', 'hash',
  'peerURLs', 'clientURLs', 'blob', 'remaining_bytes', 'token']);
export function normalize(v: unknown, keep: ReadonlySet<string> = new Set()): unknown {
  if (Array.isArray(v)) return v.map((x) => normalize(x, keep));
  if (v === null || typeof v !== 'object') return v;
  return Object.fromEntries(Object.entries(v as Record<string, unknown>)
    .map(([k, x]) => [k, varying.has(k) && !keep.has(k) ? `<${k}>` : normalize(x, keep)]));
}

/**
 * POSTs `request` (one JSON text, or several for a bidi stream) to a streaming route and
 * collects its first `n` lines while `during` runs (started once the first line is in). A bidi
 * call's body stays open, so the stream lives until the client goes; a server stream's is
 * ended (grpc-gateway reads the whole body before it calls).
 */
export function streamLines(url: string, request: string, n: number, during: () => Promise<void> = async () => {},
  headers: Record<string, string> = {}, kind: 'bidi' | 'server' = 'bidi'): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const lines: string[] = [];
    let buf = '';
    let started = false;
    const req = http.request(url, { method: 'POST', agent: false, timeout: 20_000, headers }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        buf += c;
        for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
          lines.push(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
        if (!started && lines.length >= 1) { started = true; during().catch(reject); }
        if (lines.length >= n) { req.destroy(); resolve(lines.slice(0, n)); }
      });
      res.on('end', () => { if (lines.length < n) resolve([...lines, ...(buf === '' ? [] : [buf])]); });
    });
    req.on('timeout', () => req.destroy(new Error(`${url}: ${lines.length} of ${n} lines before the timeout`)));
    req.on('error', (e) => { if (lines.length < n) reject(e); });
    if (kind === 'server') req.end(request); else req.write(request);
  });
}
