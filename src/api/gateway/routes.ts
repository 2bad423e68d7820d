/**
 * etcd 3.4's gateway routes (etcdserverpb/gw/rpc.pb.gw.go, v3lockpb/gw, v3electionpb/gw):
 * `POST /v3/<route>` → a gRPC method and its message codecs. `/v3beta/` is rewritten to
 * `/v3/` before matching, as etcd's server does.
 */
import { etcdserverpb as pb, v3electionpb as epb, v3lockpb as lpb } from '../../proto/index.js';
import type { JsonCodec } from './json.js';

export interface Route {
  /** The gRPC method path, e.g. "/etcdserverpb.KV/Range". */
  readonly grpcPath: string;
  readonly request: JsonCodec<any>;
  readonly response: JsonCodec<any>;
}

const route = (service: string, method: string, request: JsonCodec<any>, response: JsonCodec<any>): Route =>
  ({ grpcPath: `/etcdserverpb.${service}/${method}`, request, response });
const lock = (method: string, request: JsonCodec<any>, response: JsonCodec<any>): Route =>
  ({ grpcPath: `/v3lockpb.Lock/${method}`, request, response });
const election = (method: string, request: JsonCodec<any>, response: JsonCodec<any>): Route =>
  ({ grpcPath: `/v3electionpb.Election/${method}`, request, response });

export const routes: ReadonlyMap<string, Route> = new Map([
  ['/v3/kv/range', route('KV', 'Range', pb.RangeRequest, pb.RangeResponse)],
  ['/v3/kv/put', route('KV', 'Put', pb.PutRequest, pb.PutResponse)],
  ['/v3/kv/deleterange', route('KV', 'DeleteRange', pb.DeleteRangeRequest, pb.DeleteRangeResponse)],
  ['/v3/kv/txn', route('KV', 'Txn', pb.TxnRequest, pb.TxnResponse)],
  ['/v3/kv/compaction', route('KV', 'Compact', pb.CompactionRequest, pb.CompactionResponse)],
  ['/v3/watch', route('Watch', 'Watch', pb.WatchRequest, pb.WatchResponse)],
  ['/v3/lease/grant', route('Lease', 'LeaseGrant', pb.LeaseGrantRequest, pb.LeaseGrantResponse)],
  ['/v3/lease/revoke', route('Lease', 'LeaseRevoke', pb.LeaseRevokeRequest, pb.LeaseRevokeResponse)],
  ['/v3/lease/keepalive', route('Lease', 'LeaseKeepAlive', pb.LeaseKeepAliveRequest, pb.LeaseKeepAliveResponse)],
  ['/v3/lease/timetolive', route('Lease', 'LeaseTimeToLive', pb.LeaseTimeToLiveRequest, pb.LeaseTimeToLiveResponse)],
  ['/v3/lease/leases', route('Lease', 'LeaseLeases', pb.LeaseLeasesRequest, pb.LeaseLeasesResponse)],
  // The pre-3.3 paths etcd 3.4 still routes (rpc.proto's additional_bindings).
  ['/v3/kv/lease/revoke', route('Lease', 'LeaseRevoke', pb.LeaseRevokeRequest, pb.LeaseRevokeResponse)],
  ['/v3/kv/lease/timetolive', route('Lease', 'LeaseTimeToLive', pb.LeaseTimeToLiveRequest, pb.LeaseTimeToLiveResponse)],
  ['/v3/kv/lease/leases', route('Lease', 'LeaseLeases', pb.LeaseLeasesRequest, pb.LeaseLeasesResponse)],
  ['/v3/cluster/member/add', route('Cluster', 'MemberAdd', pb.MemberAddRequest, pb.MemberAddResponse)],
  ['/v3/cluster/member/remove', route('Cluster', 'MemberRemove', pb.MemberRemoveRequest, pb.MemberRemoveResponse)],
  ['/v3/cluster/member/update', route('Cluster', 'MemberUpdate', pb.MemberUpdateRequest, pb.MemberUpdateResponse)],
  ['/v3/cluster/member/list', route('Cluster', 'MemberList', pb.MemberListRequest, pb.MemberListResponse)],
  ['/v3/cluster/member/promote', route('Cluster', 'MemberPromote', pb.MemberPromoteRequest, pb.MemberPromoteResponse)],
  ['/v3/maintenance/alarm', route('Maintenance', 'Alarm', pb.AlarmRequest, pb.AlarmResponse)],
  ['/v3/maintenance/status', route('Maintenance', 'Status', pb.StatusRequest, pb.StatusResponse)],
  ['/v3/maintenance/defragment', route('Maintenance', 'Defragment', pb.DefragmentRequest, pb.DefragmentResponse)],
  // Hash and HashKV share this pattern; etcd's gateway answers it with Hash (HashKV is unreachable).
  ['/v3/maintenance/hash', route('Maintenance', 'Hash', pb.HashRequest, pb.HashResponse)],
  ['/v3/maintenance/snapshot', route('Maintenance', 'Snapshot', pb.SnapshotRequest, pb.SnapshotResponse)],
  ['/v3/maintenance/transfer-leadership', route('Maintenance', 'MoveLeader', pb.MoveLeaderRequest, pb.MoveLeaderResponse)],
  ['/v3/auth/enable', route('Auth', 'AuthEnable', pb.AuthEnableRequest, pb.AuthEnableResponse)],
  ['/v3/auth/disable', route('Auth', 'AuthDisable', pb.AuthDisableRequest, pb.AuthDisableResponse)],
  ['/v3/auth/authenticate', route('Auth', 'Authenticate', pb.AuthenticateRequest, pb.AuthenticateResponse)],
  ['/v3/auth/user/add', route('Auth', 'UserAdd', pb.AuthUserAddRequest, pb.AuthUserAddResponse)],
  ['/v3/auth/user/get', route('Auth', 'UserGet', pb.AuthUserGetRequest, pb.AuthUserGetResponse)],
  ['/v3/auth/user/list', route('Auth', 'UserList', pb.AuthUserListRequest, pb.AuthUserListResponse)],
  ['/v3/auth/user/delete', route('Auth', 'UserDelete', pb.AuthUserDeleteRequest, pb.AuthUserDeleteResponse)],
  ['/v3/auth/user/changepw', route('Auth', 'UserChangePassword', pb.AuthUserChangePasswordRequest, pb.AuthUserChangePasswordResponse)],
  ['/v3/auth/user/grant', route('Auth', 'UserGrantRole', pb.AuthUserGrantRoleRequest, pb.AuthUserGrantRoleResponse)],
  ['/v3/auth/user/revoke', route('Auth', 'UserRevokeRole', pb.AuthUserRevokeRoleRequest, pb.AuthUserRevokeRoleResponse)],
  ['/v3/auth/role/add', route('Auth', 'RoleAdd', pb.AuthRoleAddRequest, pb.AuthRoleAddResponse)],
  ['/v3/auth/role/get', route('Auth', 'RoleGet', pb.AuthRoleGetRequest, pb.AuthRoleGetResponse)],
  ['/v3/auth/role/list', route('Auth', 'RoleList', pb.AuthRoleListRequest, pb.AuthRoleListResponse)],
  ['/v3/auth/role/delete', route('Auth', 'RoleDelete', pb.AuthRoleDeleteRequest, pb.AuthRoleDeleteResponse)],
  ['/v3/auth/role/grant', route('Auth', 'RoleGrantPermission', pb.AuthRoleGrantPermissionRequest, pb.AuthRoleGrantPermissionResponse)],
  ['/v3/auth/role/revoke', route('Auth', 'RoleRevokePermission', pb.AuthRoleRevokePermissionRequest, pb.AuthRoleRevokePermissionResponse)],
  ['/v3/lock/lock', lock('Lock', lpb.LockRequest, lpb.LockResponse)],
  ['/v3/lock/unlock', lock('Unlock', lpb.UnlockRequest, lpb.UnlockResponse)],
  ['/v3/election/campaign', election('Campaign', epb.CampaignRequest, epb.CampaignResponse)],
  ['/v3/election/proclaim', election('Proclaim', epb.ProclaimRequest, epb.ProclaimResponse)],
  ['/v3/election/leader', election('Leader', epb.LeaderRequest, epb.LeaderResponse)],
  ['/v3/election/observe', election('Observe', epb.LeaderRequest, epb.LeaderResponse)],
  ['/v3/election/resign', election('Resign', epb.ResignRequest, epb.ResignResponse)],
]);
