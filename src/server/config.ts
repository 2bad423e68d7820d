/**
 * The member's configuration, as parsed from etcd's flags, ETCD_* environment variables and
 * --config-file by cli/concord. Durations are in milliseconds, sizes in bytes.
 */
import type { TokenProviderConfig } from '../auth/index.js';

// server/'s second entry module (docs/architecture.md): the configuration's types, defaults and
// the --auth-token sign methods, for the flag parser without loading the server.
export { jwtAlgs, type JwtAlg } from '../auth/jwt-algs.js';

export interface ServerConfig {
  name: string;                      // --name, default "default"
  dataDir: string;                   // --data-dir, default `${name}.etcd`
  walDir?: string;                   // --wal-dir, default `${dataDir}/member/wal`
  listenClientUrls: URL[];           // --listen-client-urls, default http://localhost:2379
  advertiseClientUrls: URL[];        // --advertise-client-urls, default http://localhost:2379
  listenPeerUrls: URL[];             // --listen-peer-urls, default http://localhost:2380
  initialAdvertisePeerUrls: URL[];   // --initial-advertise-peer-urls, default http://localhost:2380
  /** --initial-cluster: name -> peer URLs. Default `${name}=${initialAdvertisePeerUrls}`. */
  initialCluster: Map<string, URL[]>;
  initialClusterState: 'new' | 'existing';
  initialClusterToken: string;       // default "etcd-cluster"
  snapshotCount: number;             // --snapshot-count, default 100000
  heartbeatIntervalMs: number;       // --heartbeat-interval, default 100
  electionTimeoutMs: number;         // --election-timeout, default 1000
  quotaBackendBytes: number;         // --quota-backend-bytes, 0 = default 2 GiB
  maxTxnOps: number;                 // --max-txn-ops, default 128
  maxRequestBytes: number;           // --max-request-bytes, default 1.5 MiB (1572864)
  autoCompactionMode: 'periodic' | 'revision';  // default periodic
  /** --auto-compaction-retention: for periodic a duration in ms (bare number = hours), for revision a count; 0 = off. */
  autoCompactionRetention: number;
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'dpanic' | 'panic' | 'fatal';
  logOutputs: string[];              // --log-outputs, default ["default"] (stderr)
  /** TLS flags: the client side is served (api/tls.ts); peer TLS comes with the cluster. */
  tls: {
    clientCertAuth: boolean; trustedCaFile: string; certFile: string; keyFile: string; autoTls: boolean;
    /** --client-crl-file, --client-cert-allowed-hostname, --cipher-suites (Go names), --tls-min/max-version. */
    crlFile?: string; allowedHostname?: string; cipherSuites?: string[]; minVersion?: string; maxVersion?: string;
    peerClientCertAuth: boolean; peerTrustedCaFile: string; peerCertFile: string; peerKeyFile: string; peerAutoTls: boolean;
    /** --peer-crl-file, --peer-cert-allowed-cn, --peer-cert-allowed-hostname. */
    peerCrlFile?: string; peerAllowedCn?: string; peerAllowedHostname?: string;
  };

  // The fields below are etcd flags cli/concord parses and passes on; optional so that tests
  // may build a ServerConfig without them (defaults are etcd's, noted on each).
  /** --initial-election-tick-advance (default true): a fresh member fast-forwards its election ticks. */
  initialElectionTickAdvance?: boolean;
  /** --pre-vote (default false in 3.4). */
  preVote?: boolean;
  /** --strict-reconfig-check (default true). */
  strictReconfigCheck?: boolean;
  /** --auto-promote-learners (Concord's, default false): the leader promotes a learner once it is in sync. */
  autoPromoteLearners?: boolean;
  /** --max-snapshots, --max-wals: files kept (0 = unlimited; default 5 each). */
  maxSnapshots?: number;
  maxWals?: number;
  /** --force-new-cluster (default false). */
  forceNewCluster?: boolean;
  /** --experimental-initial-corrupt-check (default false): compare HashKV with the peers before running raft. */
  initialCorruptCheck?: boolean;
  /** --experimental-corrupt-check-time (ms, default 0 = off): the leader's periodic HashKV comparison. */
  corruptCheckTimeMs?: number;
  /** --backend-batch-interval (ms): the backend commits its buffered writes at least this often (default 100). */
  backendBatchIntervalMs?: number;
  /** --backend-batch-limit: ... or once this many are buffered (default 250: see storage/backend.ts). */
  backendBatchLimit?: number;
  /** --unsafe-no-fsync (default false). */
  unsafeNoFsync?: boolean;
  /** --enable-v2: accepted; Concord serves v3 only. */
  enableV2?: boolean;
  /** --grpc-keepalive-min-time, --grpc-keepalive-interval, --grpc-keepalive-timeout (ms; 5 s, 2 h, 20 s). */
  grpcKeepalive?: { minTimeMs: number; intervalMs: number; timeoutMs: number };
  /** --listen-metrics-urls (default none). */
  listenMetricsUrls?: URL[];
  /** --metrics (default basic): "extensive" adds grpc_server_handling_seconds. */
  metrics?: string;
  /** --enable-grpc-gateway (default true): the JSON gateway under /v3/ on the client URLs. */
  enableGrpcGateway?: boolean;
  /** --cors (allowed origins; "*" all, etcd's default) and --host-whitelist (host names; "*" all, the default). */
  cors?: string[];
  hostWhitelist?: string[];
  /** --max-concurrent-streams (default 2^32-1): HTTP/2 streams per client connection. */
  maxConcurrentStreams?: number;

  // Concord's own settings, read from the environment by cli/ (the only place that reads it).
  /** CONCORD_DEBUG_LOOP: log the Ready loop's batch sizes and WAL save latency every second. */
  debugRaftLoop?: boolean;
  /** CONCORD_API_THREAD=1: run the client transport on a worker thread (api/thread.ts). */
  apiThread?: boolean;
  /** The client port's HTTP/2: Concord's own server (api/h2/, the default) or node:http2 (CONCORD_H2=node, the fallback). */
  h2Server?: 'node' | 'own';
  /** --experimental-watch-progress-notify-interval: progress_notify watchers hear of quiet periods this often. */
  watchProgressNotifyIntervalMs?: number;
  /** --experimental-enable-lease-checkpoint: the leader records long leases' remaining TTLs through raft. */
  leaseCheckpoint?: boolean;
  /** --experimental-enable-lease-checkpoint-persist: checkpointed remaining TTLs are also written to the backend. */
  leaseCheckpointPersist?: boolean;
  /** How often a lease is checkpointed (etcd 3.4 has no flag for it: 5 minutes; tests shorten it). */
  leaseCheckpointIntervalMs?: number;
  /** --bcrypt-cost (default 10), --auth-token-ttl (default 300 s) and --auth-token (default simple tokens with that TTL). */
  auth?: { bcryptCost: number; tokenTtlMs: number; token?: TokenProviderConfig };
}

/** etcd v3rpc's progressReportInterval default: 10 minutes. */
export const defaultWatchProgressNotifyIntervalMs = 10 * 60 * 1000;

export const defaultQuotaBackendBytes = 2 * 1024 * 1024 * 1024;
export const maxQuotaBackendBytes = 8 * 1024 * 1024 * 1024;
