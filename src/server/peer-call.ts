/**
 * One request to a peer URL outside the raft transport (a join's GET /members, a forwarded
 * lease request): over the peer TLS, with a timeout, the answer's body read up to a bound.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { peerRequest, type PeerClientTls } from '../transport/index.js';

export interface PeerCall {
  method: 'GET' | 'POST';
  url: string;
  body?: Uint8Array;
  headers?: Record<string, string>;
  tls: PeerClientTls | undefined;
  timeoutMs: number;
  /** Bytes of answer read at most; past it the call fails. */
  maxResponseBytes: number;
}

export function peerCall(c: PeerCall): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = peerRequest(c.url, { method: c.method, agent: false, ...(c.headers ? { headers: c.headers } : {}) }, c.tls);
    req.setTimeout(c.timeoutMs, () => req.destroy(new Error('i/o timeout')));
    req.on('error', reject);
    req.on('response', (res) => {
      const parts: Buffer[] = [];
      let n = 0;
      res.on('data', (chunk: Buffer) => {
        n += chunk.length;
        if (n > c.maxResponseBytes) res.destroy(new Error(`response over ${c.maxResponseBytes} bytes`));
        else parts.push(chunk);
      });
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
    });
    req.end(c.body);
  });
}
