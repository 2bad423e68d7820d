// What a client call can fail with, each as its own class so callers branch with instanceof
// (never on message text):
// - etcd's conditions: one subclass of errors/'s EtcdError per kind of the server's table,
//   found from the received gRPC code and message (the same table the server throws from, so
//   a message that drifts on one side drifts on both and the tests see it);
// - the client's own: no endpoint reachable, deadline exceeded, a watch that fell behind a
//   compaction, a lease that was lost;
// - any other gRPC status (Unimplemented, a transport's Unavailable, ...) as GrpcStatusError
//   with its code, so "this server has no Lease service yet" is a testable condition.
import { EtcdError, errorKinds, errorStatus, GrpcCode, type ErrorKind } from '../errors/index.js';

export { EtcdError, GrpcCode };
export type { ErrorKind };

/** The class of one kind: `err instanceof EtcdErrors.Compacted`. */
export type EtcdErrorClass<K extends ErrorKind> = new () => EtcdError & { readonly kind: K };

function classFor<K extends ErrorKind>(kind: K): EtcdErrorClass<K> {
  const [code, message] = errorStatus(kind);
  const cls = class extends EtcdError {
    declare readonly kind: K;
    constructor() {
      super(kind, code, message);
      this.name = `${kind}Error`;
    }
  };
  Object.defineProperty(cls, 'name', { value: `${kind}Error` });
  return cls;
}

/** One class per etcd error condition, keyed by the kind's name in errors/'s table. */
export const EtcdErrors = Object.fromEntries(errorKinds.map((k) => [k, classFor(k)])) as {
  readonly [K in ErrorKind]: EtcdErrorClass<K>;
};

/** code + "\0" + message -> kind; the lookup a received status goes through. */
const kindByStatus = new Map<string, ErrorKind>(errorKinds.map((k) => {
  const [code, message] = errorStatus(k);
  return [`${code}\0${message}`, k];
}));

/** A gRPC status that is none of etcd's conditions (Unimplemented, transport failures, ...). */
export class GrpcStatusError extends Error {
  constructor(readonly code: number, readonly details: string) {
    super(details);
    this.name = 'GrpcStatusError';
  }
}

/** The call's deadline passed (etcdctl words it as Go's context does). */
export class DeadlineExceededError extends Error {
  readonly code = GrpcCode.DeadlineExceeded;
  constructor() {
    super('context deadline exceeded');
    this.name = 'DeadlineExceededError';
  }
}

/** None of the endpoints could be connected to before the dial timeout or the deadline. */
export class NoAvailableEndpointError extends Error {
  readonly code = GrpcCode.Unavailable;
  constructor(readonly endpoints: readonly string[], readonly lastError?: string) {
    super('context deadline exceeded');
    this.name = 'NoAvailableEndpointError';
  }
}

/** A watch whose next revision was compacted away: events from compactRevision on are still there. */
export class WatchCompactedError extends Error {
  constructor(readonly compactRevision: number) {
    super(`etcdserver: mvcc: required revision has been compacted (compact revision ${compactRevision})`);
    this.name = 'WatchCompactedError';
  }
}

/** The server canceled a watch for a reason other than compaction (cancel_reason as sent). */
export class WatchCanceledError extends Error {
  constructor(reason: string) {
    super(reason || 'etcdserver: watch canceled');
    this.name = 'WatchCanceledError';
  }
}

/** A kept-alive lease that expired or was revoked before it could be renewed. */
export class LeaseLostError extends Error {
  constructor(readonly leaseId: bigint, why: string) {
    super(`lease ${leaseId.toString(16)} lost: ${why}`);
    this.name = 'LeaseLostError';
  }
}

/** The error a gRPC status becomes on the client side. */
export function errorFromStatus(code: number, details: string): Error {
  const kind = kindByStatus.get(`${code}\0${details}`);
  if (kind !== undefined) return new EtcdErrors[kind]();
  if (code === GrpcCode.DeadlineExceeded) return new DeadlineExceededError();
  return new GrpcStatusError(code, details);
}

/** Whether the failure is the connection's rather than the server's answer: worth another endpoint. */
export function isTransportFailure(e: unknown): boolean {
  return e instanceof GrpcStatusError && e.code === GrpcCode.Unavailable;
}

/** The server does not offer this service (e.g. Concord before its Lease service). */
export function isUnimplemented(e: unknown): boolean {
  return e instanceof GrpcStatusError && e.code === GrpcCode.Unimplemented;
}
