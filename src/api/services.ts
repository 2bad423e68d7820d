/**
 * etcd's v3 gRPC services bound to an EtcdService: request checks as etcd's v3rpc makes
 * them (validate.ts), then the member's answer. Services later issues fill in (Watch,
 * Lease, Auth, the rest of Cluster) answer Unimplemented until then.
 *
 * Each method is "bytes in, bytes out" (`etcdMethods`): decode with the generated codec,
 * check, call the service, encode. The same table serves both API modes: registered on a
 * GrpcServer in this thread (`registerEtcdServices`), or driven from the transport worker
 * thread through the batched bridge (thread.ts), where only raw message bytes cross.
 */
import { createHash } from 'node:crypto';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { GrpcCode, errorStatus, etcdError, grpcCodeName, isEtcdError, untranslatedAuthError } from '../errors/index.js';
import { etcdserverpb as pb } from '../proto/index.js';
import type { Logger } from '../log/index.js';
import { decodePutRequestBody, decodeTxnRequestBody, isTxnReadOnly, type AuthInfo, type EtcdService, type RangeAnswer, type Waiter } from '../server/index.js';
import { authMethods, type AuthedUnary } from './auth-service.js';
import { decodeRangeRequest, encodeOneKeyRangeResponse, encodePutResponse, encodeRangeResponse, snapshotResponseBytes, snapshotResponseToFill } from './fast-codecs.js';
import { Reader, WIRE_BYTES, wireShapeError } from '../proto/index.js';
import { registerWatchService, watchPath, type WatchCall } from './watch-service.js';
import { lockElectionMethods, registerLockElection } from './lock-election.js';
import { requiresLeader, tokenOf } from './metadata.js';
export { tokenOf };
import { leaseHandlers, leaseKeepAlivePath, registerLeaseKeepAlive } from './lease-service.js';
import type { Codec } from './grpc/framing.js';
import { GrpcServer, GrpcStatusError, replyLater, unmarshalError, type ServerCall } from './grpc/index.js';
import type { TLSSocket } from 'node:tls';
import {
  checkDeleteRequest, checkPutRequest, checkRangeRequest, checkRequestSize, checkTxn, requestIdVarintBytes,
} from './validate.js';


/** etcd's snapshotSendBufferSize: the blob size of every Snapshot message but the last two. */
export const snapshotChunkBytes = 32 * 1024;

/**
 * What a method makes of the caller's `token` (etcd calls AuthInfoFromCtx per method, or not):
 * 'checked' (the default) resolves it and answers etcd's "invalid auth token"; 'ignored'
 * never looks at it (MemberList, Status, MoveLeader, LeaseTimeToLive, LeaseLeases); 'raw'
 * resolves it but a refusal reaches the client as the auth store's own text with code Unknown
 * (etcd's maintenance server returns those errors unmapped: Alarm, Defragment, Hash, HashKV, Snapshot).
 */
export type TokenUse = 'checked' | 'ignored' | 'raw';

/** A unary method: request message bytes in, response message bytes out (or a thrown status). */
export interface UnaryMethod {
  readonly kind: 'unary';
  readonly path: string;
  readonly token?: TokenUse;
  /**
   * `ai`: the caller, from its `token` metadata (MethodTable.identify). The response bytes
   * come without a promise when the handler answered at once (a serializable Range: no
   * promise and no microtask turn per call); a refusal is always a rejected promise.
   */
  run(body: Buffer, ai?: AuthInfo): Uint8Array | Promise<Uint8Array>;
  /**
   * The callback form of `run`, on the write paths (Put, DeleteRange, Txn): the answer goes to
   * `reply`, the apply's result (made bytes by `encodeResult`) or a refusal, instead of a
   * promise, so the gRPC call itself can wait in the proposal registry (registerMethods). A
   * request refused before reaching the service (decode, checks) throws.
   */
  start?(body: Buffer, ai: AuthInfo | undefined, reply: Waiter): void;
  /** The response bytes of a result handed to `start`'s reply. */
  readonly encodeResult?: (result: any) => Uint8Array;
}

/**
 * A server-streaming method: the encoded response messages, pulled one at a time (flow
 * control). A method may reuse a message's bytes once the next one is pulled, so each consumer
 * (registerMethods, the worker-thread API's pump, the JSON gateway) copies or is done with a
 * message before it pulls the next.
 */
export interface StreamMethod {
  readonly kind: 'serverStream';
  readonly path: string;
  readonly token?: TokenUse;
  open(body: Buffer, ai?: AuthInfo): AsyncGenerator<Uint8Array, void, undefined>;
}

export type EtcdMethod = UnaryMethod | StreamMethod;

export interface MethodTable {
  readonly methods: EtcdMethod[];
  /** Paths that exist in etcd's API but are not served yet, with their Unimplemented message. */
  readonly unimplemented: Array<{ path: string; message: string }>;
  /**
   * The caller behind a `token` metadata value; without one, the verified client
   * certificate's CN when --client-cert-auth is on (etcd's AuthInfoFromTLS); else undefined.
   * Throws etcd's invalid auth token.
   */
  identify(token: string | string[] | undefined, call?: ServerCall): AuthInfo | undefined;
  /**
   * etcd's interceptors before any handler: a call with `hasleader` metadata (`requireLeader`,
   * metadata.ts) to a member that knows no leader gets "etcdserver: no leader" (after the
   * learner refusal, which comes first). `body`: a unary call's request.
   */
  admit(m: EtcdMethod, requireLeader: boolean, body?: Buffer): void;
}

/**
 * PutRequest with key and value as views into the request body instead of copies (the hot
 * path: the body is kept anyway, as the raft entry's payload, and nothing reuses it).
 */
const putRequestViews: Codec<pb.PutRequest> = { encode: pb.PutRequest.encode, decode: decodePutRequestBody };

/** RangeRequest with key and range_end as views into the request body (fast-codecs.ts). */
const rangeRequestViews: Codec<pb.RangeRequest> = { encode: pb.RangeRequest.encode, decode: decodeRangeRequest };

/** TxnRequest with its puts' keys and values as views into the request body (kept as a writing txn's raft payload). */
const txnRequestViews: Codec<pb.TxnRequest> = { encode: pb.TxnRequest.encode, decode: decodeTxnRequestBody };

/** The proto message name of each generated codec, for etcd's wording of decode errors. */
const messageNames = new Map<unknown, string>([...Object.entries(pb).map(([name, codec]): [unknown, string] => [codec, name]),
  [putRequestViews, 'PutRequest'], [rangeRequestViews, 'RangeRequest'], [txnRequestViews, 'TxnRequest']]);

function decodeRequest<T>(codec: Codec<T>, body: Buffer): T {
  // The generated codec stops silently at a tag of 0 where etcd refuses the message; walk
  // the top level as gogoproto does first, so what we accept is what etcd accepts.
  const shapeError = wireShapeError(body, messageNames.get(codec) ?? 'Message');
  if (shapeError !== undefined) throw new GrpcStatusError(GrpcCode.Internal, `grpc: error unmarshalling request: ${shapeError}`);
  try {
    return codec.decode(body);
  } catch (e) {
    throw unmarshalError(e);
  }
}

/** `encode`, with a refused message answered as grpc-go answers a marshal error. */
function encodeResponse<T>(encode: (res: T) => Uint8Array, res: T): Uint8Array {
  try {
    return encode(res);
  } catch (e) {
    throw new GrpcStatusError(GrpcCode.Internal, `grpc: error while marshaling: ${(e as Error).message}`);
  }
}

const encodeDeleteRangeResponse = (r: pb.DeleteRangeResponse): Uint8Array => pb.DeleteRangeResponse.encode(r).finish();
const encodeTxnResponse = (r: pb.TxnResponse): Uint8Array => pb.TxnResponse.encode(r).finish();

/** A handler's answer that is already the response's bytes. */
const alreadyEncoded = (bytes: Uint8Array): Uint8Array => bytes;

/** A Range's answer as response bytes; a one-key read's straight from its stored record. */
const rangeResponseBytes: RangeAnswer<Uint8Array> = {
  response: (resp) => encodeResponse(encodeRangeResponse, resp),
  oneKey: encodeOneKeyRangeResponse,
};

function unary<Req, Res>(path: string, req: Codec<Req>, res: Codec<Res> | ((r: Res) => Uint8Array),
  handler: (request: Req, requestBytes: number, body: Buffer, ai: AuthInfo | undefined) => Promise<Res> | Res): UnaryMethod {
  const encodeBytes = typeof res === 'function' ? res : (r: Res) => res.encode(r).finish();
  const encode = (r: Res): Uint8Array => encodeResponse(encodeBytes, r);
  return {
    kind: 'unary',
    path,
    // Every throw becomes a rejection, as in an async function, without its frame and
    // promise: this runs for every unary call.
    run(body: Buffer, ai?: AuthInfo): Uint8Array | Promise<Uint8Array> {
      try {
        const r = handler(decodeRequest(req, body), body.length, body, ai);
        return r instanceof Promise ? r.then(encode) : encode(r);
      } catch (e) {
        return Promise.reject(e);
      }
    },
  };
}

/**
 * A unary method answered through a Waiter (UnaryMethod.start): `handler` hands `reply` to the
 * service, which resolves it with the result `encode` makes bytes. `run` (the JSON gateway,
 * the worker-thread API) is the same call with a promise around it.
 */
function callbackUnary<Req, Res>(path: string, req: Codec<Req>, encode: (r: Res) => Uint8Array,
  handler: (request: Req, requestBytes: number, body: Buffer, ai: AuthInfo | undefined, reply: Waiter) => void): UnaryMethod {
  const start = (body: Buffer, ai: AuthInfo | undefined, reply: Waiter): void => handler(decodeRequest(req, body), body.length, body, ai, reply);
  return {
    kind: 'unary',
    path,
    start,
    encodeResult: encode,
    run: (body, ai) => new Promise<Uint8Array>((resolve, reject) => start(body, ai, {
      resolve: (r) => { try { resolve(encodeResponse(encode, r as Res)); } catch (e) { reject(e); } },
      reject,
    })),
  };
}

/** etcd's v3 API as a table of bytes-in, bytes-out methods over `service`. */
export function etcdMethods(service: EtcdService, log?: Logger, clientCertAuth = false): MethodTable {
  const { maxTxnOps, maxRequestBytes } = service.limits;
  const idBytes = requestIdVarintBytes(service.header().memberId);
  const checkSize = (messageBytes: number): void => checkRequestSize(messageBytes, maxRequestBytes, idBytes);
  const kv = (m: string): string => `/etcdserverpb.KV/${m}`;
  const mt = (m: string): string => `/etcdserverpb.Maintenance/${m}`;
  /** `m` with its TokenUse. */
  const token = (use: TokenUse, m: UnaryMethod): UnaryMethod => ({ ...m, token: use });
  /** Runs `fn` if the caller may administer the cluster (etcd's IsAdminPermitted). */
  const admin = <T>(ai: AuthInfo | undefined, fn: () => Promise<T>): Promise<T> => {
    checkMaintenanceAdmin(service, ai);
    return fn();
  };
  const cl = (m: string): string => `/etcdserverpb.Cluster/${m}`;
  /** etcd's checkMembershipOperationPermission: the auth store's own (mapped) errors. */
  const member = <T>(ai: AuthInfo | undefined, fn: () => Promise<T>): Promise<T> => {
    if (service.auth.enabled) service.auth.checkAdmin(ai);
    return fn();
  };
  const methods: EtcdMethod[] = [
    // --- KV (etcd: v3rpc/key.go; the size check is etcd's raft-proposal check, see validate.ts) ---
    unary(kv('Range'), rangeRequestViews, alreadyEncoded, (req, _bytes, _body, ai) => {
      if (!req.serializable && service.isLearner()) throw etcdError('NotSupportedForLearner');
      checkRangeRequest(req);
      return service.rangeAs(req, ai, rangeResponseBytes);
    }),
    callbackUnary(kv('Put'), putRequestViews, encodePutResponse, (req, bytes, body, ai, reply) => {
      checkPutRequest(req);
      checkSize(bytes);
      service.putTo(req, body, ai, reply);
    }),
    callbackUnary(kv('DeleteRange'), pb.DeleteRangeRequest, encodeDeleteRangeResponse, (req, bytes, _body, ai, reply) => {
      checkDeleteRequest(req);
      checkSize(bytes);
      service.deleteRangeTo(req, ai, reply);
    }),
    callbackUnary(kv('Txn'), txnRequestViews, encodeTxnResponse, (req, bytes, body, ai, reply) => {
      checkTxn(req, maxTxnOps);
      // A read-only txn is served like a range in etcd, never proposed, so never too large.
      if (!isTxnReadOnly(req)) checkSize(bytes);
      service.txnTo(req, body, ai, reply);
    }),
    unary(kv('Compact'), pb.CompactionRequest, pb.CompactionResponse, (req) => service.compact(req)),

    // --- Maintenance (etcd: v3rpc/maintenance.go) ---
    token('raw', unary(mt('Alarm'), pb.AlarmRequest, pb.AlarmResponse, (req) => service.alarm(req))),
    token('ignored', unary(mt('Status'), pb.StatusRequest, pb.StatusResponse, () => service.status())),
    // etcd's authMaintenanceServer: these need the root role when auth is on (MoveLeader does not, in 3.4).
    token('raw', unary(mt('Defragment'), pb.DefragmentRequest, pb.DefragmentResponse, (_r, _b, _body, ai) => admin(ai, () => service.defragment()))),
    token('raw', unary(mt('Hash'), pb.HashRequest, pb.HashResponse, (_r, _b, _body, ai) => admin(ai, () => service.hash()))),
    token('raw', unary(mt('HashKV'), pb.HashKVRequest, pb.HashKVResponse, (req, _b, _body, ai) => admin(ai, () => service.hashKV(req)))),
    token('ignored', unary(mt('MoveLeader'), pb.MoveLeaderRequest, pb.MoveLeaderResponse, (req) => service.moveLeader(req))),
    {
      kind: 'serverStream',
      path: mt('Snapshot'),
      token: 'raw',
      async *open(body: Buffer, ai?: AuthInfo) {
        decodeRequest(pb.SnapshotRequest, body);
        checkMaintenanceAdmin(service, ai);
        yield* snapshotMessages(service, log);
      },
    },

    // --- Cluster (etcd: v3rpc/member.go; changes need the root role when auth is on) ---
    token('ignored', unary(cl('MemberList'), pb.MemberListRequest, pb.MemberListResponse, (req) => service.memberList(req))),
    unary(cl('MemberAdd'), pb.MemberAddRequest, pb.MemberAddResponse, (req, _b, _body, ai) => member(ai, () => service.memberAdd(req))),
    unary(cl('MemberRemove'), pb.MemberRemoveRequest, pb.MemberRemoveResponse, (req, _b, _body, ai) => member(ai, () => service.memberRemove(req))),
    unary(cl('MemberUpdate'), pb.MemberUpdateRequest, pb.MemberUpdateResponse, (req, _b, _body, ai) => member(ai, () => service.memberUpdate(req))),
    unary(cl('MemberPromote'), pb.MemberPromoteRequest, pb.MemberPromoteResponse, (req, _b, _body, ai) => member(ai, () => service.memberPromote(req))),

    // --- grpc.health.v1 (etcd registers it with "" SERVING; load balancers use it) ---
    token('ignored', unary('/grpc.health.v1.Health/Check', healthCheckRequest, healthCheckResponse, (req) => {
      if (req.service !== '') throw new GrpcStatusError(GrpcCode.NotFound, 'unknown service');
      return { status: 1 /* SERVING */ };
    })),
  ];
  if (service.lease !== undefined) {
    // --- Lease (etcd: v3rpc/lease.go); LeaseKeepAlive is a bidi stream: registerEtcdServices ---
    const ls = leaseHandlers(service.lease, () => service.header());
    const le = (m: string): string => `/etcdserverpb.Lease/${m}`;
    methods.push(
      unary(le('LeaseGrant'), pb.LeaseGrantRequest, pb.LeaseGrantResponse, (req, _b, _body, ai) => ls.grant(req, ai)),
      unary(le('LeaseRevoke'), pb.LeaseRevokeRequest, pb.LeaseRevokeResponse, (req, _b, _body, ai) => ls.revoke(req, ai)),
      token('ignored', unary(le('LeaseTimeToLive'), pb.LeaseTimeToLiveRequest, pb.LeaseTimeToLiveResponse, (req) => ls.timeToLive(req))),
      token('ignored', unary(le('LeaseLeases'), pb.LeaseLeasesRequest, pb.LeaseLeasesResponse, () => ls.leases())),
    );
  }

  // --- Auth (etcd: v3rpc/auth.go) ---
  const authedUnary: AuthedUnary = (path, req, res, handler) => unary(path, req, res, (r, _b, _body, ai) => handler(r, ai));
  // etcd's Authenticate never reads the caller's token (a stale one must not stop a new login).
  methods.push(...authMethods<UnaryMethod>(service, authedUnary).map((m) => (m.path === '/etcdserverpb.Auth/Authenticate' ? token('ignored', m) : m)));

  const unimplemented: MethodTable['unimplemented'] = [];
  const notYet = (svc: string, method: string): void => {
    unimplemented.push({ path: `/etcdserverpb.${svc}/${method}`, message: `concord: etcdserverpb.${svc}/${method} is not implemented yet` });
  };
  // --- Served by later issues ---
  notYet('Watch', 'Watch');
  if (service.lease === undefined) for (const m of ['LeaseGrant', 'LeaseRevoke', 'LeaseTimeToLive', 'LeaseLeases']) notYet('Lease', m);
  notYet('Lease', 'LeaseKeepAlive'); // served on this thread's GrpcServer when there is a lessor (registerEtcdServices)
  const identify = (token: string | string[] | undefined, call?: ServerCall): AuthInfo | undefined => {
    const t = Array.isArray(token) ? token[0] : token;
    if (t !== undefined) return service.auth.authInfo(t);
    if (!clientCertAuth || call === undefined) return undefined;
    const cn = peerCommonName(call);
    return cn === undefined ? undefined : service.auth.authInfoFromCommonName(cn);
  };
  const admit = (m: EtcdMethod, requireLeader: boolean, body?: Buffer): void => {
    // etcd's interceptor refuses a learner's unsupported call before it looks at hasleader;
    // a linearizable Range is one (decoded here only on a learner; the handler refuses it).
    if (!requireLeader) return;
    if (service.isLearner() && (!learnerServes(m.path) || (m.path === rangePath && body !== undefined && !decodeRequest(rangeRequestViews, body).serializable))) return;
    refuseWithoutLeader(service);
  };
  return { methods: methods.map((m) => learnerGate(service, m)), unimplemented, identify, admit };
}

/** The calls a learner serves (Range only when serializable: the Range handler checks). */
function learnerServes(path: string): boolean {
  return path === '/etcdserverpb.Maintenance/Status' || path === rangePath;
}

const rangePath = '/etcdserverpb.KV/Range';

/**
 * For a call with etcd's `hasleader` metadata (clientv3.WithRequireLeader): a member that
 * knows no leader refuses it at once ("etcdserver: no leader") instead of waiting for one.
 */
function refuseWithoutLeader(service: EtcdService): void {
  if (!service.hasLeader()) throw etcdError('NoLeader');
}

/**
 * etcd's interceptors: a learner serves Status and serializable Ranges only (the Range
 * handler checks `serializable` itself); every other call, streams included, gets
 * "rpc not supported for learner".
 */
function learnerGate(service: EtcdService, m: EtcdMethod): EtcdMethod {
  if (learnerServes(m.path)) return m;
  if (m.kind === 'unary') {
    const start = m.start;
    return {
      ...m,
      run: (body, ai) => (service.isLearner() ? Promise.reject(etcdError('NotSupportedForLearner')) : m.run(body, ai)),
      ...(start === undefined ? {} : {
        start: (body: Buffer, ai: AuthInfo | undefined, reply: Waiter) => (service.isLearner() ? reply.reject(etcdError('NotSupportedForLearner')) : start(body, ai, reply)),
      }),
    };
  }
  return {
    ...m,
    async *open(body, ai) {
      if (service.isLearner()) throw etcdError('NotSupportedForLearner');
      yield* m.open(body, ai);
    },
  };
}


/** Request bodies pass through undecoded (the method table decodes). */
export const rawRequestCodec: Codec<Buffer> = {
  encode: () => { throw new Error('server never encodes requests'); },
  decode: (input: Uint8Array) => input as Buffer,
};

/** Responses arrive already encoded; frameMessage adds only the 5-byte prefix. */
export const encodedResponseCodec: Codec<Uint8Array> = {
  encode: (m: Uint8Array) => ({ finish: () => m }) as unknown as BinaryWriter,
  decode: () => { throw new Error('server never decodes responses'); },
  encoded: true,
};

/** Results made response bytes by `encode` when the call's response is sent (frameMessage). */
function resultCodec(encode: (result: any) => Uint8Array): Codec<unknown> {
  return {
    encode: () => { throw new Error('a unary result codec encodes with toBytes'); },
    decode: () => { throw new Error('server never decodes responses'); },
    toBytes: encode,
  };
}

/** etcd's bidi-streaming methods (the rest not in the table as streams are unary), for metric labels. */
const bidiPaths = new Set(['/etcdserverpb.Watch/Watch', '/etcdserverpb.Lease/LeaseKeepAlive']);

/** The caller of `m`'s call as `m` resolves it (its TokenUse); callerAsMethodUses without a closure per call. */
function callerOf(m: EtcdMethod, table: MethodTable, call: ServerCall): AuthInfo | undefined {
  if (m.token === 'ignored') return undefined;
  try {
    return table.identify(tokenOf(call.headers), call);
  } catch (e) {
    throw refusalAsMethodGives(m, e);
  }
}

/**
 * The caller `identify` gives, as `m`'s TokenUse takes it: not asked at all ('ignored'), or
 * its refusal passed on as the method answers it ('raw': the auth store's own text). gRPC and
 * the JSON gateway both resolve callers here, so a bad token gets one answer on both.
 */
export function callerAsMethodUses(m: EtcdMethod, identify: () => AuthInfo | undefined): AuthInfo | undefined {
  if (m.token === 'ignored') return undefined;
  try {
    return identify();
  } catch (e) {
    throw refusalAsMethodGives(m, e);
  }
}

/** An identify() refusal as `m` answers it: a 'raw' method passes on the auth store's own text. */
function refusalAsMethodGives(m: EtcdMethod, e: unknown): unknown {
  return m.token === 'raw' && isEtcdError(e) ? untranslatedAuthError(e) : e;
}

/** Registers a method table on a GrpcServer in this thread. */
export function registerMethods(grpc: GrpcServer, table: MethodTable): void {
  for (const m of table.methods) {
    if (m.kind === 'unary' && m.start !== undefined) {
      // The call waits for its apply as the proposal's waiter (ServerCall.resolve/reject): no
      // promise, closure or record per call between the handler and the response (issue 14).
      const start = m.start;
      grpc.addUnary(m.path, rawRequestCodec, resultCodec(m.encodeResult!), (body, call) => {
        table.admit(m, requiresLeader(call.headers), body);
        start(body, callerOf(m, table, call), call);
        return replyLater;
      });
    } else if (m.kind === 'unary') {
      // Not async: runUnary awaits the handler inside its try, so a synchronous throw (a bad
      // token, no leader) ends the call the same way, and returning m.run's promise from an
      // async arrow would cost every call a promise and two more microtask turns.
      grpc.addUnary(m.path, rawRequestCodec, encodedResponseCodec, (body, call) => {
        table.admit(m, requiresLeader(call.headers), body);
        return m.run(body, callerOf(m, table, call));
      });
    } else {
      grpc.addServerStream(m.path, rawRequestCodec, encodedResponseCodec, async (body, call) => {
        table.admit(m, requiresLeader(call.headers));
        const it = m.open(body, callerOf(m, table, call));
        try {
          for (;;) {
            if (call.cancelled) throw new GrpcStatusError(GrpcCode.Canceled, 'context canceled');
            const r = await it.next();
            if (r.done) return;
            await call.write(r.value);
          }
        } finally {
          await it.return(undefined);
        }
      });
    }
  }
  for (const u of table.unimplemented) grpc.addUnimplemented(u.path, u.message, bidiPaths.has(u.path) ? 'bidi_stream' : 'unary');
}

export function registerEtcdServices(server: GrpcServer, service: EtcdService, log?: Logger, clientCertAuth = false): void {
  const grpc = learnerGated(server, service);
  let table = etcdMethods(service, log, clientCertAuth);
  if (service.lease !== undefined) {
    registerLeaseKeepAlive(grpc, service.lease, () => service.header());
    table = { ...table, unimplemented: table.unimplemented.filter((u) => u.path !== leaseKeepAlivePath) };
  }
  const watch = service.watch;
  if (watch === undefined) {
    registerMethods(server, table);
    return;
  }
  // Watch is a bidi stream: served here, on this thread's GrpcServer (not in the worker-thread mode's table).
  // etcd splits fragmenting watchers' responses at max-request-bytes + grpcOverheadBytes (512 KiB).
  // Lock and Election run the concurrency recipes over this member's KV and watch (etcd's v3lock/v3election).
  if (service.lease !== undefined) registerLockElection(grpc, lockElectionMethods(service, watch), (call) => table.identify(tokenOf(call.headers), call));
  registerWatchService(grpc, {
    host: watch, header: () => service.header(), fragmentAtBytes: service.limits.maxRequestBytes + 512 * 1024,
    deniedReason: (call, key, rangeEnd) => watchDeniedReason(service, table, call, key, rangeEnd),
  });
  registerMethods(server, { ...table, unimplemented: table.unimplemented.filter((u) => u.path !== watchPath) });
}

/**
 * `grpc` with etcd's interceptors on the methods registered directly on it (Watch,
 * LeaseKeepAlive, Lock, Election): a learner refuses them all, then a call with `hasleader`
 * needs a leader (Watch checks that itself, with its leader monitor). The method table's
 * entries are gated by learnerGate and MethodTable.admit.
 */
function learnerGated(grpc: GrpcServer, service: EtcdService): GrpcServer {
  const admit = async (call: ServerCall): Promise<void> => {
    if (service.isLearner()) throw etcdError('NotSupportedForLearner');
    if (requiresLeader(call.headers)) refuseWithoutLeader(service);
  };
  const gated = Object.create(grpc) as GrpcServer;
  gated.addUnary = (path, req, res, handler) => grpc.addUnary(path, req, res, (r, call) => admit(call).then(() => {
    const answer = handler(r, call);
    // Its answer comes after admit's promise: a handler that completes the call itself has no place here.
    if (answer === replyLater) throw new Error(`${path}: a gated unary handler must answer with its response`);
    return answer;
  }));
  gated.addServerStream = (path, req, res, handler) => grpc.addServerStream(path, req, res, (r, call) => admit(call).then(() => handler(r, call)));
  gated.addBidi = (path, req, res, handler) => grpc.addBidi(path, req, res, (call) => (path === watchPath
    ? (service.isLearner() ? Promise.reject(etcdError('NotSupportedForLearner')) : handler(call))
    : admit(call).then(() => handler(call))));
  return gated;
}

/** The subject CN of the client's verified TLS certificate, if any (etcd's AuthInfoFromTLS reads the first verified chain). */
function peerCommonName(call: ServerCall): string | undefined {
  const socket = call.stream.session?.socket as Partial<TLSSocket> | undefined;
  if (socket?.authorized !== true || typeof socket.getPeerCertificate !== 'function') return undefined;
  const cn = socket.getPeerCertificate().subject?.CN;
  return typeof cn === 'string' ? cn : undefined;
}

/** etcd's authMaintenanceServer.isAuthenticated, whose errors reach the client untranslated. */
function checkMaintenanceAdmin(service: EtcdService, ai: AuthInfo | undefined): void {
  try {
    service.auth.checkAdmin(ai);
  } catch (e) {
    throw isEtcdError(e) ? untranslatedAuthError(e) : e;
  }
}

/** etcd's isWatchPermitted and the cancel reasons its recvLoop gives (permission denied for anything unexpected). */
export function watchDeniedReason(service: EtcdService, table: MethodTable, watchCall: WatchCall, key: Buffer, rangeEnd: Buffer): string | undefined {
  const token = tokenOf(watchCall.headers);
  // A gRPC call has a stream (and a TLS socket for the certificate's CN); the gateway's adaptor has neither.
  const call = 'stream' in watchCall ? watchCall as ServerCall : undefined;
  if (!service.auth.enabled && token === undefined) return undefined;
  try {
    service.auth.checkRange(table.identify(token, call), key, rangeEnd);
    return undefined;
  } catch (e) {
    if (!isEtcdError(e)) throw e;
    const [code, message] = isEtcdError(e, 'InvalidAuthToken') || isEtcdError(e, 'AuthOldRevision') || isEtcdError(e, 'UserEmpty')
      ? [e.code, e.message] : errorStatus('PermissionDenied');
    // The reason is the gRPC status error's text, as grpc-go prints it.
    return `rpc error: code = ${grpcCodeName(code)} desc = ${message}`;
  }
}

/**
 * The encoded messages of etcd's Maintenance.Snapshot: blobs of exactly 32 KiB (the last one
 * shorter) each with remaining_bytes = size - sent so far, then one message whose blob is
 * the sha256 of all bytes sent and remaining_bytes 0. `etcdctl snapshot save` writes the
 * blobs as they come; `snapshot restore` checks the trailing sha256. Every message is filled
 * in place from the snapshot's pages in one buffer, reused once the next is pulled (a buffer
 * per message was an ArrayBuffer every 32 KiB, and V8 answers that rate of external
 * allocation with a mark-compact every few hundred ms: 12 in a 9 s save of 64 MiB). Bytes in
 * flight are bounded by the caller: it pulls the next message once the stream took the last
 * (call.write's drain). Stopping the generator early (return()) releases the backend snapshot.
 */
export async function* snapshotMessages(service: EtcdService, log?: Logger): AsyncGenerator<Uint8Array, void, undefined> {
  const snap = await service.snapshot();
  try {
    const total = snap.size;
    const hash = createHash('sha256');
    const reused = Buffer.allocUnsafe(snapshotResponseBytes(total, snapshotChunkBytes));
    let sent = 0;
    let next: { message: Uint8Array; blob: Uint8Array } | undefined;
    let fill = 0;
    log?.info('sending database snapshot to client', { 'total-bytes': total });
    for await (const chunk of snap.chunks()) {
      let off = 0;
      while (off < chunk.length) {
        if (next === undefined) {
          if (sent >= total) throw new Error(`snapshot larger than its announced size ${total}`);
          const blobBytes = Math.min(snapshotChunkBytes, total - sent);
          next = snapshotResponseToFill(total - sent - blobBytes, blobBytes, reused);
        }
        const n = Math.min(next.blob.length - fill, chunk.length - off);
        next.blob.set(chunk.subarray(off, off + n), fill);
        fill += n;
        off += n;
        if (fill === next.blob.length) {
          hash.update(next.blob);
          sent += fill;
          const { message } = next;
          next = undefined;
          fill = 0;
          yield message;
        }
      }
    }
    if (next !== undefined || sent !== total) throw new Error(`snapshot ended after ${sent + fill} of ${total} bytes`);
    const sha = hash.digest();
    log?.info('sending database sha256 checksum to client', { 'total-bytes': total, 'checksum-size': sha.length });
    const last = snapshotResponseToFill(0, sha.length, reused);
    last.blob.set(sha);
    yield last.message;
    log?.info('successfully sent database snapshot to client', { 'total-bytes': total });
  } finally {
    await snap.close();
  }
}

// grpc.health.v1 messages, hand-coded (two fields; not worth generating the proto).
interface HealthCheckRequest { service: string }
interface HealthCheckResponse { status: number }
const healthCheckRequest: Codec<HealthCheckRequest> = {
  encode: () => { throw new Error('server never encodes requests'); },
  decode(input: Uint8Array): HealthCheckRequest {
    // Bounds-checked by wire.Reader: a truncated length or string throws (→ Internal, as
    // grpc-go answers an unmarshal error), never reads past the input.
    const r = new Reader(input);
    let service = '';
    while (!r.done()) {
      const tag = r.tag();
      if (tag === ((1 << 3) | WIRE_BYTES)) {
        const [start, end] = r.sub();
        service = Buffer.from(input.buffer, input.byteOffset + start, end - start).toString('utf8');
      } else {
        if (tag >>> 3 === 0) throw new Error(`illegal tag 0 (wire type ${tag & 7})`);
        r.skip(tag & 7); // unknown fields are ignored, as protobuf decoders do
      }
    }
    return { service };
  },
};
const healthCheckResponse: Codec<HealthCheckResponse> = {
  encode: (m: HealthCheckResponse, w: BinaryWriter = new BinaryWriter()) => w.uint32(8).int32(m.status),
  decode: () => { throw new Error('server never decodes responses'); },
};
