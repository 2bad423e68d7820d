// The one table of etcd's client-visible errors: gRPC status code and exact message text,
// as etcd 3.4's rpctypes defines them. Every layer throws these typed values; the API layer
// turns them into gRPC statuses in one place (see api/), so wording never drifts.
// Generated from etcdserver/api/v3rpc/rpctypes/error.go and kept by hand since.

/** gRPC status codes (google.golang.org/grpc/codes). */
export const GrpcCode = {
  OK: 0,
  Canceled: 1,
  Unknown: 2,
  InvalidArgument: 3,
  DeadlineExceeded: 4,
  NotFound: 5,
  AlreadyExists: 6,
  PermissionDenied: 7,
  ResourceExhausted: 8,
  FailedPrecondition: 9,
  Aborted: 10,
  OutOfRange: 11,
  Unimplemented: 12,
  Internal: 13,
  Unavailable: 14,
  DataLoss: 15,
  Unauthenticated: 16,
} as const;
export type GrpcCode = (typeof GrpcCode)[keyof typeof GrpcCode];

/** grpc-go's codes.Code.String(): the constant's name. */
export function grpcCodeName(code: GrpcCode): string {
  return Object.entries(GrpcCode).find(([, v]) => v === code)?.[0] ?? `Code(${code})`;
}

/** An error a client sees: a gRPC code and etcd's exact message. */
export class EtcdError extends Error {
  constructor(
    /** Key into {@link Errors}; stable identifier for tests and metrics. */
    readonly kind: ErrorKind,
    readonly code: GrpcCode,
    message: string,
  ) {
    super(message);
    this.name = 'EtcdError';
  }
}

const table = {
  EmptyKey: [GrpcCode.InvalidArgument, "etcdserver: key is not provided"],
  KeyNotFound: [GrpcCode.InvalidArgument, "etcdserver: key not found"],
  ValueProvided: [GrpcCode.InvalidArgument, "etcdserver: value is provided"],
  LeaseProvided: [GrpcCode.InvalidArgument, "etcdserver: lease is provided"],
  TooManyOps: [GrpcCode.InvalidArgument, "etcdserver: too many operations in txn request"],
  DuplicateKey: [GrpcCode.InvalidArgument, "etcdserver: duplicate key given in txn request"],
  Compacted: [GrpcCode.OutOfRange, "etcdserver: mvcc: required revision has been compacted"],
  FutureRev: [GrpcCode.OutOfRange, "etcdserver: mvcc: required revision is a future revision"],
  NoSpace: [GrpcCode.ResourceExhausted, "etcdserver: mvcc: database space exceeded"],
  LeaseNotFound: [GrpcCode.NotFound, "etcdserver: requested lease not found"],
  LeaseExist: [GrpcCode.FailedPrecondition, "etcdserver: lease already exists"],
  LeaseTTLTooLarge: [GrpcCode.OutOfRange, "etcdserver: too large lease TTL"],
  WatchCanceled: [GrpcCode.Canceled, "etcdserver: watch canceled"],
  MemberExist: [GrpcCode.FailedPrecondition, "etcdserver: member ID already exist"],
  PeerURLExist: [GrpcCode.FailedPrecondition, "etcdserver: Peer URLs already exists"],
  // etcd maps it to rpctypes' client-side error, not a gRPC status: clients see Unknown.
  MemberNotEnoughStarted: [GrpcCode.Unknown, "etcdserver: re-configuration failed due to not enough started members"],
  MemberBadURLs: [GrpcCode.InvalidArgument, "etcdserver: given member URLs are invalid"],
  MemberNotFound: [GrpcCode.NotFound, "etcdserver: member not found"],
  MemberNotLearner: [GrpcCode.FailedPrecondition, "etcdserver: can only promote a learner member"],
  LearnerNotReady: [GrpcCode.FailedPrecondition, "etcdserver: can only promote a learner member which is in sync with leader"],
  TooManyLearners: [GrpcCode.FailedPrecondition, "etcdserver: too many learner members in cluster"],
  RequestTooLarge: [GrpcCode.InvalidArgument, "etcdserver: request is too large"],
  RequestTooManyRequests: [GrpcCode.ResourceExhausted, "etcdserver: too many requests"],
  RootUserNotExist: [GrpcCode.FailedPrecondition, "etcdserver: root user does not exist"],
  RootRoleNotExist: [GrpcCode.FailedPrecondition, "etcdserver: root user does not have root role"],
  UserAlreadyExist: [GrpcCode.FailedPrecondition, "etcdserver: user name already exists"],
  UserEmpty: [GrpcCode.InvalidArgument, "etcdserver: user name is empty"],
  UserNotFound: [GrpcCode.FailedPrecondition, "etcdserver: user name not found"],
  RoleAlreadyExist: [GrpcCode.FailedPrecondition, "etcdserver: role name already exists"],
  RoleNotFound: [GrpcCode.FailedPrecondition, "etcdserver: role name not found"],
  RoleEmpty: [GrpcCode.InvalidArgument, "etcdserver: role name is empty"],
  AuthFailed: [GrpcCode.InvalidArgument, "etcdserver: authentication failed, invalid user ID or password"],
  PermissionDenied: [GrpcCode.PermissionDenied, "etcdserver: permission denied"],
  RoleNotGranted: [GrpcCode.FailedPrecondition, "etcdserver: role is not granted to the user"],
  PermissionNotGranted: [GrpcCode.FailedPrecondition, "etcdserver: permission is not granted to the role"],
  // auth.ErrNoPasswordUser is not in rpctypes: etcd passes it on as Unknown with its own text.
  NoPasswordUser: [GrpcCode.Unknown, "auth: authentication failed, password was given for no password user"],
  // Not etcd's: LMDB keys are at most 1978 bytes, bbolt's 32 KiB; names past it are refused.
  AuthNameTooLong: [GrpcCode.InvalidArgument, "concord: user or role name is longer than 1978 bytes"],
  AuthNotEnabled: [GrpcCode.FailedPrecondition, "etcdserver: authentication is not enabled"],
  // auth.ErrVerifyOnly (a JWT provider given only a public key cannot sign): not in rpctypes, so Unknown.
  JwtVerifyOnly: [GrpcCode.Unknown, "auth: token signing attempted with verify-only key"],
  InvalidAuthToken: [GrpcCode.Unauthenticated, "etcdserver: invalid auth token"],
  InvalidAuthMgmt: [GrpcCode.InvalidArgument, "etcdserver: invalid auth management"],
  AuthOldRevision: [GrpcCode.InvalidArgument, "etcdserver: revision of auth store is old"],
  NoLeader: [GrpcCode.Unavailable, "etcdserver: no leader"],
  NotLeader: [GrpcCode.FailedPrecondition, "etcdserver: not leader"],
  LeaderChanged: [GrpcCode.Unavailable, "etcdserver: leader changed"],
  NotCapable: [GrpcCode.Unavailable, "etcdserver: not capable"],
  Stopped: [GrpcCode.Unavailable, "etcdserver: server stopped"],
  Timeout: [GrpcCode.Unavailable, "etcdserver: request timed out"],
  TimeoutDueToLeaderFail: [GrpcCode.Unavailable, "etcdserver: request timed out, possibly due to previous leader failure"],
  TimeoutDueToConnectionLost: [GrpcCode.Unavailable, "etcdserver: request timed out, possibly due to connection lost"],
  TimeoutWaitAppliedIndex: [GrpcCode.Unavailable, "etcdserver: request timed out, waiting for the applied index took too long"],
  Unhealthy: [GrpcCode.Unavailable, "etcdserver: unhealthy cluster"],
  Corrupt: [GrpcCode.DataLoss, "etcdserver: corrupt cluster"],
  NotSupportedForLearner: [GrpcCode.Unavailable, "etcdserver: rpc not supported for learner"],
  BadLeaderTransferee: [GrpcCode.FailedPrecondition, "etcdserver: bad leader transferee"],
  // Not in rpctypes: etcd's togRPCError passes unmapped server errors on as Unknown.
  TimeoutLeaderTransfer: [GrpcCode.Unknown, "etcdserver: request timed out, leader transfer took too long"],
  // Not in rpctypes: a proposal that waited its whole request timeout for a leader (raft's
  // Propose blocks meanwhile) ends on Go's context error, which etcd passes on as Unknown.
  ProposalDeadlineExceeded: [GrpcCode.Unknown, "context deadline exceeded"],
} as const satisfies Record<string, readonly [GrpcCode, string]>;

export type ErrorKind = keyof typeof table;

/** Every kind in the table (clients map a received code + message back to its kind). */
export const errorKinds: readonly ErrorKind[] = Object.keys(table) as ErrorKind[];

/** Creates a fresh error of the given kind (fresh so that stacks point at the thrower). */
export function etcdError(kind: ErrorKind): EtcdError {
  const [code, message] = table[kind];
  return new EtcdError(kind, code, message);
}

/** Code and message for a kind, without allocating an Error (hot paths). */
export function errorStatus(kind: ErrorKind): readonly [GrpcCode, string] {
  return table[kind];
}

export function isEtcdError(e: unknown, kind?: ErrorKind): e is EtcdError {
  return e instanceof EtcdError && (kind === undefined || e.kind === kind);
}

/**
 * The auth store's own texts (auth/store.go), which reach clients untranslated, as gRPC
 * Unknown, where etcd forgets to map them: its Maintenance admin checks (authMaintenanceServer).
 */
const authStoreMessages: Partial<Record<ErrorKind, string>> = {
  UserEmpty: 'auth: user name is empty',
  UserNotFound: 'auth: user not found',
  PermissionDenied: 'auth: permission denied',
  InvalidAuthToken: 'auth: invalid auth token',
  AuthOldRevision: 'auth: revision in header is old',
};

/** `e` as etcd passes an unmapped auth store error on: Unknown with the store's text. */
export function untranslatedAuthError(e: EtcdError): EtcdError {
  const message = authStoreMessages[e.kind];
  return message === undefined ? e : new EtcdError(e.kind, GrpcCode.Unknown, message);
}
