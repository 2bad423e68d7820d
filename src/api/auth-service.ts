/**
 * etcd's Auth service (etcdserverpb.Auth): Authenticate, and the user, role and enable/
 * disable RPCs, each handed to the member's AuthApi with the caller's identity (from its
 * `token` metadata). etcd 3.4's v3rpc checks nothing here: the member does (admin rights
 * at apply).
 */
import { etcdserverpb as pb } from '../proto/index.js';
import type { AuthCallOp, AuthInfo, EtcdService } from '../server/index.js';
import type { Codec } from './grpc/framing.js';

/** The unary-method factory of services.ts, with the caller's identity resolved. */
export type AuthedUnary = <Req, Res>(path: string, req: Codec<Req>, res: Codec<Res>,
  handler: (request: Req, ai: AuthInfo | undefined) => Promise<Res>) => unknown;

const rpcs: Array<[method: string, op: AuthCallOp, req: Codec<unknown>, res: Codec<unknown>]> = [
  ['AuthEnable', 'authEnable', pb.AuthEnableRequest, pb.AuthEnableResponse],
  ['AuthDisable', 'authDisable', pb.AuthDisableRequest, pb.AuthDisableResponse],
  ['UserAdd', 'userAdd', pb.AuthUserAddRequest, pb.AuthUserAddResponse],
  ['UserGet', 'userGet', pb.AuthUserGetRequest, pb.AuthUserGetResponse],
  ['UserList', 'userList', pb.AuthUserListRequest, pb.AuthUserListResponse],
  ['UserDelete', 'userDelete', pb.AuthUserDeleteRequest, pb.AuthUserDeleteResponse],
  ['UserChangePassword', 'userChangePassword', pb.AuthUserChangePasswordRequest, pb.AuthUserChangePasswordResponse],
  ['UserGrantRole', 'userGrantRole', pb.AuthUserGrantRoleRequest, pb.AuthUserGrantRoleResponse],
  ['UserRevokeRole', 'userRevokeRole', pb.AuthUserRevokeRoleRequest, pb.AuthUserRevokeRoleResponse],
  ['RoleAdd', 'roleAdd', pb.AuthRoleAddRequest, pb.AuthRoleAddResponse],
  ['RoleGet', 'roleGet', pb.AuthRoleGetRequest, pb.AuthRoleGetResponse],
  ['RoleList', 'roleList', pb.AuthRoleListRequest, pb.AuthRoleListResponse],
  ['RoleDelete', 'roleDelete', pb.AuthRoleDeleteRequest, pb.AuthRoleDeleteResponse],
  ['RoleGrantPermission', 'roleGrantPermission', pb.AuthRoleGrantPermissionRequest, pb.AuthRoleGrantPermissionResponse],
  ['RoleRevokePermission', 'roleRevokePermission', pb.AuthRoleRevokePermissionRequest, pb.AuthRoleRevokePermissionResponse],
];

export function authMethods<M>(service: EtcdService, unary: AuthedUnary): M[] {
  const path = (m: string): string => `/etcdserverpb.Auth/${m}`;
  const methods = [
    unary(path('Authenticate'), pb.AuthenticateRequest, pb.AuthenticateResponse, (req) => service.auth.authenticate(req)),
    ...rpcs.map(([method, op, req, res]) => unary(path(method), req, res, (r, ai) => service.auth.call(op, r, ai))),
  ];
  return methods as M[];
}
