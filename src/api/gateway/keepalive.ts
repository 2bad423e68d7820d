/**
 * LeaseKeepAlive over the gateway (a bidi call, bidi.ts): each JSON request in the body
 * renews its lease once, answered with one {"result":LeaseKeepAliveResponse} line, by the same
 * loop as gRPC's (lease-service.ts).
 */
import type http from 'node:http';
import { grpcMethodMetrics } from '../../metrics/index.js';
import { etcdserverpb as pb, type ResponseHeader } from '../../proto/index.js';
import type { LeaseService } from '../../server/index.js';
import { leaseKeepAlivePath, serveKeepAlive, type KeepAliveStream } from '../lease-service.js';
import { messageToJson } from './json.js';
import { JsonBidiCall, openJsonBidi } from './bidi.js';
import { authorizationOf } from './watch.js';

export interface GatewayKeepAliveOptions {
  lease: LeaseService;
  header: () => ResponseHeader;
  /** Bytes of one request object at most (and of request text buffered before it is complete). */
  maxBodyBytes: number;
}

export function serveKeepAliveJson(req: http.IncomingMessage, res: http.ServerResponse, opts: GatewayKeepAliveOptions, onFailure: (e: unknown) => void): void {
  void (async () => {
    const opened = await openJsonBidi(req, res, pb.LeaseKeepAliveRequest, opts.maxBodyBytes);
    if (opened === undefined) return;
    const call = new JsonKeepAliveCall(res, pb.LeaseKeepAliveRequest, opened, grpcMethodMetrics(leaseKeepAlivePath, 'bidi_stream'), authorizationOf(req));
    await call.serve(() => serveKeepAlive(call, opts.lease, opts.header));
  })().catch(onFailure);
}

class JsonKeepAliveCall extends JsonBidiCall<pb.LeaseKeepAliveRequest> implements KeepAliveStream {
  write(resp: pb.LeaseKeepAliveResponse): Promise<void> {
    return this.writeLines(`{"result":${messageToJson(pb.LeaseKeepAliveResponse, resp)}}\n`);
  }
}
