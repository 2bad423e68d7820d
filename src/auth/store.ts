/**
 * etcd's auth store (auth/store.go): users, roles and their key permissions in etcd's
 * buckets (auth: authEnabled, authRevision; authUsers, authRoles: authpb.User / authpb.Role
 * as etcd encodes them), the enabled flag and the auth revision, which every change bumps.
 *
 * `apply` is called by the applier with a decoded log entry and is a pure function of the
 * backend's state and the entry (the token map aside, which is memory only, as in etcd).
 * Permission checks read a per-user cache of merged intervals, rebuilt on every change
 * (etcd's refreshRangePermCache).
 */
import { authpb, etcdserverpb as pb } from '../proto/index.js';
import { etcdError } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import type { Backend } from '../storage/index.js';
import { IntervalUnion, permissionInterval, isFromKey } from './intervals.js';
import type { AuthRequest } from './raft-request.js';
import { SimpleTokens } from './simple-tokens.js';
import type { TokenProvider } from './token-provider.js';
import type { AuthInfo } from './auth-info.js';

export const rootUser = 'root';
export const rootRole = 'root';

const enableFlagKey = Buffer.from('authEnabled');
const revisionKey = Buffer.from('authRevision');
const authEnabled = Buffer.from([1]);
const authDisabled = Buffer.from([0]);

interface UserPerms {
  readonly root: boolean;
  readonly read: IntervalUnion;
  readonly write: IntervalUnion;
}

export interface AuthStoreOptions {
  backend: Backend;
  log: Logger;
  /** --auth-token-ttl, in ms (simple tokens, when no `tokens` is given). */
  tokenTtlMs: number;
  /** The --auth-token provider; default simple tokens with `tokenTtlMs`. */
  tokens?: TokenProvider;
}

export class AuthStore {
  private readonly be: Backend;
  private readonly log: Logger;
  readonly tokens: TokenProvider;
  private enabledFlag: boolean;
  private rev: number;
  private perms = new Map<string, UserPerms>();

  constructor(opts: AuthStoreOptions) {
    this.be = opts.backend;
    this.log = opts.log;
    this.tokens = opts.tokens ?? new SimpleTokens(opts.tokenTtlMs);
    this.enabledFlag = this.be.get('auth', enableFlagKey)?.equals(authEnabled) ?? false;
    this.rev = readRevision(this.be);
    if (this.enabledFlag) this.tokens.enable();
    // etcd's NewAuthStore: a fresh store starts at revision 1 (every member does the same).
    if (this.rev === 0) this.commitRevision();
    this.refreshPermCache();
  }

  /** The auth buckets were replaced (a leader's snapshot installed): read them again (etcd's Recover). */
  reload(): void {
    this.enabledFlag = this.be.get('auth', enableFlagKey)?.equals(authEnabled) ?? false;
    this.rev = readRevision(this.be);
    if (this.enabledFlag) this.tokens.enable();
    else this.tokens.disable();
    this.refreshPermCache();
  }

  get enabled(): boolean {
    return this.enabledFlag;
  }

  get revision(): number {
    return this.rev;
  }

  // ---------------------------------------------------------------- reads

  getUser(name: string): authpb.User | undefined {
    const key = nameKey(name);
    const v = key === undefined ? undefined : this.be.get('authUsers', key);
    return v === undefined ? undefined : authpb.User.decode(v);
  }

  getRole(name: string): authpb.Role | undefined {
    const key = nameKey(name);
    const v = key === undefined ? undefined : this.be.get('authRoles', key);
    return v === undefined ? undefined : authpb.Role.decode(v);
  }

  private allUsers(): authpb.User[] {
    const out: authpb.User[] = [];
    for (const [, v] of this.be.scan('authUsers')) out.push(authpb.User.decode(v));
    return out;
  }

  private allRoleNames(): string[] {
    const out: string[] = [];
    for (const [k] of this.be.scan('authRoles')) out.push(k.toString('utf8'));
    return out;
  }

  hasRole(user: string, role: string): boolean {
    return this.getUser(user)?.roles.includes(role) ?? false;
  }

  // ---------------------------------------------------------------- writes

  private putUser(u: authpb.User): void {
    this.be.put('authUsers', Buffer.from(u.name), Buffer.from(authpb.User.encode(u).finish()));
  }

  private putRole(r: authpb.Role): void {
    this.be.put('authRoles', Buffer.from(r.name), Buffer.from(authpb.Role.encode(r).finish()));
  }

  private commitRevision(): void {
    this.rev++;
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(this.rev));
    this.be.put('auth', revisionKey, b);
  }

  /** After a change: a new revision (outstanding writes from older ones are refused) and fresh perms. */
  private changed(): void {
    this.commitRevision();
    this.refreshPermCache();
  }

  private refreshPermCache(): void {
    const perms = new Map<string, UserPerms>();
    const roles = new Map<string, authpb.Role | undefined>();
    for (const u of this.allUsers()) {
      const read = [];
      const write = [];
      for (const name of u.roles) {
        if (!roles.has(name)) roles.set(name, this.getRole(name));
        for (const p of roles.get(name)?.keyPermission ?? []) {
          const iv = permissionInterval(p.key, p.rangeEnd);
          if (p.permType !== authpb.Permission_Type.WRITE) read.push(iv);
          if (p.permType !== authpb.Permission_Type.READ) write.push(iv);
        }
      }
      perms.set(Buffer.from(u.name).toString('utf8'), {
        root: u.roles.includes(rootRole), read: new IntervalUnion(read), write: new IntervalUnion(write),
      });
    }
    this.perms = perms;
  }

  // ---------------------------------------------------------------- apply

  /** Applies one auth entry (etcd's authApplierV3 + applierV3backend); `index` is the entry's. */
  apply(r: AuthRequest, ai: AuthInfo, index: number): object {
    if (needsAdmin(r)) this.checkAdmin(ai);
    switch (r.op) {
      case 'authEnable': this.authEnable(); return pb.AuthEnableResponse.fromPartial({});
      case 'authDisable': this.authDisable(); return pb.AuthDisableResponse.fromPartial({});
      case 'authenticate': return pb.AuthenticateResponse.fromPartial({ token: this.authenticate(r.name, r.simpleToken, index) });
      case 'userAdd': this.userAdd(r.req, r.hashedPassword); return pb.AuthUserAddResponse.fromPartial({});
      case 'userDelete': this.userDelete(r.req.name); return pb.AuthUserDeleteResponse.fromPartial({});
      case 'userChangePassword': this.userChangePassword(r.req.name, r.hashedPassword); return pb.AuthUserChangePasswordResponse.fromPartial({});
      case 'userGrantRole': this.userGrantRole(r.req.user, r.req.role); return pb.AuthUserGrantRoleResponse.fromPartial({});
      case 'userRevokeRole': this.userRevokeRole(r.req.name, r.req.role); return pb.AuthUserRevokeRoleResponse.fromPartial({});
      case 'userGet': {
        // A user may read itself without being root.
        if (r.req.name !== ai.username) this.checkAdmin(ai);
        const u = this.getUser(r.req.name);
        if (u === undefined) throw etcdError('UserNotFound');
        return pb.AuthUserGetResponse.fromPartial({ roles: u.roles });
      }
      case 'userList': return pb.AuthUserListResponse.fromPartial({ users: this.allUsers().map((u) => Buffer.from(u.name).toString('utf8')) });
      case 'roleList': return pb.AuthRoleListResponse.fromPartial({ roles: this.allRoleNames() });
      case 'roleAdd': this.roleAdd(r.req.name); return pb.AuthRoleAddResponse.fromPartial({});
      case 'roleDelete': this.roleDelete(r.req.role); return pb.AuthRoleDeleteResponse.fromPartial({});
      case 'roleGet': {
        // A user may read the roles it has without being root.
        if (!this.hasRole(ai.username, r.req.role)) this.checkAdmin(ai);
        const role = this.getRole(r.req.role);
        if (role === undefined) throw etcdError('RoleNotFound');
        return pb.AuthRoleGetResponse.fromPartial({ perm: role.keyPermission });
      }
      case 'roleGrantPermission': this.roleGrantPermission(r.req); return pb.AuthRoleGrantPermissionResponse.fromPartial({});
      case 'roleRevokePermission': this.roleRevokePermission(r.req); return pb.AuthRoleRevokePermissionResponse.fromPartial({});
    }
  }

  private authEnable(): void {
    if (this.enabledFlag) {
      this.log.warn('authentication is already enabled; ignored auth enable request');
      return;
    }
    const root = this.getUser(rootUser);
    if (root === undefined) throw etcdError('RootUserNotExist');
    if (!root.roles.includes(rootRole)) throw etcdError('RootRoleNotExist');
    this.be.put('auth', enableFlagKey, authEnabled);
    this.enabledFlag = true;
    this.tokens.enable();
    this.refreshPermCache();
    this.log.info('enabled authentication');
  }

  private authDisable(): void {
    if (!this.enabledFlag) return;
    this.be.put('auth', enableFlagKey, authDisabled);
    this.commitRevision();
    this.enabledFlag = false;
    this.tokens.disable();
    this.log.info('disabled authentication');
  }

  private authenticate(name: string, prefix: string, index: number): string {
    if (!this.enabledFlag) throw etcdError('AuthNotEnabled');
    const u = this.getUser(name);
    if (u === undefined || u.options?.noPassword === true) throw etcdError('AuthFailed');
    const token = this.tokens.assign(name, prefix, index);
    this.log.debug('authenticated a user', { user: name });
    return token;
  }

  private userAdd(req: pb.AuthUserAddRequest, hashedPassword: string): void {
    if (req.name.length === 0) throw etcdError('UserEmpty');
    if (nameKey(req.name) === undefined) throw etcdError('AuthNameTooLong');
    if (this.getUser(req.name) !== undefined) throw etcdError('UserAlreadyExist');
    const noPassword = req.options?.noPassword === true;
    this.putUser({
      name: Buffer.from(req.name),
      password: noPassword ? Buffer.alloc(0) : Buffer.from(hashedPassword),
      roles: [],
      options: { noPassword },
    });
    this.changed();
    this.log.info('added a user', { 'user-name': req.name });
  }

  private userDelete(name: string): void {
    if (this.enabledFlag && name === rootUser) throw etcdError('InvalidAuthMgmt');
    if (this.getUser(name) === undefined) throw etcdError('UserNotFound');
    this.be.del('authUsers', Buffer.from(name));
    this.changed();
    this.tokens.invalidateUser(name);
    this.log.info('deleted a user', { 'user-name': name });
  }

  private userChangePassword(name: string, hashedPassword: string): void {
    const u = this.getUser(name);
    if (u === undefined) throw etcdError('UserNotFound');
    this.putUser({ ...u, password: Buffer.from(hashedPassword) });
    this.changed();
    this.tokens.invalidateUser(name);
    this.log.info('changed a password of a user', { 'user-name': name });
  }

  private userGrantRole(name: string, role: string): void {
    const u = this.getUser(name);
    if (u === undefined) throw etcdError('UserNotFound');
    if (role !== rootRole && this.getRole(role) === undefined) throw etcdError('RoleNotFound');
    if (u.roles.includes(role)) {
      this.log.warn('ignored grant role request to a user', { 'user-name': name, 'user-roles': u.roles, 'duplicate-role-name': role });
      return;
    }
    // Go's sort.Strings: byte order of the UTF-8 encodings.
    const roles = [...u.roles, role].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    this.putUser({ ...u, roles });
    this.changed();
    this.log.info('granted a role to a user', { 'user-name': name, 'role-name': role });
  }

  private userRevokeRole(name: string, role: string): void {
    if (this.enabledFlag && name === rootUser && role === rootRole) throw etcdError('InvalidAuthMgmt');
    const u = this.getUser(name);
    if (u === undefined) throw etcdError('UserNotFound');
    const roles = u.roles.filter((r) => r !== role);
    if (roles.length === u.roles.length) throw etcdError('RoleNotGranted');
    this.putUser({ ...u, roles });
    this.changed();
    this.log.info('revoked a role from a user', { 'user-name': name, 'role-name': role });
  }

  private roleAdd(name: string): void {
    if (name.length === 0) throw etcdError('RoleEmpty');
    if (nameKey(name) === undefined) throw etcdError('AuthNameTooLong');
    if (this.getRole(name) !== undefined) throw etcdError('RoleAlreadyExist');
    this.putRole({ name: Buffer.from(name), keyPermission: [] });
    // etcd's RoleAdd bumps the revision without refreshing the cache (a new role is in no user).
    this.commitRevision();
    this.log.info('created a role', { 'role-name': name });
  }

  private roleDelete(name: string): void {
    if (this.enabledFlag && name === rootRole) throw etcdError('InvalidAuthMgmt');
    if (this.getRole(name) === undefined) throw etcdError('RoleNotFound');
    this.be.del('authRoles', Buffer.from(name));
    for (const u of this.allUsers()) {
      const roles = u.roles.filter((r) => r !== name);
      if (roles.length !== u.roles.length) this.putUser({ ...u, roles });
    }
    this.changed();
    this.log.info('deleted a role', { 'role-name': name });
  }

  private roleGrantPermission(req: pb.AuthRoleGrantPermissionRequest): void {
    const role = this.getRole(req.name);
    if (role === undefined) throw etcdError('RoleNotFound');
    const perm = req.perm ?? authpb.Permission.fromPartial({});
    const perms = role.keyPermission;
    // etcd searches the first permission at or after the key: only that one is updated in place.
    const idx = perms.findIndex((p) => Buffer.compare(p.key, perm.key) >= 0);
    const at = idx === -1 ? undefined : perms[idx];
    if (at !== undefined && at.key.equals(perm.key) && at.rangeEnd.equals(perm.rangeEnd)) {
      at.permType = perm.permType;
    } else {
      perms.push({ key: perm.key, rangeEnd: perm.rangeEnd, permType: perm.permType });
      stableSortByKey(perms);
    }
    this.putRole(role);
    this.changed();
    this.log.info('granted/updated a permission to a user', { 'role-name': req.name, key: perm.key.toString(), 'range-end': perm.rangeEnd.toString() });
  }

  private roleRevokePermission(req: pb.AuthRoleRevokePermissionRequest): void {
    const role = this.getRole(req.role);
    if (role === undefined) throw etcdError('RoleNotFound');
    const kept = role.keyPermission.filter((p) => !p.key.equals(req.key) || !p.rangeEnd.equals(req.rangeEnd));
    if (kept.length === role.keyPermission.length) throw etcdError('PermissionNotGranted');
    this.putRole({ ...role, keyPermission: kept });
    this.changed();
    this.log.info('revoked a permission on range', { 'role-name': req.role, key: req.key.toString(), 'range-end': req.rangeEnd.toString() });
  }

  // ---------------------------------------------------------------- checks

  /** etcd's IsAdminPermitted: the user must have the root role (when auth is on). */
  checkAdmin(ai: AuthInfo | undefined): void {
    if (!this.enabledFlag) return;
    if (ai === undefined || ai.username === '') throw etcdError('UserEmpty');
    const p = this.perms.get(ai.username);
    if (p === undefined) throw etcdError('UserNotFound');
    if (!p.root) throw etcdError('PermissionDenied');
  }

  checkRange(ai: AuthInfo | undefined, key: Buffer, rangeEnd: Buffer): void {
    this.checkOp(ai, key, rangeEnd, 'read');
  }

  checkPut(ai: AuthInfo | undefined, key: Buffer): void {
    this.checkOp(ai, key, emptyKey, 'write');
  }

  checkDeleteRange(ai: AuthInfo | undefined, key: Buffer, rangeEnd: Buffer): void {
    this.checkOp(ai, key, rangeEnd, 'write');
  }

  /** etcd's isOpPermitted. */
  private checkOp(ai: AuthInfo | undefined, key: Buffer, rangeEnd: Buffer, kind: 'read' | 'write'): void {
    if (!this.enabledFlag) return;
    if (ai === undefined || ai.revision === 0) throw etcdError('UserEmpty');
    if (ai.revision < this.rev) {
      this.log.warn('request auth revision is less than current node auth revision', {
        'current node auth revision': this.rev, 'request auth revision': ai.revision, 'request key': key.toString(),
      });
      throw etcdError('AuthOldRevision');
    }
    const p = this.perms.get(ai.username);
    if (p === undefined) throw etcdError('PermissionDenied');
    if (p.root) return;
    const set = kind === 'read' ? p.read : p.write;
    const ok = rangeEnd.length === 0
      ? set.containsKey(key)
      : set.contains(key, isFromKey(rangeEnd) ? emptyKey : rangeEnd);
    if (!ok) throw etcdError('PermissionDenied');
  }

  /** The user behind a token, at the current revision; etcd's ErrInvalidAuthToken if none. */
  authInfoFromToken(token: string): AuthInfo {
    const ai = this.tokens.info(token, this.rev);
    if (ai === undefined) {
      this.log.warn('invalid auth token', { token });
      throw etcdError('InvalidAuthToken');
    }
    return ai;
  }
}

const emptyKey = Buffer.alloc(0);

/** LMDB's largest key (bbolt's is 32 KiB); LMDB refuses empty keys too. */
export const maxNameBytes = 1978;

/** A user or role name as its bucket key, or undefined if no such key can exist (bbolt finds nothing). */
function nameKey(name: string): Buffer | undefined {
  const key = Buffer.from(name);
  return key.length === 0 || key.length > maxNameBytes ? undefined : key;
}

function readRevision(be: Backend): number {
  const v = be.get('auth', revisionKey);
  return v === undefined || v.length !== 8 ? 0 : Number(v.readBigUInt64BE(0));
}

/** etcd's needAdminPermission: auth changes and listings need the root role. */
function needsAdmin(r: AuthRequest): boolean {
  return r.op !== 'authenticate' && r.op !== 'userGet' && r.op !== 'roleGet';
}

/** Go's sort.Sort by key (not stable, but keys are distinct per range_end so ties are rare). */
function stableSortByKey(perms: authpb.Permission[]): void {
  perms.sort((a, b) => Buffer.compare(a.key, b.key));
}
