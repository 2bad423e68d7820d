/**
 * etcd 3.4's metrics, with its names, help texts, types and buckets, in one process-wide
 * registry (as client_golang's default registry is in etcd). Layers record into the series
 * declared here; values that already live in a layer (raft indexes, backend size, key count)
 * are bound at start-up as collected gauges (`bindCollected`) and read at scrape time.
 *
 * Only metrics Concord can report honestly are declared: nothing Go-runtime specific.
 */
import { Registry, type Counter, type Family, type Histogram } from './registry.js';

export const registry = new Registry();

/** etcd's ExponentialBuckets(0.001, 2, 14): 1 ms .. 8.192 s (WAL fsync, backend commit). */
const diskBuckets = Array.from({ length: 14 }, (_, i) => 0.001 * 2 ** i);
/** etcd's ExponentialBuckets(.1, 2, 13): 100 ms .. 409.6 s (defrag). */
const defragBuckets = Array.from({ length: 13 }, (_, i) => 0.1 * 2 ** i);

const one = (f: { labels(...v: string[]): Counter }): Counter => f.labels();

export const serverMetrics = {
  leaderChanges: one(registry.counter('etcd_server_leader_changes_seen_total', 'The number of leader changes seen.')),
  proposalsFailed: one(registry.counter('etcd_server_proposals_failed_total', 'The total number of failed proposals seen.')),
  healthSuccess: one(registry.counter('etcd_server_health_success', 'The total number of successful health checks')),
  healthFailures: one(registry.counter('etcd_server_health_failures', 'The total number of failed health checks')),
};

/** etcd's mvcc/metrics_txn.go counters: what each read or write view did, added when it ends. */
export const mvccMetrics = {
  range: one(registry.counter('etcd_mvcc_range_total', 'Total number of ranges seen by this member.')),
  put: one(registry.counter('etcd_mvcc_put_total', 'Total number of puts seen by this member.')),
  delete: one(registry.counter('etcd_mvcc_delete_total', 'Total number of deletes seen by this member.')),
  txn: one(registry.counter('etcd_mvcc_txn_total', 'Total number of txns seen by this member.')),
};

/**
 * Adds what one etcd read/write view did, as metricsTxnWrite.End does: a view that did more
 * than one operation counts as a txn.
 */
export function countView(ranges: number, puts: number, deletes: number): void {
  if (ranges + puts + deletes > 1) mvccMetrics.txn.value++;
  mvccMetrics.range.value += ranges;
  mvccMetrics.put.value += puts;
  mvccMetrics.delete.value += deletes;
}

export const diskMetrics: { walFsync: Histogram; backendCommit: Histogram; defrag: Histogram } = {
  walFsync: registry.histogram('etcd_disk_wal_fsync_duration_seconds', 'The latency distributions of fsync called by WAL.', diskBuckets).labels(),
  backendCommit: registry.histogram('etcd_disk_backend_commit_duration_seconds', 'The latency distributions of commit called by backend.', diskBuckets).labels(),
  defrag: registry.histogram('etcd_disk_backend_defrag_duration_seconds', 'The latency distribution of backend defragmentation.', defragBuckets).labels(),
};

// ---- gRPC (go-grpc-prometheus, as etcd registers it: every method's series exist at 0) ----
// grpc_server_msg_{received,sent}_total are left out: watch batches responses per write, so
// a count here would not be etcd's.

/** grpc-go's codes in order; index = numeric code. */
export const grpcCodeNames = [
  'OK', 'Canceled', 'Unknown', 'InvalidArgument', 'DeadlineExceeded', 'NotFound', 'AlreadyExists',
  'PermissionDenied', 'ResourceExhausted', 'FailedPrecondition', 'Aborted', 'OutOfRange',
  'Unimplemented', 'Internal', 'Unavailable', 'DataLoss', 'Unauthenticated',
] as const;

export type GrpcType = 'unary' | 'server_stream' | 'client_stream' | 'bidi_stream';

export interface GrpcMethodMetrics {
  readonly started: Counter;
  /** Indexed by numeric gRPC code. */
  readonly handled: readonly Counter[];
  /** grpc_server_handling_seconds, with --metrics=extensive only. */
  readonly handling: Histogram | undefined;
}

/** Counts a finished call; `startedAtMs` (performance.now() at start) feeds the extensive histogram. */
export function recordHandled(m: GrpcMethodMetrics, code: number, startedAtMs: number): void {
  m.handled[code]?.inc();
  m.handling?.observe((performance.now() - startedAtMs) / 1000);
}

/** Prometheus' DefBuckets, which go-grpc-prometheus uses for the handling-time histogram. */
const defBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
let grpcHandling: Family<Histogram> | undefined;

/**
 * --metrics=extensive (etcd's grpc_prometheus.EnableHandlingTimeHistogram): adds
 * grpc_server_handling_seconds. Call before methods are registered (the composition root does).
 */
export function enableHandlingTimeHistogram(): void {
  grpcHandling ??= registry.histogram('grpc_server_handling_seconds',
    'Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.',
    defBuckets, ['grpc_method', 'grpc_service', 'grpc_type']);
}

const grpcStarted = registry.counter('grpc_server_started_total', 'Total number of RPCs started on the server.', ['grpc_method', 'grpc_service', 'grpc_type']);
const grpcHandled = registry.counter('grpc_server_handled_total', 'Total number of RPCs completed on the server, regardless of success or failure.', ['grpc_code', 'grpc_method', 'grpc_service', 'grpc_type']);
const grpcByPath = new Map<string, GrpcMethodMetrics>();

/**
 * The series of one gRPC method ("/etcdserverpb.KV/Range"), created at 0 for every code the
 * first time (as grpc_prometheus.Register does). The gRPC server and the JSON gateway share them.
 */
export function grpcMethodMetrics(path: string, type: GrpcType): GrpcMethodMetrics {
  let m = grpcByPath.get(path);
  if (m !== undefined) return m;
  const slash = path.lastIndexOf('/');
  const service = path.slice(1, slash);
  const method = path.slice(slash + 1);
  m = {
    started: grpcStarted.labels(method, service, type),
    handled: grpcCodeNames.map((code) => grpcHandled.labels(code, method, service, type)),
    handling: grpcHandling?.labels(method, service, type),
  };
  grpcByPath.set(path, m);
  return m;
}

// ---- values read at scrape time ----

export type MetricName =
  | 'etcd_server_has_leader' | 'etcd_server_is_leader' | 'etcd_server_is_learner'
  | 'etcd_server_proposals_committed_total' | 'etcd_server_proposals_applied_total' | 'etcd_server_proposals_pending'
  | 'etcd_server_quota_backend_bytes' | 'etcd_mvcc_db_total_size_in_bytes' | 'etcd_debugging_mvcc_db_total_size_in_bytes'
  | 'etcd_mvcc_db_total_size_in_use_in_bytes' | 'etcd_debugging_mvcc_keys_total' | 'etcd_debugging_mvcc_current_revision'
  | 'etcd_debugging_mvcc_compact_revision' | 'etcd_disk_defrag_inflight' | 'etcd_debugging_mvcc_watch_stream_total'
  | 'etcd_debugging_mvcc_watcher_total';

const collectedHelp: Record<MetricName, string> = {
  etcd_server_has_leader: 'Whether or not a leader exists. 1 is existence, 0 is not.',
  etcd_server_is_leader: 'Whether or not this member is a leader. 1 if is, 0 otherwise.',
  etcd_server_is_learner: 'Whether or not this member is a learner. 1 if is, 0 otherwise.',
  etcd_server_proposals_committed_total: 'The total number of consensus proposals committed.',
  etcd_server_proposals_applied_total: 'The total number of consensus proposals applied.',
  etcd_server_proposals_pending: 'The current number of pending proposals to commit.',
  etcd_server_quota_backend_bytes: 'Current backend storage quota size in bytes.',
  etcd_mvcc_db_total_size_in_bytes: 'Total size of the underlying database physically allocated in bytes.',
  etcd_debugging_mvcc_db_total_size_in_bytes: 'Total size of the underlying database physically allocated in bytes.',
  etcd_mvcc_db_total_size_in_use_in_bytes: 'Total size of the underlying database logically in use in bytes.',
  etcd_debugging_mvcc_keys_total: 'Total number of keys.',
  etcd_debugging_mvcc_current_revision: 'The current revision of store.',
  etcd_debugging_mvcc_compact_revision: 'The revision of the last compaction in store.',
  etcd_disk_defrag_inflight: 'Whether or not defrag is active on the member. 1 means active, 0 means not.',
  etcd_debugging_mvcc_watch_stream_total: 'Total number of watch streams.',
  etcd_debugging_mvcc_watcher_total: 'Total number of watchers.',
};

/** Binds etcd gauges (all of them gauges in etcd 3.4, the *_total ones included) to readers. */
export function bindCollected(readers: Partial<Record<MetricName, () => number>>): void {
  for (const [name, read] of Object.entries(readers) as Array<[MetricName, () => number]>) {
    registry.collected(name, collectedHelp[name], 'gauge', read);
  }
}

/** The constant info gauges: etcd_server_version, etcd_cluster_version, etcd_server_id. */
export function bindIdentity(o: { serverVersion: string; clusterVersion: () => string | undefined; memberIdHex: string }): void {
  registry.collected('etcd_server_version', "Which version is running. 1 for 'server_version' label with current version.", 'gauge', () => 1, { server_version: o.serverVersion });
  registry.collected('etcd_server_id', "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.", 'gauge', () => 1, { server_id: o.memberIdHex });
  // etcd sets this gauge once the cluster version is decided ("3.4"); absent before.
  registry.collectedRows('etcd_cluster_version', "Which version is running. 1 for 'cluster_version' label with current cluster version", ['cluster_version'], () => {
    const v = o.clusterVersion();
    return v === undefined ? [] : [{ values: [v.split('.').slice(0, 2).join('.')], value: 1 }];
  });
}
