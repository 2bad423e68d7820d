// Auth management: enable/disable, users and roles (the parts the tests and concordctl use).
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

  userGrantRole(user: string, role: string, opts?: CallOptions): Promise<pb.AuthUserGrantRoleResponse> {
    return this.conn.unary(Auth.userGrantRole, { user, role }, opts);
  }

  roleAdd(name: string, opts?: CallOptions): Promise<pb.AuthRoleAddResponse> {
    return this.conn.unary(Auth.roleAdd, { name }, opts);
  }

  roleGrantPermission(role: string, key: Bytes, perm: PermissionType, opts?: CallOptions & RangeSpec): Promise<pb.AuthRoleGrantPermissionResponse> {
    const [k, rangeEnd] = rangeOf(toBuffer(key), opts);
    return this.conn.unary(Auth.roleGrantPermission, { name: role, perm: { permType: permTypes[perm], key: k, rangeEnd } }, opts);
  }
}
