// Auth management: enable/disable, users and roles with their key permissions.
import type { etcdserverpb as pb } from '../proto/index.js';
import type { Connection, CallOptions } from './connection.js';
import { Auth } from './rpcs.js';
import { toBuffer, rangeOf, type Bytes, type RangeSpec } from './bytes.js';

export type PermissionType = 'read' | 'write' | 'readwrite';
const permTypes: Record<PermissionType, number> = { read: 0, write: 1, readwrite: 2 };

export class AuthClient {
  constructor(private readonly conn: Connection) {}

  enable(opts?: CallOptions): Promise<pb.AuthEnableResponse> { return this.conn.unary(Auth.authEnable, {}, opts); }
  disable(opts?: CallOptions): Promise<pb.AuthDisableResponse> { return this.conn.unary(Auth.authDisable, {}, opts); }

  userAdd(name: string, password: string, opts?: CallOptions & { noPassword?: boolean }): Promise<pb.AuthUserAddResponse> {
    return this.conn.unary(Auth.userAdd, { name, password, options: { noPassword: opts?.noPassword ?? false } }, opts);
  }

  /** The user's roles. */
  userGet(name: string, opts?: CallOptions): Promise<pb.AuthUserGetResponse> { return this.conn.unary(Auth.userGet, { name }, opts); }
  userList(opts?: CallOptions): Promise<pb.AuthUserListResponse> { return this.conn.unary(Auth.userList, {}, opts); }
  userDelete(name: string, opts?: CallOptions): Promise<pb.AuthUserDeleteResponse> { return this.conn.unary(Auth.userDelete, { name }, opts); }

  userChangePassword(name: string, password: string, opts?: CallOptions): Promise<pb.AuthUserChangePasswordResponse> {
    return this.conn.unary(Auth.userChangePassword, { name, password }, opts);
  }

  userGrantRole(user: string, role: string, opts?: CallOptions): Promise<pb.AuthUserGrantRoleResponse> {
    return this.conn.unary(Auth.userGrantRole, { user, role }, opts);
  }

  userRevokeRole(name: string, role: string, opts?: CallOptions): Promise<pb.AuthUserRevokeRoleResponse> {
    return this.conn.unary(Auth.userRevokeRole, { name, role }, opts);
  }

  roleAdd(name: string, opts?: CallOptions): Promise<pb.AuthRoleAddResponse> {
    return this.conn.unary(Auth.roleAdd, { name }, opts);
  }

  /** The role's key permissions. */
  roleGet(role: string, opts?: CallOptions): Promise<pb.AuthRoleGetResponse> { return this.conn.unary(Auth.roleGet, { role }, opts); }
  roleList(opts?: CallOptions): Promise<pb.AuthRoleListResponse> { return this.conn.unary(Auth.roleList, {}, opts); }
  roleDelete(role: string, opts?: CallOptions): Promise<pb.AuthRoleDeleteResponse> { return this.conn.unary(Auth.roleDelete, { role }, opts); }

  roleGrantPermission(role: string, key: Bytes, perm: PermissionType, opts?: CallOptions & RangeSpec): Promise<pb.AuthRoleGrantPermissionResponse> {
    const [k, rangeEnd] = rangeOf(toBuffer(key), opts);
    return this.conn.unary(Auth.roleGrantPermission, { name: role, perm: { permType: permTypes[perm], key: k, rangeEnd } }, opts);
  }

  /** Takes away the permission granted over exactly this key or range (etcd matches both ends). */
  roleRevokePermission(role: string, key: Bytes, opts?: CallOptions & RangeSpec): Promise<pb.AuthRoleRevokePermissionResponse> {
    const [k, rangeEnd] = rangeOf(toBuffer(key), opts);
    return this.conn.unary(Auth.roleRevokePermission, { role, key: k, rangeEnd }, opts);
  }
}
