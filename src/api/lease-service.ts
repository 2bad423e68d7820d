/**
 * etcd's Lease service (v3rpc/lease.go). The unary calls are plain handlers that
 * services.ts puts in its method table (so they work in both API modes); LeaseKeepAlive is
 * a bidi stream served on this thread's GrpcServer, like Watch (the worker-thread mode
 * answers it Unimplemented).
 *
 * etcd's answers kept here: LeaseTimeToLive of an unknown lease is not an error but TTL -1;
 * a keep-alive of an unknown (or just expired) lease is answered with TTL 0 and the stream
 * stays open; a keep-alive response's header is taken before the renew, so its revision is
 * never past the renewal (etcd's comment: a lease revoked at rev 3 must not look renewed at 4).
 */
import { isEtcdError } from '../errors/index.js';
import { etcdserverpb as pb } from '../proto/index.js';
import type { ResponseHeader } from '../proto/index.js';
import type { AuthInfo, LeaseService } from '../server/index.js';
import type { GrpcServer, ServerCall } from './grpc/index.js';

export const leaseKeepAlivePath = '/etcdserverpb.Lease/LeaseKeepAlive';

export interface LeaseHandlers {
  grant(req: pb.LeaseGrantRequest, ai?: AuthInfo): Promise<pb.LeaseGrantResponse>;
  revoke(req: pb.LeaseRevokeRequest, ai?: AuthInfo): Promise<pb.LeaseRevokeResponse>;
  timeToLive(req: pb.LeaseTimeToLiveRequest): Promise<pb.LeaseTimeToLiveResponse>;
  leases(): Promise<pb.LeaseLeasesResponse>;
}

/** The unary Lease calls over `lease`, answered as etcd's LeaseServer answers them. */
export function leaseHandlers(lease: LeaseService, header: () => ResponseHeader): LeaseHandlers {
  return {
    grant: async (req, ai) => fillHeader(await lease.leaseGrant(req, ai), header),
    revoke: async (req, ai) => fillHeader(await lease.leaseRevoke(req, ai), header),
    async timeToLive(req) {
      try {
        return fillHeader(await lease.leaseTimeToLive(req), header);
      } catch (e) {
        if (!isEtcdError(e, 'LeaseNotFound')) throw e;
        return { header: header(), ID: req.ID, TTL: -1, grantedTTL: 0, keys: [] };
      }
    },
    leases: async () => fillHeader(await lease.leaseLeases(), header),
  };
}

/** etcd's header.fill: cluster, member and term always; the revision only when unset. */
function fillHeader<T extends { header?: ResponseHeader | undefined }>(resp: T, header: () => ResponseHeader): T {
  const h = header();
  resp.header = { ...h, revision: resp.header?.revision || h.revision };
  return resp;
}

/** What the keep-alive loop needs of a stream: gRPC's ServerCall, or the gateway's JSON adaptor. */
export interface KeepAliveStream {
  messages(): AsyncIterable<pb.LeaseKeepAliveRequest>;
  write(resp: pb.LeaseKeepAliveResponse): Promise<void>;
  readonly cancelled: boolean;
}

/** Registers LeaseKeepAlive: one renewal per request, answered in order. */
export function registerLeaseKeepAlive(grpc: GrpcServer, lease: LeaseService, header: () => ResponseHeader): void {
  grpc.addBidi(leaseKeepAlivePath, pb.LeaseKeepAliveRequest, pb.LeaseKeepAliveResponse,
    (call: ServerCall<pb.LeaseKeepAliveRequest, pb.LeaseKeepAliveResponse>) => serveKeepAlive(call, lease, header));
}

/** etcd's LeaseKeepAlive loop on one stream, until the client ends its requests or goes. */
export async function serveKeepAlive(call: KeepAliveStream, lease: LeaseService, header: () => ResponseHeader): Promise<void> {
  // Requests are handled one at a time, so a client cannot make this stream hold more than
  // one renewal; the server's per-call input queue bounds what it may send ahead.
  for await (const req of call.messages()) {
    const resp: pb.LeaseKeepAliveResponse = { header: header(), ID: req.ID, TTL: 0 };
    try {
      resp.TTL = await lease.leaseRenew(req.ID);
    } catch (e) {
      if (!isEtcdError(e, 'LeaseNotFound')) throw e; // ends the stream with etcd's status
    }
    if (call.cancelled) return;
    await call.write(resp);
  }
}
