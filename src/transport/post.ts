/**
 * One POST to a peer (pipeline messages and snapshots) and etcd's reading of the answer
 * (checkPostResponse): 204 is success, 412 names the refusal, 403 means we were removed.
 */
import * as http from 'node:http';
import { peerRequest, type PeerClientTls } from './dial.js';
import type { Readable } from 'node:stream';
import { errClusterIDMismatch, errIncompatibleVersion, requestHeaders, type LocalIdentity } from './headers.js';

/** Bytes of a response body read (the answers are short words). */
const maxResponseBodyBytes = 64 * 1024;

export type PostResult =
  | { ok: true }
  | { ok: false; removed: boolean; error: string };

export interface PostRequest {
  url: string; // peer URL + path
  local: LocalIdentity;
  contentType: string;
  body: Uint8Array | Readable;
  /** Abandon a request with no progress for this long. */
  idleTimeoutMs: number;
  agent: http.Agent;
  tls: PeerClientTls | undefined;
}

export function post(p: PostRequest): Promise<PostResult> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (r: PostResult) => {
      if (settled) return;
      settled = true;
      resolve(r);
    };
    const headers = { ...requestHeaders(p.local), 'Content-Type': p.contentType };
    const req = peerRequest(p.url, { method: 'POST', headers, agent: p.agent }, p.tls);
    req.setTimeout(p.idleTimeoutMs, () => {
      req.destroy();
      done({ ok: false, removed: false, error: 'i/o timeout' });
    });
    req.on('error', (e) => done({ ok: false, removed: false, error: e.message }));
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (s: string) => {
        body += s;
        if (body.length > maxResponseBodyBytes) res.destroy(new Error('response body too large'));
      });
      res.on('error', (e) => done({ ok: false, removed: false, error: e.message }));
      res.on('end', () => done(checkPostResponse(res.statusCode ?? 0, body, p.url)));
    });
    if (p.body instanceof Uint8Array) req.end(p.body);
    else {
      p.body.on('error', (e) => req.destroy(e));
      p.body.pipe(req);
    }
  });
}

function checkPostResponse(status: number, body: string, url: string): PostResult {
  const reason = body.replace(/\n$/, '');
  switch (status) {
    case 204:
      return { ok: true };
    case 403:
      return { ok: false, removed: true, error: 'the member has been permanently removed from the cluster' };
    case 412:
      if (reason === errIncompatibleVersion || reason === errClusterIDMismatch) return { ok: false, removed: false, error: reason };
      return { ok: false, removed: false, error: `unhandled error "${body}" when precondition failed` };
    default:
      return { ok: false, removed: false, error: `unexpected http status ${http.STATUS_CODES[status] ?? status} while posting to "${url}"` };
  }
}
