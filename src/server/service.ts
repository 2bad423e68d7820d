/**
 * What one member offers the API layer (api/): etcd's v3 requests in, responses out.
 * Requests and responses are the generated etcdserverpb types; failures are thrown as
 * EtcdError (src/errors). Response headers are filled here, as etcd fills them.
 * The API layer validates request shape first (empty key, txn op count, duplicate keys,
 * request size) and maps thrown EtcdErrors to gRPC statuses.
 */
import type {
  RangeRequest, RangeResponse, PutRequest, PutResponse, DeleteRangeRequest, DeleteRangeResponse,
  TxnRequest, TxnResponse, CompactionRequest, CompactionResponse,
  StatusResponse, DefragmentResponse, HashResponse, HashKVRequest, HashKVResponse,
  AlarmRequest, AlarmResponse, MoveLeaderRequest, MoveLeaderResponse,
  MemberListRequest, MemberListResponse, ResponseHeader,
  LeaseGrantRequest, LeaseGrantResponse, LeaseRevokeRequest, LeaseRevokeResponse,
  LeaseTimeToLiveRequest, LeaseTimeToLiveResponse, LeaseLeasesResponse, etcdserverpb as pb,
} from '../proto/index.js';
import type { WatchableStore } from '../mvcc/index.js';
import type { AuthApi, AuthInfo } from './auth-server.js';
import type { Waiter } from './wait.js';

export type { WatchableStore, WatchStream, WatchStreamBounds, Queued, QueuedItem, Fanout } from '../mvcc/index.js';

export interface HealthReport {
  health: boolean;
  /** Empty when healthy; otherwise etcd's reason, e.g. "NOSPACE" or "RAFT NO LEADER". */
  reason: string;
}

/** Options of an /health check (etcd 3.5's query parameters). */
export interface HealthQuery {
  /** Alarm names ("NOSPACE") that do not make the member unhealthy (?exclude=). */
  excludedAlarms: ReadonlySet<string>;
  /** ?serializable=true: check the local member only (no leader, no raft round). */
  serializable: boolean;
}

/** A point-in-time copy of the backend, streamed to the client in chunks. */
export interface BackendSnapshot {
  readonly size: number;
  /** Chunks of the backend copy; the API appends etcd's trailing sha256 itself. */
  chunks(): AsyncIterable<Uint8Array>;
  close(): Promise<void>;
}

/**
 * What a range's answer is made into, synchronously (the gRPC service encodes it): the
 * record handed to oneKey is valid only during that call.
 */
export interface RangeAnswer<T> {
  /** Any range, its KeyValues decoded. */
  response(resp: RangeResponse): T;
  /**
   * A one-key range with no revision filter (mvcc's isOneKeyRead), without its KeyValue:
   * `record` is the key's record as stored, a marshalled mvccpb.KeyValue (the message
   * RangeResponse.kvs carries), or undefined (the key does not exist at the revision, or
   * count_only); `count` is 0 or 1. The response has `more` false; keys_only drops the value.
   */
  oneKey(header: ResponseHeader, record: Uint8Array | undefined, count: number, keysOnly: boolean): T;
}

export interface KVService {
  /**
   * A range; answered without a promise when nothing had to be waited for (a refusal is then
   * thrown). `ai`: who sent the request (from its token), for permission checks when auth is on.
   */
  range(req: RangeRequest, ai?: AuthInfo): RangeResponse | Promise<RangeResponse>;
  /** range, its answer made by `answer` (a one-key read from the stored record, without decoding it). */
  rangeAs<T>(req: RangeRequest, ai: AuthInfo | undefined, answer: RangeAnswer<T>): T | Promise<T>;
  /**
   * `raw`, when given, is the PutRequest exactly as the client encoded it: the server embeds
   * it in the raft entry instead of encoding the request again.
   */
  put(req: PutRequest, raw?: Uint8Array, ai?: AuthInfo): Promise<PutResponse>;
  /**
   * put, answered through `waiter` (its PutResponse, or an EtcdError refusal) instead of a
   * promise: the hot write path, where the gRPC call itself waits for the apply. A refusal
   * found before proposing is also given to `waiter`, never thrown.
   */
  putTo(req: PutRequest, raw: Uint8Array | undefined, ai: AuthInfo | undefined, waiter: Waiter): void;
  deleteRange(req: DeleteRangeRequest, ai?: AuthInfo): Promise<DeleteRangeResponse>;
  /** deleteRange answered through `waiter`, as putTo. */
  deleteRangeTo(req: DeleteRangeRequest, ai: AuthInfo | undefined, waiter: Waiter): void;
  txn(req: TxnRequest, ai?: AuthInfo): Promise<TxnResponse>;
  /** txn answered through `waiter`, as putTo (a read-only txn too; `raw` is reused only for a writing one). */
  txnTo(req: TxnRequest, raw: Uint8Array | undefined, ai: AuthInfo | undefined, waiter: Waiter): void;
  compact(req: CompactionRequest): Promise<CompactionResponse>;
}

export interface MaintenanceService {
  status(): Promise<StatusResponse>;
  defragment(): Promise<DefragmentResponse>;
  hash(): Promise<HashResponse>;
  hashKV(req: HashKVRequest): Promise<HashKVResponse>;
  alarm(req: AlarmRequest): Promise<AlarmResponse>;
  moveLeader(req: MoveLeaderRequest): Promise<MoveLeaderResponse>;
  snapshot(): Promise<BackendSnapshot>;
}

export interface ClusterService {
  memberList(req: MemberListRequest): Promise<MemberListResponse>;
  memberAdd(req: pb.MemberAddRequest): Promise<pb.MemberAddResponse>;
  memberRemove(req: pb.MemberRemoveRequest): Promise<pb.MemberRemoveResponse>;
  memberUpdate(req: pb.MemberUpdateRequest): Promise<pb.MemberUpdateResponse>;
  memberPromote(req: pb.MemberPromoteRequest): Promise<pb.MemberPromoteResponse>;
  /** Whether this member is a learner: it then serves only Status and serializable ranges (etcd's interceptor). */
  isLearner(): boolean;
  /** Whether the member knows a leader: calls carrying `hasleader` metadata need one (etcd's interceptors). */
  hasLeader(): boolean;
}

/** What the Watch service needs of the member (api/watch-service.ts). */
export interface WatchHost {
  readonly watchable: WatchableStore;
  /** Whether the member knows a leader (streams opened with `hasleader` metadata need one). */
  hasLeader(): boolean;
  /** --experimental-watch-progress-notify-interval, in ms. */
  readonly progressNotifyIntervalMs: number;
  /** --election-timeout: `hasleader` streams end after three of these without a leader (etcd's monitorLeader). */
  readonly electionTimeoutMs: number;
}

/** etcd's Lease requests (server/lease-host.ts). Failures are thrown as EtcdError. */
export interface LeaseService {
  /** `ai`: the caller, carried in the proposal's header (a revoke is checked against it at apply). */
  leaseGrant(req: LeaseGrantRequest, ai?: AuthInfo): Promise<LeaseGrantResponse>;
  leaseRevoke(req: LeaseRevokeRequest, ai?: AuthInfo): Promise<LeaseRevokeResponse>;
  /** Renews lease `id` (on the leader; a follower forwards): its TTL, or LeaseNotFound. */
  leaseRenew(id: bigint): Promise<number>;
  /** LeaseNotFound for an unknown lease (the API answers TTL -1, as etcd's v3rpc does). */
  leaseTimeToLive(req: LeaseTimeToLiveRequest): Promise<LeaseTimeToLiveResponse>;
  leaseLeases(): Promise<LeaseLeasesResponse>;
}

/** The whole member as the API sees it. */
export interface EtcdService extends KVService, MaintenanceService, ClusterService {
  /** Watch support; absent: Watch answers Unimplemented. */
  readonly watch?: WatchHost;
  /** Lease support; absent: Lease answers Unimplemented. */
  readonly lease?: LeaseService;
  /** The Auth service and the permission gate. */
  readonly auth: AuthApi;
  header(): ResponseHeader;
  health(): HealthReport;
  /** etcd's /health: alarms, leader, and a request through raft (see EtcdServer.checkHealth). */
  checkHealth(q: HealthQuery): Promise<HealthReport>;
  /** Names of the raised alarms ("NOSPACE", "CORRUPT"). */
  activeAlarms(): string[];
  /** raft's status as JSON, as etcd's /debug/vars shows it under "raft.status". */
  raftStatusJson(): string;
  /** Limits the API layer enforces before a request reaches the server. */
  readonly limits: { maxTxnOps: number; maxRequestBytes: number };
}
