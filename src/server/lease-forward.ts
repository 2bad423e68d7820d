/**
 * etcd's leasehttp: lease renewals and TTL queries are answered by the leader's (primary)
 * lessor without raft, so a follower forwards them over the peer URLs: POST /leases (a
 * LeaseKeepAliveRequest, answered with a LeaseKeepAliveResponse) and POST /leases/internal
 * (leasepb.LeaseInternalRequest / LeaseInternalResponse). Both sides are here: the leader's
 * handler on the peer listener and the follower's client. The bytes and statuses are
 * etcd's, so Concord and etcd members forward to each other.
 */
import type * as http from 'node:http';
import { readPeerBody, peerHttpError as httpText, type PeerClientTls } from '../transport/index.js';
import { peerCall } from './peer-call.js';
import { etcdserverpb, LeaseInternalRequest, LeaseInternalResponse, type LeaseTimeToLiveRequest, type LeaseTimeToLiveResponse } from '../proto/index.js';
import { EtcdError, etcdError } from '../errors/index.js';
import { NotPrimaryError } from '../lease/index.js';

export const leasePrefix = '/leases';
export const leaseInternalPrefix = '/leases/internal';
/** leasehttp's applyTimeout: how long the leader waits for its applied index before answering 408. */
const applyTimeoutMs = 1000;
const errLeaseHttpTimeout = 'waiting for node to catch up its applied index has timed out';
/** A lease request is a few varints; anything longer is not one. */
const maxLeaseRequestBytes = 4096;
/** An answer with keys may be long (a lease with many keys), but is bounded. */
const maxLeaseResponseBytes = 64 * 1024 * 1024;

/** What the leader's handler needs of the member: its lease service as primary. */
export interface LeasePrimary {
  /** Resolves once every committed entry is applied (leasehttp's waitch). */
  appliedCaughtUp(): Promise<void> | undefined;
  renew(id: bigint): Promise<number>;
  timeToLive(req: LeaseTimeToLiveRequest): Promise<LeaseTimeToLiveResponse>;
}

function withTimeout(p: Promise<void> | undefined, ms: number): Promise<boolean> {
  if (p === undefined) return Promise.resolve(true);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), ms); });
  return Promise.race([p.then(() => true, () => false), timedOut]).finally(() => clearTimeout(timer));
}

/** leaseHandler.ServeHTTP, for a request whose path starts with /leases. */
export async function serveLeaseRequest(primary: LeasePrimary, req: http.IncomingMessage, res: http.ServerResponse, path: string): Promise<void> {
  if (req.method !== 'POST') return httpText(res, 405, 'Method Not Allowed');
  const body = await readPeerBody(req, maxLeaseRequestBytes);
  if (typeof body === 'string') return httpText(res, 400, 'error reading body');
  let answer: Uint8Array;
  try {
    if (path === leasePrefix) {
      let id: bigint;
      try { id = etcdserverpb.LeaseKeepAliveRequest.decode(body).ID; } catch { return httpText(res, 400, 'error unmarshalling request'); }
      if (!(await withTimeout(primary.appliedCaughtUp(), applyTimeoutMs))) return httpText(res, 408, errLeaseHttpTimeout);
      const TTL = await primary.renew(id);
      answer = etcdserverpb.LeaseKeepAliveResponse.encode({ header: undefined, ID: id, TTL }).finish();
    } else if (path === leaseInternalPrefix) {
      let ttlReq: LeaseTimeToLiveRequest | undefined;
      try { ttlReq = LeaseInternalRequest.decode(body).LeaseTimeToLiveRequest; } catch { return httpText(res, 400, 'error unmarshalling request'); }
      if (ttlReq === undefined) return httpText(res, 400, 'error unmarshalling request');
      if (!(await withTimeout(primary.appliedCaughtUp(), applyTimeoutMs))) return httpText(res, 408, errLeaseHttpTimeout);
      const r = await primary.timeToLive(ttlReq);
      // The leader answers with an empty header; the follower fills in its own.
      answer = LeaseInternalResponse.encode({ LeaseTimeToLiveResponse: { ...r, header: { clusterId: 0n, memberId: 0n, revision: 0, raftTerm: 0 } } }).finish();
    } else {
      return httpText(res, 400, `unknown request path "${path}"`);
    }
  } catch (e) {
    // lease.ErrLeaseNotFound is 404 with its text; other lessor errors 400 (etcd's texts).
    if (e instanceof EtcdError && e.message === etcdError('LeaseNotFound').message) return httpText(res, 404, 'lease not found');
    if (e instanceof EtcdError || e instanceof NotPrimaryError) return httpText(res, 400, e.message.replace(/^etcdserver: /, ''));
    throw e;
  }
  res.writeHead(200, { 'Content-Type': 'application/protobuf' });
  res.end(answer);
}

/** A forwarded request's outcome: the answer, "not found", or a failure worth retrying. */
type Forwarded<T> = { ok: true; value: T } | { ok: false; notFound: boolean; error: string };

async function forward<T>(url: string, body: Uint8Array, tls: PeerClientTls | undefined, timeoutMs: number, decode: (b: Buffer) => T): Promise<Forwarded<T>> {
  let r: { status: number; body: Buffer };
  try {
    r = await peerCall({ method: 'POST', url, body, headers: { 'Content-Type': 'application/protobuf' }, tls, timeoutMs, maxResponseBytes: maxLeaseResponseBytes });
  } catch (e) {
    return { ok: false, notFound: false, error: (e as Error).message };
  }
  if (r.status === 404) return { ok: false, notFound: true, error: 'lease not found' };
  if (r.status !== 200) return { ok: false, notFound: false, error: `lease: unknown error(${r.body.toString('utf8')})` };
  try {
    return { ok: true, value: decode(r.body) };
  } catch (e) {
    return { ok: false, notFound: false, error: `lease: ${(e as Error).message}` };
  }
}

/** What the follower's side needs: the leader's peer URLs (undefined while none is known). */
export interface LeaseForwarderOptions {
  leaderPeerUrls(): readonly string[] | undefined;
  /** etcd's ReqTimeout: the whole forwarding gives up after it ("request timed out"). */
  requestTimeoutMs: number;
  tls?: PeerClientTls;
}

/** etcd's LeaseRenew / LeaseTimeToLive on a follower: try the leader's URLs until the deadline. */
export class LeaseForwarder {
  constructor(private readonly o: LeaseForwarderOptions) {}

  renew(id: bigint): Promise<number> {
    const body = etcdserverpb.LeaseKeepAliveRequest.encode({ ID: id }).finish();
    return this.untilAnswered(leasePrefix, body, (b) => {
      const r = etcdserverpb.LeaseKeepAliveResponse.decode(b);
      if (r.ID !== id) throw new Error('renew id mismatch');
      return r.TTL;
    });
  }

  timeToLive(req: LeaseTimeToLiveRequest): Promise<LeaseTimeToLiveResponse> {
    const body = LeaseInternalRequest.encode({ LeaseTimeToLiveRequest: req }).finish();
    return this.untilAnswered(leaseInternalPrefix, body, (b) => {
      const r = LeaseInternalResponse.decode(b).LeaseTimeToLiveResponse;
      if (r === undefined || r.ID !== req.ID) throw new Error('renew id mismatch');
      return r;
    });
  }

  private async untilAnswered<T>(path: string, body: Uint8Array, decode: (b: Buffer) => T): Promise<T> {
    const deadline = Date.now() + this.o.requestTimeoutMs;
    while (Date.now() < deadline) {
      const urls = this.o.leaderPeerUrls();
      for (const u of urls ?? []) {
        const r = await forward(u.replace(/\/$/, '') + path, body, this.o.tls, Math.max(1, deadline - Date.now()), decode);
        if (r.ok) return r.value;
        if (r.notFound) throw etcdError('LeaseNotFound');
      }
      await new Promise((resolve) => setTimeout(resolve, 50)); // etcd throttles retries the same way
    }
    throw etcdError('Timeout');
  }
}
