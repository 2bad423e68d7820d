/**
 * etcd's v3 gRPC services bound to an EtcdService: request checks as etcd's v3rpc makes
 * them (validate.ts), then the member's answer. Services later issues fill in (Watch,
 * Lease, Auth, the rest of Cluster) answer Unimplemented until then.
 */
import { createHash } from 'node:crypto';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { GrpcCode } from '../errors/index.js';
import * as pb from '../proto/gen/etcdserverpb/rpc.js';
import type { Logger } from '../log/index.js';
import type { EtcdService } from '../server/service.js';
import type { Codec } from './grpc/framing.js';
import { GrpcServer, GrpcStatusError } from './grpc/index.js';
import {
  checkDeleteRequest, checkPutRequest, checkRangeRequest, checkRequestSize, checkTxn, isTxnReadOnly, requestIdVarintBytes,
} from './validate.js';


/** etcd's snapshotSendBufferSize: the blob size of every Snapshot message but the last two. */
export const snapshotChunkBytes = 32 * 1024;

export function registerEtcdServices(grpc: GrpcServer, service: EtcdService, log?: Logger): void {
  const { maxTxnOps, maxRequestBytes } = service.limits;
  const idBytes = requestIdVarintBytes(service.header().memberId);
  const checkSize = (messageBytes: number): void => checkRequestSize(messageBytes, maxRequestBytes, idBytes);
  const kv = (m: string): string => `/etcdserverpb.KV/${m}`;
  const mt = (m: string): string => `/etcdserverpb.Maintenance/${m}`;

  // --- KV (etcd: v3rpc/key.go; the size check is etcd's raft-proposal check, see validate.ts) ---
  grpc.addUnary(kv('Range'), pb.RangeRequest, pb.RangeResponse, (req) => {
    checkRangeRequest(req);
    return service.range(req);
  });
  grpc.addUnary(kv('Put'), pb.PutRequest, pb.PutResponse, (req, call) => {
    checkPutRequest(req);
    checkSize(call.requestBytes);
    return service.put(req);
  });
  grpc.addUnary(kv('DeleteRange'), pb.DeleteRangeRequest, pb.DeleteRangeResponse, (req, call) => {
    checkDeleteRequest(req);
    checkSize(call.requestBytes);
    return service.deleteRange(req);
  });
  grpc.addUnary(kv('Txn'), pb.TxnRequest, pb.TxnResponse, (req, call) => {
    checkTxn(req, maxTxnOps);
    // A read-only txn is served like a range in etcd, never proposed, so never too large.
    if (!isTxnReadOnly(req)) checkSize(call.requestBytes);
    return service.txn(req);
  });
  grpc.addUnary(kv('Compact'), pb.CompactionRequest, pb.CompactionResponse, (req) => service.compact(req));

  // --- Maintenance (etcd: v3rpc/maintenance.go) ---
  grpc.addUnary(mt('Alarm'), pb.AlarmRequest, pb.AlarmResponse, (req) => service.alarm(req));
  grpc.addUnary(mt('Status'), pb.StatusRequest, pb.StatusResponse, () => service.status());
  grpc.addUnary(mt('Defragment'), pb.DefragmentRequest, pb.DefragmentResponse, () => service.defragment());
  grpc.addUnary(mt('Hash'), pb.HashRequest, pb.HashResponse, () => service.hash());
  grpc.addUnary(mt('HashKV'), pb.HashKVRequest, pb.HashKVResponse, (req) => service.hashKV(req));
  grpc.addUnary(mt('MoveLeader'), pb.MoveLeaderRequest, pb.MoveLeaderResponse, (req) => service.moveLeader(req));
  grpc.addServerStream(mt('Snapshot'), pb.SnapshotRequest, pb.SnapshotResponse, (_req, call) =>
    sendSnapshot(service, (m) => call.write(m), () => call.cancelled, log));

  // --- Cluster (etcd: v3rpc/member.go) ---
  grpc.addUnary('/etcdserverpb.Cluster/MemberList', pb.MemberListRequest, pb.MemberListResponse, (req) => service.memberList(req));
  for (const m of ['MemberAdd', 'MemberRemove', 'MemberUpdate', 'MemberPromote']) notYet(grpc, 'Cluster', m);

  // --- Served by later issues ---
  notYet(grpc, 'Watch', 'Watch');
  for (const m of ['LeaseGrant', 'LeaseRevoke', 'LeaseKeepAlive', 'LeaseTimeToLive', 'LeaseLeases']) notYet(grpc, 'Lease', m);
  for (const m of ['AuthEnable', 'AuthDisable', 'Authenticate', 'UserAdd', 'UserGet', 'UserList', 'UserDelete',
    'UserChangePassword', 'UserGrantRole', 'UserRevokeRole', 'RoleAdd', 'RoleGet', 'RoleList', 'RoleDelete',
    'RoleGrantPermission', 'RoleRevokePermission']) notYet(grpc, 'Auth', m);

  // --- grpc.health.v1 (etcd registers it with "" SERVING; load balancers use it) ---
  grpc.addUnary('/grpc.health.v1.Health/Check', healthCheckRequest, healthCheckResponse, (req) => {
    if (req.service !== '') throw new GrpcStatusError(GrpcCode.NotFound, 'unknown service');
    return { status: 1 /* SERVING */ };
  });
}

function notYet(grpc: GrpcServer, service: string, method: string): void {
  grpc.addUnimplemented(`/etcdserverpb.${service}/${method}`, `concord: etcdserverpb.${service}/${method} is not implemented yet`);
}

/**
 * Streams the backend as etcd's Maintenance.Snapshot does: blobs of exactly 32 KiB (the last
 * one shorter) each with remaining_bytes = size - sent so far, then one message whose blob is
 * the sha256 of all bytes sent and remaining_bytes 0. `etcdctl snapshot save` writes the
 * blobs as they come; `snapshot restore` checks the trailing sha256.
 */
export async function sendSnapshot(
  service: EtcdService,
  send: (m: pb.SnapshotResponse) => Promise<void>,
  cancelled: () => boolean,
  log?: Logger,
): Promise<void> {
  const snap = await service.snapshot();
  try {
    const total = snap.size;
    const hash = createHash('sha256');
    const buf = Buffer.allocUnsafe(snapshotChunkBytes);
    let fill = 0;
    let sent = 0;
    log?.info('sending database snapshot to client', { 'total-bytes': total });
    const flush = async (): Promise<void> => {
      const blob = buf.subarray(0, fill);
      sent += fill;
      if (sent > total) throw new Error(`snapshot larger than its announced size ${total}`);
      hash.update(blob);
      fill = 0;
      // The codec copies the blob into the message, so `buf` can be refilled at once.
      await send({ header: undefined, remainingBytes: total - sent, blob });
    };
    for await (const chunk of snap.chunks()) {
      if (cancelled()) throw new GrpcStatusError(GrpcCode.Canceled, 'context canceled');
      let off = 0;
      while (off < chunk.length) {
        const n = Math.min(snapshotChunkBytes - fill, chunk.length - off);
        buf.set(chunk.subarray(off, off + n), fill);
        fill += n;
        off += n;
        if (fill === snapshotChunkBytes) await flush();
      }
    }
    if (fill > 0) await flush();
    if (sent !== total) throw new Error(`snapshot ended after ${sent} of ${total} bytes`);
    const sha = hash.digest();
    log?.info('sending database sha256 checksum to client', { 'total-bytes': total, 'checksum-size': sha.length });
    await send({ header: undefined, remainingBytes: 0, blob: sha });
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
    let i = 0;
    let service = '';
    while (i < input.length) {
      const tag = input[i++]!;
      if (tag === 0x0a) {
        let len = 0;
        for (let shift = 0; ; shift += 7) { const b = input[i++]!; len |= (b & 0x7f) << shift; if (b < 0x80) break; }
        service = Buffer.from(input.buffer, input.byteOffset + i, len).toString('utf8');
        i += len;
      } else {
        throw new Error(`unexpected field tag ${tag} in HealthCheckRequest`);
      }
    }
    return { service };
  },
};
const healthCheckResponse: Codec<HealthCheckResponse> = {
  encode: (m: HealthCheckResponse, w: BinaryWriter = new BinaryWriter()) => w.uint32(8).int32(m.status),
  decode: () => { throw new Error('server never decodes responses'); },
};
