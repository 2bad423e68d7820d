/**
 * The client-facing front end: etcd's v3 gRPC API on our own lean gRPC server over
 * node:http2, and HTTP /health and /version on the same port, as etcd serves its client URLs.
 */
import { GrpcCode } from '../errors/index.js';
import type { EtcdService } from '../server/index.js';
import { GrpcServer } from './grpc/index.js';
import { http1Handler, http2Handler, type HttpEndpoints, type ProbeHost } from './http.js';
import { etcdError } from '../errors/index.js';
import { debugVarsBody } from './debug-vars.js';
import { gatewayHandler } from './gateway/index.js';
import { etcdserverpb } from '../proto/index.js';
import { ClientListener } from './listener.js';
import { AccessControl, type AccessOptions } from './access.js';
import { ClientTls, type ClientTlsOptions } from './tls.js';
import type { KeepaliveOptions } from './keepalive.js';
import type { Logger } from '../log/index.js';
import { registerEtcdServices } from './services.js';
import { startThreadApi } from './thread.js';

export { etcdServerVersion, etcdClusterVersion } from '../version.js';
export { ClientTls, TlsConfigError, httpsWithoutCertMessage, type ClientTlsOptions } from './tls.js';
export { selfCert } from './self-cert.js';
export type { KeepaliveOptions } from './keepalive.js';
export type { AccessOptions } from './access.js';
export { GrpcServer, ServerCall, GrpcStatusError } from './grpc/index.js';

/** etcd's grpcOverheadBytes (v3rpc/grpc.go): the gRPC receive limit is max-request-bytes plus this. */
export const grpcOverheadBytes = 512 * 1024;

export interface ApiOptions {
  service: EtcdService;
  /** Client URLs to listen on (http:// or https://). Port 0 picks a free port. */
  listen: URL[];
  /** Client TLS settings (the flags' files), required when a URL is https://. */
  tls?: ClientTlsOptions;
  /** --grpc-keepalive-min-time/-interval/-timeout (etcd's defaults if absent). */
  keepalive?: KeepaliveOptions;
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
  /** Which HTTP/2 server serves the client URLs in this thread: Concord's own (api/h2/, default) or node:http2. */
  h2Server?: 'node' | 'own';
  /** --listen-metrics-urls: listeners serving /metrics and /health only. */
  listenMetrics?: URL[];
  /** --enable-grpc-gateway (default true): the JSON gateway under /v3/ on the client URLs. */
  enableGrpcGateway?: boolean;
  /** --cors and --host-whitelist for plain HTTP on the client URLs (etcd's defaults allow all). */
  access?: AccessOptions;
  /** --max-concurrent-streams: per HTTP/2 connection, and for the gateway's calls together. */
  maxConcurrentStreams?: number;
}

export interface Api {
  /** The URLs actually bound ("http://127.0.0.1:2379"), in the order of `listen`; port 0 resolved. */
  readonly addresses: string[];
  /** The metrics URLs actually bound, in the order of `listenMetrics`. */
  readonly metricsAddresses: string[];
  /** Stops accepting, ends watch-like streams, lets in-flight requests finish (bounded by closeGraceMs). */
  close(): Promise<void>;
}

export async function startApi(opts: ApiOptions): Promise<Api> {
  const { service, log } = opts;
  if (opts.thread && opts.listen.some((u) => u.protocol === 'https:')) {
    throw new Error('the worker-thread transport (CONCORD_API_THREAD=1) serves http:// client URLs only');
  }
  const health: HttpEndpoints['health'] = (q) => service.checkHealth(q);
  const client = opts.thread
    ? await startThreadApi({
      service, listen: opts.listen, log, closeGraceMs: opts.closeGraceMs ?? 2000,
      maxReceiveMessageBytes: service.limits.maxRequestBytes + grpcOverheadBytes,
      ...(opts.access ? { access: opts.access } : {}),
      ...(opts.maxConcurrentStreams === undefined ? {} : { maxConcurrentStreams: opts.maxConcurrentStreams }),
      // The worker relays HTTP/1.1 here: the gateway and the probes are served as in-thread.
      http1: http1Handler(clientEndpoints(opts, health)),
    })
    : await startClientApi(opts, health);
  // The metrics listeners run on this thread in both modes (the metrics live here).
  const metricsEndpoints: HttpEndpoints = { port: 'metrics', health };
  const metricsListener = new ClientListener({ onStream: http2Handler(metricsEndpoints), onRequest: http1Handler(metricsEndpoints) });
  const metricsAddresses: string[] = [];
  try {
    for (const url of opts.listenMetrics ?? []) metricsAddresses.push((await metricsListener.listen(url)).origin);
  } catch (e) {
    await Promise.all([client.close(), metricsListener.close(0)]);
    throw e;
  }
  let closing: Promise<void> | undefined;
  return {
    addresses: client.addresses,
    metricsAddresses,
    close() {
      closing ??= Promise.all([client.close(), metricsListener.close(0)]).then(() => undefined);
      return closing;
    },
  };
}

/** What the client URLs serve besides gRPC: the probes, /debug/vars, the JSON gateway, behind the access controller. */
function clientEndpoints(opts: ApiOptions, health: HttpEndpoints['health']): HttpEndpoints {
  const { service, log } = opts;
  return {
    port: 'client',
    health,
    probes: probeHost(service),
    debugVars: () => debugVarsBody(service.raftStatusJson()),
    ...(opts.access ? { access: new AccessControl(opts.access, log) } : {}),
    ...(opts.enableGrpcGateway === false ? {} : {
      gateway: gatewayHandler(service, log, opts.maxConcurrentStreams === undefined ? {} : { maxConcurrentStreams: opts.maxConcurrentStreams }),
    }),
  };
}

/** gRPC, the HTTP endpoints and the JSON gateway on the client URLs, in this thread. */
async function startClientApi(opts: ApiOptions, health: HttpEndpoints['health']): Promise<Omit<Api, 'metricsAddresses'>> {
  const { service, log } = opts;
  const endpoints = clientEndpoints(opts, health);
  const grpc = new GrpcServer({
    maxReceiveMessageBytes: service.limits.maxRequestBytes + grpcOverheadBytes,
    httpHandler: http2Handler(endpoints),
  });
  registerEtcdServices(grpc, service, log, opts.tls?.clientCertAuth === true);
  const hasHttps = opts.listen.some((u) => u.protocol === 'https:');
  const tls = hasHttps && opts.tls !== undefined && opts.tls.certFile !== '' ? new ClientTls(opts.tls) : undefined;
  const listener = new ClientListener({
    onStream: grpc.handleStream, onRequest: http1Handler(endpoints), log, h2Server: opts.h2Server ?? 'own',
    ...(tls ? { tls } : {}), ...(opts.keepalive ? { keepalive: opts.keepalive } : {}),
    ...(opts.maxConcurrentStreams === undefined ? {} : { maxConcurrentStreams: opts.maxConcurrentStreams }),
  });
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

/** etcd's request timeout for the probes' reads: 5 s plus two election timeouts (here a fixed 7 s). */
const probeReadTimeoutMs = 7000;

/** The reads and alarms /livez and /readyz check, over the service. */
function probeHost(service: EtcdService): ProbeHost {
  const read = (serializable: boolean) => async (): Promise<void> => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(etcdError('Timeout')), probeReadTimeoutMs); });
    try {
      await Promise.race([service.range(probeRange(serializable)), timedOut]);
    } finally {
      clearTimeout(timer);
    }
  };
  return { serializableRead: read(true), linearizableRead: read(false), activeAlarms: () => service.activeAlarms() };
}

const probeRange = (serializable: boolean): etcdserverpb.RangeRequest =>
  etcdserverpb.RangeRequest.fromPartial({ key: Buffer.from([0]), rangeEnd: Buffer.from([0]), keysOnly: true, limit: 1, serializable });
