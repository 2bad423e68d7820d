/**
 * The auth requests etcd proposes through raft (the auth_* fields of InternalRaftRequest),
 * as a tagged union, with their entry encoding. Passwords never enter the log in clear:
 * user add and change password carry the bcrypt hash in `hashedPassword` (etcd 3.5's field
 * 4 of AuthUserAddRequest and 3 of AuthUserChangePasswordRequest), made before proposing.
 */
import type { BinaryWriter } from '@bufbuild/protobuf/wire';
import { Reader, WIRE_BYTES, etcdserverpb as pb, InternalRaftRequest } from '../proto/index.js';

type Req<Op extends string, R> = { op: Op; req: R };

export type AuthRequest =
  | Req<'authEnable', pb.AuthEnableRequest>
  | Req<'authDisable', pb.AuthDisableRequest>
  /** The token prefix is drawn by the proposer; the entry's index completes the token. */
  | { op: 'authenticate'; name: string; simpleToken: string }
  | { op: 'userAdd'; req: pb.AuthUserAddRequest; hashedPassword: string }
  | Req<'userDelete', pb.AuthUserDeleteRequest>
  | { op: 'userChangePassword'; req: pb.AuthUserChangePasswordRequest; hashedPassword: string }
  | Req<'userGrantRole', pb.AuthUserGrantRoleRequest>
  | Req<'userRevokeRole', pb.AuthUserRevokeRoleRequest>
  | Req<'userGet', pb.AuthUserGetRequest>
  | Req<'userList', pb.AuthUserListRequest>
  | Req<'roleList', pb.AuthRoleListRequest>
  | Req<'roleAdd', pb.AuthRoleAddRequest>
  | Req<'roleDelete', pb.AuthRoleDeleteRequest>
  | Req<'roleGet', pb.AuthRoleGetRequest>
  | Req<'roleGrantPermission', pb.AuthRoleGrantPermissionRequest>
  | Req<'roleRevokePermission', pb.AuthRoleRevokePermissionRequest>;

export type AuthOp = AuthRequest['op'];

/** InternalRaftRequest field numbers (raft_internal.proto). */
const fieldOf = {
  authEnable: 1000, authDisable: 1011, authenticate: 1012,
  userAdd: 1100, userDelete: 1101, userGet: 1102, userChangePassword: 1103, userGrantRole: 1104,
  userRevokeRole: 1105, userList: 1106, roleList: 1107,
  roleAdd: 1200, roleDelete: 1201, roleGet: 1202, roleGrantPermission: 1203, roleRevokePermission: 1204,
} as const satisfies Record<AuthOp, number>;

/** etcd 3.5's hashedPassword field numbers inside the two password-carrying requests. */
const hashedPasswordField = { userAdd: 4, userChangePassword: 3 } as const;

const tagOf = (op: AuthOp): number => (fieldOf[op] << 3) | WIRE_BYTES;

/** Appends the auth field of an InternalRaftRequest (the header is the caller's). */
export function encodeAuthRequest(r: AuthRequest, w: BinaryWriter): void {
  w.uint32(tagOf(r.op)).fork();
  switch (r.op) {
    case 'authEnable': pb.AuthEnableRequest.encode(r.req, w); break;
    case 'authDisable': pb.AuthDisableRequest.encode(r.req, w); break;
    case 'authenticate': {
      // No password in the log: it was checked before proposing (etcd 3.5 leaves it out too).
      if (r.name !== '') w.uint32((1 << 3) | WIRE_BYTES).string(r.name);
      if (r.simpleToken !== '') w.uint32((3 << 3) | WIRE_BYTES).string(r.simpleToken);
      break;
    }
    case 'userAdd':
      pb.AuthUserAddRequest.encode({ ...r.req, password: '' }, w);
      if (r.hashedPassword !== '') w.uint32((hashedPasswordField.userAdd << 3) | WIRE_BYTES).string(r.hashedPassword);
      break;
    case 'userChangePassword':
      pb.AuthUserChangePasswordRequest.encode({ ...r.req, password: '' }, w);
      w.uint32((hashedPasswordField.userChangePassword << 3) | WIRE_BYTES).string(r.hashedPassword);
      break;
    case 'userDelete': pb.AuthUserDeleteRequest.encode(r.req, w); break;
    case 'userGrantRole': pb.AuthUserGrantRoleRequest.encode(r.req, w); break;
    case 'userRevokeRole': pb.AuthUserRevokeRoleRequest.encode(r.req, w); break;
    case 'userGet': pb.AuthUserGetRequest.encode(r.req, w); break;
    case 'userList': pb.AuthUserListRequest.encode(r.req, w); break;
    case 'roleList': pb.AuthRoleListRequest.encode(r.req, w); break;
    case 'roleAdd': pb.AuthRoleAddRequest.encode(r.req, w); break;
    case 'roleDelete': pb.AuthRoleDeleteRequest.encode(r.req, w); break;
    case 'roleGet': pb.AuthRoleGetRequest.encode(r.req, w); break;
    case 'roleGrantPermission': pb.AuthRoleGrantPermissionRequest.encode(r.req, w); break;
    case 'roleRevokePermission': pb.AuthRoleRevokePermissionRequest.encode(r.req, w); break;
  }
  w.join();
}

/**
 * The auth request in a decoded InternalRaftRequest, if it holds one. `data` is the entry's
 * bytes, read again for the hashed password (a field the 3.4 codec does not know).
 */
export function authRequestOf(m: InternalRaftRequest, data: Uint8Array): AuthRequest | undefined {
  if (m.authEnable) return { op: 'authEnable', req: m.authEnable };
  if (m.authDisable) return { op: 'authDisable', req: m.authDisable };
  if (m.authenticate) return { op: 'authenticate', name: m.authenticate.name, simpleToken: m.authenticate.simpleToken };
  if (m.authUserAdd) return { op: 'userAdd', req: m.authUserAdd, hashedPassword: hashedPassword(data, 'userAdd') };
  if (m.authUserChangePassword) {
    return { op: 'userChangePassword', req: m.authUserChangePassword, hashedPassword: hashedPassword(data, 'userChangePassword') };
  }
  if (m.authUserDelete) return { op: 'userDelete', req: m.authUserDelete };
  if (m.authUserGrantRole) return { op: 'userGrantRole', req: m.authUserGrantRole };
  if (m.authUserRevokeRole) return { op: 'userRevokeRole', req: m.authUserRevokeRole };
  if (m.authUserGet) return { op: 'userGet', req: m.authUserGet };
  if (m.authUserList) return { op: 'userList', req: m.authUserList };
  if (m.authRoleList) return { op: 'roleList', req: m.authRoleList };
  if (m.authRoleAdd) return { op: 'roleAdd', req: m.authRoleAdd };
  if (m.authRoleDelete) return { op: 'roleDelete', req: m.authRoleDelete };
  if (m.authRoleGet) return { op: 'roleGet', req: m.authRoleGet };
  if (m.authRoleGrantPermission) return { op: 'roleGrantPermission', req: m.authRoleGrantPermission };
  if (m.authRoleRevokePermission) return { op: 'roleRevokePermission', req: m.authRoleRevokePermission };
  return undefined;
}

/** The last hashedPassword inside the last `op` field of the entry ("" if none), as protobuf merges. */
function hashedPassword(data: Uint8Array, op: keyof typeof hashedPasswordField): string {
  const outer = new Reader(data);
  const outerTag = tagOf(op);
  const innerTag = (hashedPasswordField[op] << 3) | WIRE_BYTES;
  let found = '';
  while (!outer.done()) {
    const tag = outer.tag();
    if (tag !== outerTag) { outer.skip(tag & 7); continue; }
    const [s, e] = outer.sub();
    const inner = new Reader(data, s, e);
    while (!inner.done()) {
      const t = inner.tag();
      if (t !== innerTag) { inner.skip(t & 7); continue; }
      const [hs, he] = inner.sub();
      found = Buffer.from(data.buffer, data.byteOffset + hs, he - hs).toString('utf8');
    }
  }
  return found;
}
