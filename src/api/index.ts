/**
 * The client-facing front end: etcd's v3 gRPC API on our own lean gRPC server over
 * node:http2, and HTTP /health and /version on the same port, as etcd serves its client URLs.
 */
import { GrpcCode } from '../errors/index.js';
import type { EtcdService } from '../server/index.js';
import { GrpcServer } from './grpc/index.js';
import { http1Handler, http2Handler } from './http.js';
import { ClientListener } from './listener.js';
import { ClientTls, type ClientTlsOptions } from './tls.js';
import type { Logger } from '../log/index.js';
import { registerEtcdServices } from './services.js';
import { startThreadApi } from './thread.js';

export { etcdServerVersion, etcdClusterVersion } from '../version.js';
export { ClientTls, TlsConfigError, type ClientTlsOptions } from './tls.js';
export { selfCert } from './self-cert.js';
export { GrpcServer, ServerCall, GrpcStatusError } from './grpc/index.js';

/** etcd's grpcOverheadBytes (v3rpc/grpc.go): the gRPC receive limit is max-request-bytes plus this. */
export const grpcOverheadBytes = 512 * 1024;

export interface ApiOptions {
  service: EtcdService;
  /** Client URLs to listen on (http:// or https://). Port 0 picks a free port. */
  listen: URL[];
  /** Client TLS settings (the flags' files), required when a URL is https://. */
  tls?: ClientTlsOptions;
  /** The project logger (src/log); the API logs snapshot sends with etcd's wording. */
  log?: Logger;
  /** How long close() waits for in-flight requests before dropping connections. Default 2000 ms. */
  closeGraceMs?: number;
  /**
   * Run the transport (sockets, HTTP/2, gRPC framing) on a worker thread, keeping decode,
   * validation and the service on this thread (thread.ts). Default false (the composition
   * root sets it from the config's apiThread, i.e. CONCORD_API_THREAD=1).
   */
  thread?: boolean;
}

export interface Api {
  /** The URLs actually bound ("http://127.0.0.1:2379"), in the order of `listen`; port 0 resolved. */
  readonly addresses: string[];
  /** Stops accepting, ends watch-like streams, lets in-flight requests finish (bounded by closeGraceMs). */
  close(): Promise<void>;
}

export async function startApi(opts: ApiOptions): Promise<Api> {
  const { service, log } = opts;
  if (opts.thread) {
    if (opts.listen.some((u) => u.protocol === 'https:')) throw new Error('the worker-thread transport (CONCORD_API_THREAD=1) serves http:// client URLs only');
    return startThreadApi({
      service, listen: opts.listen, log, closeGraceMs: opts.closeGraceMs ?? 2000,
      maxReceiveMessageBytes: service.limits.maxRequestBytes + grpcOverheadBytes,
    });
  }
  const health = (): ReturnType<EtcdService['health']> => service.health();
  const grpc = new GrpcServer({
    maxReceiveMessageBytes: service.limits.maxRequestBytes + grpcOverheadBytes,
    httpHandler: http2Handler(health),
  });
  registerEtcdServices(grpc, service, log, opts.tls?.clientCertAuth === true);
  const hasHttps = opts.listen.some((u) => u.protocol === 'https:');
  const tls = hasHttps && opts.tls !== undefined && opts.tls.certFile !== '' ? new ClientTls(opts.tls) : undefined;
  const listener = new ClientListener({ onStream: grpc.handleStream, onRequest: http1Handler(health), log, ...(tls ? { tls } : {}) });
  const addresses: string[] = [];
  try {
    for (const url of opts.listen) addresses.push((await listener.listen(url)).origin);
  } catch (e) {
    await listener.close(0);
    throw e;
  }
  let closing: Promise<void> | undefined;
  return {
    addresses,
    close() {
      closing ??= (async () => {
        grpc.endStreams(GrpcCode.Unavailable, 'etcdserver: server stopped');
        await listener.close(opts.closeGraceMs ?? 2000);
      })();
      return closing;
    },
  };
}
