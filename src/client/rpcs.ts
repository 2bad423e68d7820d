// The etcd v3 methods the client calls: path, codecs, and whether a call may be retried on
// another endpoint after its connection failed mid-call (only when doing it twice cannot
// change anything: reads, status, and requests that are idempotent by nature).
import { etcdserverpb as pb, v3lockpb, v3electionpb } from '../proto/index.js';

type Fns<T> = pb.MessageFns<T>;

export interface Rpc<Req, Res> {
  readonly path: string;
  readonly req: Fns<Req>;
  readonly res: Fns<Res>;
  /** Safe to send again after the connection broke mid-call. */
  readonly retriable: boolean;
  readonly serialize: (m: Req) => Buffer;
  readonly deserialize: (b: Buffer) => Res;
}

function rpc<Req, Res>(path: string, req: Fns<Req>, res: Fns<Res>, retriable: boolean): Rpc<Req, Res> {
  const serialize = (m: Req): Buffer => {
    const u8 = req.encode(m).finish();
    return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
  };
  return { path, req, res, retriable, serialize, deserialize: (b: Buffer) => res.decode(b) };
}

export const KV = {
  range: rpc('/etcdserverpb.KV/Range', pb.RangeRequest, pb.RangeResponse, true),
  put: rpc('/etcdserverpb.KV/Put', pb.PutRequest, pb.PutResponse, false),
  deleteRange: rpc('/etcdserverpb.KV/DeleteRange', pb.DeleteRangeRequest, pb.DeleteRangeResponse, false),
  txn: rpc('/etcdserverpb.KV/Txn', pb.TxnRequest, pb.TxnResponse, false),
  compact: rpc('/etcdserverpb.KV/Compact', pb.CompactionRequest, pb.CompactionResponse, true),
};

export const Watch = {
  watch: rpc('/etcdserverpb.Watch/Watch', pb.WatchRequest, pb.WatchResponse, true),
};

export const Lease = {
  grant: rpc('/etcdserverpb.Lease/LeaseGrant', pb.LeaseGrantRequest, pb.LeaseGrantResponse, false),
  revoke: rpc('/etcdserverpb.Lease/LeaseRevoke', pb.LeaseRevokeRequest, pb.LeaseRevokeResponse, true),
  keepAlive: rpc('/etcdserverpb.Lease/LeaseKeepAlive', pb.LeaseKeepAliveRequest, pb.LeaseKeepAliveResponse, true),
  timeToLive: rpc('/etcdserverpb.Lease/LeaseTimeToLive', pb.LeaseTimeToLiveRequest, pb.LeaseTimeToLiveResponse, true),
  leases: rpc('/etcdserverpb.Lease/LeaseLeases', pb.LeaseLeasesRequest, pb.LeaseLeasesResponse, true),
};

export const Cluster = {
  memberAdd: rpc('/etcdserverpb.Cluster/MemberAdd', pb.MemberAddRequest, pb.MemberAddResponse, false),
  memberRemove: rpc('/etcdserverpb.Cluster/MemberRemove', pb.MemberRemoveRequest, pb.MemberRemoveResponse, false),
  memberUpdate: rpc('/etcdserverpb.Cluster/MemberUpdate', pb.MemberUpdateRequest, pb.MemberUpdateResponse, true),
  memberList: rpc('/etcdserverpb.Cluster/MemberList', pb.MemberListRequest, pb.MemberListResponse, true),
  memberPromote: rpc('/etcdserverpb.Cluster/MemberPromote', pb.MemberPromoteRequest, pb.MemberPromoteResponse, false),
};

export const Maintenance = {
  alarm: rpc('/etcdserverpb.Maintenance/Alarm', pb.AlarmRequest, pb.AlarmResponse, true),
  status: rpc('/etcdserverpb.Maintenance/Status', pb.StatusRequest, pb.StatusResponse, true),
  defragment: rpc('/etcdserverpb.Maintenance/Defragment', pb.DefragmentRequest, pb.DefragmentResponse, true),
  hash: rpc('/etcdserverpb.Maintenance/Hash', pb.HashRequest, pb.HashResponse, true),
  hashKV: rpc('/etcdserverpb.Maintenance/HashKV', pb.HashKVRequest, pb.HashKVResponse, true),
  snapshot: rpc('/etcdserverpb.Maintenance/Snapshot', pb.SnapshotRequest, pb.SnapshotResponse, true),
  moveLeader: rpc('/etcdserverpb.Maintenance/MoveLeader', pb.MoveLeaderRequest, pb.MoveLeaderResponse, false),
};

export const Auth = {
  authenticate: rpc('/etcdserverpb.Auth/Authenticate', pb.AuthenticateRequest, pb.AuthenticateResponse, true),
  authEnable: rpc('/etcdserverpb.Auth/AuthEnable', pb.AuthEnableRequest, pb.AuthEnableResponse, true),
  authDisable: rpc('/etcdserverpb.Auth/AuthDisable', pb.AuthDisableRequest, pb.AuthDisableResponse, true),
  userAdd: rpc('/etcdserverpb.Auth/UserAdd', pb.AuthUserAddRequest, pb.AuthUserAddResponse, false),
  userGrantRole: rpc('/etcdserverpb.Auth/UserGrantRole', pb.AuthUserGrantRoleRequest, pb.AuthUserGrantRoleResponse, true),
  roleAdd: rpc('/etcdserverpb.Auth/RoleAdd', pb.AuthRoleAddRequest, pb.AuthRoleAddResponse, false),
  roleGrantPermission: rpc('/etcdserverpb.Auth/RoleGrantPermission', pb.AuthRoleGrantPermissionRequest, pb.AuthRoleGrantPermissionResponse, true),
  userGet: rpc('/etcdserverpb.Auth/UserGet', pb.AuthUserGetRequest, pb.AuthUserGetResponse, true),
  userList: rpc('/etcdserverpb.Auth/UserList', pb.AuthUserListRequest, pb.AuthUserListResponse, true),
  userDelete: rpc('/etcdserverpb.Auth/UserDelete', pb.AuthUserDeleteRequest, pb.AuthUserDeleteResponse, false),
  userChangePassword: rpc('/etcdserverpb.Auth/UserChangePassword', pb.AuthUserChangePasswordRequest, pb.AuthUserChangePasswordResponse, true),
  userRevokeRole: rpc('/etcdserverpb.Auth/UserRevokeRole', pb.AuthUserRevokeRoleRequest, pb.AuthUserRevokeRoleResponse, false),
  roleGet: rpc('/etcdserverpb.Auth/RoleGet', pb.AuthRoleGetRequest, pb.AuthRoleGetResponse, true),
  roleList: rpc('/etcdserverpb.Auth/RoleList', pb.AuthRoleListRequest, pb.AuthRoleListResponse, true),
  roleDelete: rpc('/etcdserverpb.Auth/RoleDelete', pb.AuthRoleDeleteRequest, pb.AuthRoleDeleteResponse, false),
  roleRevokePermission: rpc('/etcdserverpb.Auth/RoleRevokePermission', pb.AuthRoleRevokePermissionRequest, pb.AuthRoleRevokePermissionResponse, false),
};

export const Lock = {
  lock: rpc('/v3lockpb.Lock/Lock', v3lockpb.LockRequest, v3lockpb.LockResponse, false),
  unlock: rpc('/v3lockpb.Lock/Unlock', v3lockpb.UnlockRequest, v3lockpb.UnlockResponse, true),
};

export const Election = {
  campaign: rpc('/v3electionpb.Election/Campaign', v3electionpb.CampaignRequest, v3electionpb.CampaignResponse, false),
  proclaim: rpc('/v3electionpb.Election/Proclaim', v3electionpb.ProclaimRequest, v3electionpb.ProclaimResponse, true),
  leader: rpc('/v3electionpb.Election/Leader', v3electionpb.LeaderRequest, v3electionpb.LeaderResponse, true),
  observe: rpc('/v3electionpb.Election/Observe', v3electionpb.LeaderRequest, v3electionpb.LeaderResponse, true),
  resign: rpc('/v3electionpb.Election/Resign', v3electionpb.ResignRequest, v3electionpb.ResignResponse, true),
};
