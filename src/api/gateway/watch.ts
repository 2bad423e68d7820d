/**
 * Watch over the gateway (a bidi call, bidi.ts): the stream is served by the same
 * WatchSession as gRPC (watch-service.ts), through an adaptor that turns its framed
 * responses into {"result":WatchResponse} lines.
 */
import type http from 'node:http';
import { grpcMethodMetrics } from '../../metrics/index.js';
import { etcdserverpb as pb } from '../../proto/index.js';
import { serveWatchCall, watchPath, type WatchCall, type WatchServiceOptions } from '../watch-service.js';
import { messageToJson } from './json.js';
import { JsonBidiCall, openJsonBidi } from './bidi.js';

export interface GatewayWatchOptions extends WatchServiceOptions {
  /** Bytes of one request object at most (and of request text buffered before it is complete). */
  maxBodyBytes: number;
}

export function serveWatch(req: http.IncomingMessage, res: http.ServerResponse, opts: GatewayWatchOptions, onFailure: (e: unknown) => void): void {
  void (async () => {
    const opened = await openJsonBidi(req, res, pb.WatchRequest, opts.maxBodyBytes);
    if (opened === undefined) return;
    // Looked up per stream: --metrics=extensive is decided after this module loads.
    const call = new JsonWatchCall(res, pb.WatchRequest, opened, grpcMethodMetrics(watchPath, 'bidi_stream'), authorizationOf(req));
    await call.serve(() => serveWatchCall(call, opts));
  })().catch(onFailure);
}

/** grpc-gateway forwards the Authorization header as the call's `authorization` metadata. */
export function authorizationOf(req: http.IncomingMessage): { authorization?: string } {
  const a = req.headers.authorization;
  return a === undefined ? {} : { authorization: a };
}

class JsonWatchCall extends JsonBidiCall<pb.WatchRequest> implements WatchCall {
  /** Takes a buffer of gRPC-framed WatchResponses; writes each as a {"result":...} line. */
  write(framed: Buffer): Promise<void> {
    let lines = '';
    for (let at = 0; at < framed.length;) {
      const n = framed.readUInt32BE(at + 1);
      const message = pb.WatchResponse.decode(framed.subarray(at + 5, at + 5 + n));
      lines += `{"result":${messageToJson(pb.WatchResponse, message)}}\n`;
      at += 5 + n;
    }
    return this.writeLines(lines);
  }
}
