// Maintenance: status, alarms, defragment, hashes, snapshot stream, leader transfer. Status,
// defragment and the hashes are per member: `endpoint` picks which (default: the one in use).
import type * as grpc from '@grpc/grpc-js';
import { etcdserverpb as pb } from '../proto/index.js';
import type { Connection, CallOptions, Endpoint } from './connection.js';
import { deadlineOf, streamError } from './connection.js';
import { Maintenance, type Rpc } from './rpcs.js';
import { AsyncQueue } from './queue.js';

export interface MemberCallOptions extends CallOptions {
  /** The endpoint URL (as given to the client) to ask; default: the one in use. */
  endpoint?: string;
}

export interface SnapshotOptions {
  /** Chunks held before the stream is paused (default 64). */
  maxQueuedChunks?: number;
  /** Called per message: bytes received so far and the bytes the server says remain (remaining_bytes). */
  onReceived?: (receivedBytes: number, remainingBytes: number) => void;
}

export class MaintenanceClient {
  constructor(private readonly conn: Connection) {}

  /** A call to the endpoint the options name, or with failover when they name none. */
  private async on<Req, Res>(rpc: Rpc<Req, Res>, req: Req, opts?: MemberCallOptions): Promise<Res> {
    if (opts?.endpoint === undefined) return this.conn.unary(rpc, req, opts);
    const deadline = deadlineOf(opts, this.conn.options.defaultCallTimeoutMs);
    const ep = await this.conn.readyAt(this.endpoint(opts.endpoint), deadline, opts.signal);
    return this.conn.unaryOn(ep, rpc, req, deadline, opts.signal);
  }

  private endpoint(url: string): Endpoint {
    const ep = this.conn.endpoints.find((e) => e.url === url);
    if (!ep) throw new TypeError(`${url} is not one of the client's endpoints`);
    return ep;
  }

  status(opts?: MemberCallOptions): Promise<pb.StatusResponse> {
    return this.on(Maintenance.status, {}, opts);
  }

  defragment(opts?: MemberCallOptions): Promise<pb.DefragmentResponse> {
    return this.on(Maintenance.defragment, {}, opts);
  }

  hash(opts?: MemberCallOptions): Promise<pb.HashResponse> {
    return this.on(Maintenance.hash, {}, opts);
  }

  hashKV(revision = 0, opts?: MemberCallOptions): Promise<pb.HashKVResponse> {
    return this.on(Maintenance.hashKV, { revision }, opts);
  }

  /** Active alarms of every member. */
  alarms(opts?: CallOptions): Promise<pb.AlarmResponse> {
    return this.conn.unary(Maintenance.alarm, { action: pb.AlarmRequest_AlarmAction.GET, memberID: 0n, alarm: pb.AlarmType.NONE }, opts);
  }

  /** Disarms an alarm (memberID 0 and alarm NONE: every alarm). */
  disarm(alarm: pb.AlarmMember, opts?: CallOptions): Promise<pb.AlarmResponse> {
    return this.conn.unary(Maintenance.alarm, { action: pb.AlarmRequest_AlarmAction.DEACTIVATE, ...alarm }, opts);
  }

  moveLeader(targetId: bigint, opts?: MemberCallOptions): Promise<pb.MoveLeaderResponse> {
    return this.on(Maintenance.moveLeader, { targetID: targetId }, opts);
  }

  /**
   * The member's backend as a stream of chunks (etcd's snapshot: the database then its
   * checksum). Iterate to the end; breaking off cancels the transfer.
   */
  async snapshot(opts?: MemberCallOptions & SnapshotOptions): Promise<AsyncIterableIterator<Buffer>> {
    let call: grpc.ClientReadableStream<pb.SnapshotResponse>;
    if (opts?.endpoint !== undefined) {
      const ep = await this.conn.readyAt(this.endpoint(opts.endpoint), deadlineOf(opts, undefined), opts.signal);
      call = ep.client.makeServerStreamRequest(Maintenance.snapshot.path, Maintenance.snapshot.serialize,
        Maintenance.snapshot.deserialize, {}, ep.metadata, {});
    } else {
      call = (await this.conn.serverStream(Maintenance.snapshot, {}, opts)).call;
    }
    const queue = new AsyncQueue<Buffer>(opts?.maxQueuedChunks ?? 64, () => call.resume(), () => call.cancel());
    opts?.signal?.addEventListener('abort', () => { call.cancel(); queue.fail(opts.signal!.reason); }, { once: true });
    let received = 0;
    call.on('data', (res: pb.SnapshotResponse) => {
      received += res.blob.length;
      opts?.onReceived?.(received, Number(res.remainingBytes));
      if (!queue.push(res.blob)) call.pause();
    });
    call.on('error', (e: grpc.ServiceError) => queue.fail(streamError(e)));
    call.on('end', () => queue.end());
    return queue;
  }
}
