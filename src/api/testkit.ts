/**
 * Test helpers for the API layer only: a grpc-js client speaking through the generated
 * ts-proto codecs, and a small in-memory EtcdService to exercise the transport. The real
 * member is tested elsewhere; this fake only has to answer shapes, not etcd's semantics.
 */
import * as grpc from '@grpc/grpc-js';
import { etcdError } from '../errors/index.js';
import { etcdserverpb as pb } from '../proto/index.js';
import type { KeyValue } from '../proto/index.js';
import type { BackendSnapshot, EtcdService, HealthReport, RangeAnswer, Waiter } from '../server/index.js';
import { authOff } from '../server/index.js';

interface PbCodec<T> { encode(m: T): { finish(): Uint8Array }; decode(b: Uint8Array): T }

const ser = <T>(c: PbCodec<T>) => (m: T): Buffer => Buffer.from(c.encode(m).finish());
const de = <T>(c: PbCodec<T>) => (b: Buffer): T => c.decode(b);

export class TestClient {
  readonly raw: grpc.Client;
  constructor(address: string, options: grpc.ChannelOptions = {}) {
    this.raw = new grpc.Client(address, grpc.credentials.createInsecure(), options);
  }

  unary<Req, Res>(path: string, req: PbCodec<Req>, res: PbCodec<Res>, message: Req, opts: grpc.CallOptions = {}): Promise<Res> {
    return new Promise((resolve, reject) => {
      this.raw.makeUnaryRequest(path, ser(req), de(res), message, new grpc.Metadata(), opts,
        (err, value) => (err ? reject(err) : resolve(value!)));
    });
  }

  /** A unary call whose request is given already encoded (for malformed or oversized input). */
  unaryRaw<Res>(path: string, bytes: Buffer, res: PbCodec<Res>, opts: grpc.CallOptions = {}): Promise<Res> {
    return new Promise((resolve, reject) => {
      this.raw.makeUnaryRequest(path, (b: Buffer) => b, de(res), bytes, new grpc.Metadata(), opts,
        (err, value) => (err ? reject(err) : resolve(value!)));
    });
  }

  serverStream<Req, Res>(path: string, req: PbCodec<Req>, res: PbCodec<Res>, message: Req, opts: grpc.CallOptions = {}): grpc.ClientReadableStream<Res> {
    return this.raw.makeServerStreamRequest(path, ser(req), de(res), message, new grpc.Metadata(), opts);
  }

  bidi<Req, Res>(path: string, req: PbCodec<Req>, res: PbCodec<Res>, opts: grpc.CallOptions = {}): grpc.ClientDuplexStream<Req, Res> {
    return this.raw.makeBidiStreamRequest(path, ser(req), de(res), new grpc.Metadata(), opts);
  }

  close(): void { this.raw.close(); }

  // Shorthands for the KV calls tests use most.
  range(r: Partial<pb.RangeRequest>, opts?: grpc.CallOptions): Promise<pb.RangeResponse> {
    return this.unary('/etcdserverpb.KV/Range', pb.RangeRequest, pb.RangeResponse, pb.RangeRequest.fromPartial(r), opts);
  }
  put(r: Partial<pb.PutRequest>, opts?: grpc.CallOptions): Promise<pb.PutResponse> {
    return this.unary('/etcdserverpb.KV/Put', pb.PutRequest, pb.PutResponse, pb.PutRequest.fromPartial(r), opts);
  }
  txn(r: pb.DeepPartial<pb.TxnRequest>, opts?: grpc.CallOptions): Promise<pb.TxnResponse> {
    return this.unary('/etcdserverpb.KV/Txn', pb.TxnRequest, pb.TxnResponse, pb.TxnRequest.fromPartial(r), opts);
  }
}

/** Awaits a promise expected to fail with a gRPC status; returns [code, details]. */
export async function grpcFailure(p: Promise<unknown>): Promise<[number, string]> {
  try {
    await p;
  } catch (e) {
    const s = e as grpc.ServiceError;
    return [s.code, s.details];
  }
  throw new Error('expected the call to fail');
}

export interface FakeOptions {
  maxTxnOps?: number;
  maxRequestBytes?: number;
  /** Contents Snapshot streams. */
  snapshot?: Buffer;
  /** Size of the pieces the fake backend yields its snapshot in. */
  snapshotPieceBytes?: number;
}

/** An in-memory EtcdService: enough KV to see requests arrive and answers go back. */
export class FakeService implements EtcdService {
  readonly limits: { maxTxnOps: number; maxRequestBytes: number };
  readonly auth = authOff;
  readonly kvs = new Map<string, KeyValue>();
  rev = 1;
  healthReport: HealthReport = { health: true, reason: '' };
  /** Hook to make a call wait or fail: runs before every KV call. */
  before: ((method: string, req: unknown) => Promise<void> | void) | undefined;
  snapshotClosed = 0;
  /** Pieces of the snapshot handed to the API so far. */
  snapshotPiecesYielded = 0;

  constructor(private readonly opts: FakeOptions = {}) {
    this.limits = { maxTxnOps: opts.maxTxnOps ?? 128, maxRequestBytes: opts.maxRequestBytes ?? 1572864 };
  }

  header(): pb.ResponseHeader {
    return { clusterId: 0xcdef0123456789abn, memberId: 0x8e9e05c52164694dn, revision: this.rev, raftTerm: 2 };
  }
  health(): HealthReport { return this.healthReport; }
  async checkHealth(): Promise<HealthReport> { return this.healthReport; }
  activeAlarms(): string[] { return []; }
  raftStatusJson(): string { return '{}'; }

  async range(req: pb.RangeRequest): Promise<pb.RangeResponse> {
    await this.before?.('range', req);
    const kv = this.kvs.get(req.key.toString('latin1'));
    const kvs = kv ? [kv] : [];
    return pb.RangeResponse.fromPartial({ header: this.header(), kvs, count: kvs.length });
  }
  async rangeAs<T>(req: pb.RangeRequest, _ai: unknown, answer: RangeAnswer<T>): Promise<T> {
    return answer.response(await this.range(req));
  }
  async put(req: pb.PutRequest): Promise<pb.PutResponse> {
    await this.before?.('put', req);
    const k = req.key.toString('latin1');
    const prev = this.kvs.get(k);
    this.rev++;
    this.kvs.set(k, {
      key: req.key, value: req.value, lease: req.lease, modRevision: this.rev,
      createRevision: prev?.createRevision ?? this.rev, version: (prev?.version ?? 0) + 1,
    });
    return pb.PutResponse.fromPartial({ header: this.header(), prevKv: req.prevKv ? prev : undefined });
  }
  putTo(req: pb.PutRequest, _raw: Uint8Array | undefined, _ai: unknown, reply: Waiter): void {
    this.put(req).then((r) => reply.resolve(r), (e: unknown) => reply.reject(e as Error));
  }
  deleteRangeTo(req: pb.DeleteRangeRequest, _ai: unknown, reply: Waiter): void {
    this.deleteRange(req).then((r) => reply.resolve(r), (e: unknown) => reply.reject(e as Error));
  }
  txnTo(req: pb.TxnRequest, _raw: Uint8Array | undefined, _ai: unknown, reply: Waiter): void {
    this.txn(req).then((r) => reply.resolve(r), (e: unknown) => reply.reject(e as Error));
  }
  async deleteRange(req: pb.DeleteRangeRequest): Promise<pb.DeleteRangeResponse> {
    await this.before?.('deleteRange', req);
    const deleted = this.kvs.delete(req.key.toString('latin1')) ? 1 : 0;
    if (deleted) this.rev++;
    return pb.DeleteRangeResponse.fromPartial({ header: this.header(), deleted });
  }
  async txn(req: pb.TxnRequest): Promise<pb.TxnResponse> {
    await this.before?.('txn', req);
    return pb.TxnResponse.fromPartial({ header: this.header(), succeeded: true, responses: [] });
  }
  async compact(req: pb.CompactionRequest): Promise<pb.CompactionResponse> {
    if (req.revision > this.rev) throw etcdError('FutureRev');
    return { header: this.header() };
  }
  async status(): Promise<pb.StatusResponse> {
    return pb.StatusResponse.fromPartial({ header: this.header(), version: '3.4.23', leader: this.header().memberId });
  }
  async defragment(): Promise<pb.DefragmentResponse> { return { header: this.header() }; }
  async hash(): Promise<pb.HashResponse> { return { header: this.header(), hash: 42 }; }
  async hashKV(): Promise<pb.HashKVResponse> { return { header: this.header(), hash: 43, compactRevision: 1 }; }
  async alarm(): Promise<pb.AlarmResponse> { return { header: this.header(), alarms: [] }; }
  async moveLeader(): Promise<pb.MoveLeaderResponse> { return { header: this.header() }; }
  async memberList(): Promise<pb.MemberListResponse> {
    return pb.MemberListResponse.fromPartial({
      header: this.header(),
      members: [{ ID: this.header().memberId, name: 'default', peerURLs: ['http://localhost:2380'], clientURLs: ['http://localhost:2379'] }],
    });
  }
  /** Set to make the member a learner (etcd's interceptor then refuses most calls). */
  learner = false;
  isLearner(): boolean { return this.learner; }
  /** Clear to make the member leaderless (calls with `hasleader` metadata then get "no leader"). */
  leaderKnown = true;
  hasLeader(): boolean { return this.leaderKnown; }
  async memberAdd(): Promise<pb.MemberAddResponse> { throw new Error('FakeService: no membership changes'); }
  async memberRemove(): Promise<pb.MemberRemoveResponse> { throw new Error('FakeService: no membership changes'); }
  async memberUpdate(): Promise<pb.MemberUpdateResponse> { throw new Error('FakeService: no membership changes'); }
  async memberPromote(): Promise<pb.MemberPromoteResponse> { throw new Error('FakeService: no membership changes'); }
  async snapshot(): Promise<BackendSnapshot> {
    const data = this.opts.snapshot ?? Buffer.alloc(0);
    const piece = this.opts.snapshotPieceBytes ?? 10_000;
    const self = this;
    return {
      size: data.length,
      async *chunks() {
        for (let i = 0; i < data.length; i += piece) {
          self.snapshotPiecesYielded++;
          yield data.subarray(i, i + piece);
        }
      },
      async close() { self.snapshotClosed++; },
    };
  }
}
