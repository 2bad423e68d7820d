/**
 * The Auth service as one member serves it (etcd's v3_server.go auth methods): passwords
 * are checked and hashed here, on libuv's pool, before anything is proposed; the change
 * itself goes through raft and applies in the auth store. Also the gate every other
 * service asks: who a token is, and whether they may.
 */
import { etcdError } from '../errors/index.js';
import type { etcdserverpb as pb } from '../proto/index.js';
import type { Logger } from '../log/index.js';
import {
  type AuthStore, type AuthInfo, type AuthRequest, SimpleTokens, hashPassword, passwordMatches,
  minBcryptCost, maxBcryptCost, defaultBcryptCost,
} from '../auth/index.js';
import type { RaftRequest } from './request-codec.js';

export type { AuthInfo } from '../auth/index.js';

/** What the API asks of auth: the Auth RPCs and the permission gate. */
export interface AuthApi {
  readonly enabled: boolean;
  /** The user behind a `token` metadata value (etcd's AuthInfoFromCtx); throws InvalidAuthToken. */
  authInfo(token: string): AuthInfo;
  /** A verified client certificate's CN as the user, at the current auth revision (etcd's AuthInfoFromTLS). */
  authInfoFromCommonName(cn: string): AuthInfo;
  /** etcd's IsAdminPermitted. */
  checkAdmin(ai: AuthInfo | undefined): void;
  /** etcd's IsRangePermitted (Watch asks it at create). */
  checkRange(ai: AuthInfo | undefined, key: Buffer, rangeEnd: Buffer): void;
  authenticate(req: pb.AuthenticateRequest): Promise<pb.AuthenticateResponse>;
  call<T>(op: AuthCallOp, req: unknown, ai: AuthInfo | undefined): Promise<T>;
}

/** The Auth RPCs other than Authenticate and the two that carry a password. */
export type AuthCallOp = Exclude<AuthRequest['op'], 'authenticate'>;

export interface AuthServerDeps {
  store: AuthStore;
  log: Logger;
  bcryptCost: number;
  propose<T>(r: RaftRequest, ai: AuthInfo | undefined): Promise<T>;
  /** Waits until this member has applied everything committed (a linearizable read). */
  barrier(): Promise<void>;
}

export class AuthServer implements AuthApi {
  private readonly d: AuthServerDeps;
  private readonly cost: number;

  constructor(d: AuthServerDeps) {
    this.d = d;
    this.cost = d.bcryptCost;
    if (d.bcryptCost < minBcryptCost || d.bcryptCost > maxBcryptCost) {
      d.log.warn('use default bcrypt cost instead of the invalid given cost', { 'min-cost': minBcryptCost, 'max-cost': maxBcryptCost, 'default-cost': defaultBcryptCost, 'given-cost': d.bcryptCost });
      this.cost = defaultBcryptCost;
    }
  }

  get enabled(): boolean {
    return this.d.store.enabled;
  }

  authInfo(token: string): AuthInfo {
    return this.d.store.authInfoFromToken(token);
  }

  authInfoFromCommonName(cn: string): AuthInfo {
    return { username: cn, revision: this.d.store.revision };
  }

  checkAdmin(ai: AuthInfo | undefined): void {
    this.d.store.checkAdmin(ai);
  }

  checkRange(ai: AuthInfo | undefined, key: Buffer, rangeEnd: Buffer): void {
    this.d.store.checkRange(ai, key, rangeEnd);
  }

  /** etcd's Authenticate: check the password, then propose; again if auth changed meanwhile. */
  async authenticate(req: pb.AuthenticateRequest): Promise<pb.AuthenticateResponse> {
    await this.d.barrier();
    for (;;) {
      const checked = await this.checkPassword(req.name, req.password);
      const resp = await this.d.propose<pb.AuthenticateResponse>(
        { kind: 'auth', req: { op: 'authenticate', name: req.name, simpleToken: SimpleTokens.genPrefix() } }, undefined);
      if (checked === this.d.store.revision) {
        // A JWT is signed here, by the proposer, at the revision the entry applied at (= checked).
        const sign = this.d.store.tokens.sign;
        if (resp.token === '' && sign !== undefined) resp.token = await sign.call(this.d.store.tokens, req.name, checked);
        return resp;
      }
      this.d.log.info('revision when password checked became stale; retrying');
    }
  }

  /** etcd's CheckPassword: the auth revision the password was good at. */
  private async checkPassword(name: string, password: string): Promise<number> {
    const store = this.d.store;
    try {
      if (!store.enabled) throw etcdError('AuthNotEnabled');
      const u = store.getUser(name);
      if (u === undefined) throw etcdError('AuthFailed');
      if (u.options?.noPassword === true) throw etcdError('NoPasswordUser');
      const revision = store.revision;
      if (!(await passwordMatches(password, u.password))) throw etcdError('AuthFailed');
      return revision;
    } catch (e) {
      if ((e as { kind?: string }).kind !== 'AuthNotEnabled') {
        this.d.log.warn('invalid authentication was requested', { user: name, error: (e as Error).message });
      }
      throw e;
    }
  }

  async userAdd(req: pb.AuthUserAddRequest, ai: AuthInfo | undefined): Promise<pb.AuthUserAddResponse> {
    const hashed = req.options?.noPassword === true ? '' : await hashPassword(req.password, this.cost);
    return this.d.propose({ kind: 'auth', req: { op: 'userAdd', req, hashedPassword: hashed } }, ai);
  }

  async userChangePassword(req: pb.AuthUserChangePasswordRequest, ai: AuthInfo | undefined): Promise<pb.AuthUserChangePasswordResponse> {
    const hashed = await hashPassword(req.password, this.cost);
    return this.d.propose({ kind: 'auth', req: { op: 'userChangePassword', req, hashedPassword: hashed } }, ai);
  }

  call<T>(op: AuthCallOp, req: unknown, ai: AuthInfo | undefined): Promise<T> {
    if (op === 'userAdd') return this.userAdd(req as pb.AuthUserAddRequest, ai) as Promise<T>;
    if (op === 'userChangePassword') return this.userChangePassword(req as pb.AuthUserChangePasswordRequest, ai) as Promise<T>;
    return this.d.propose({ kind: 'auth', req: { op, req } as AuthRequest }, ai);
  }
}

/** The gate of a service without an auth store (the API layer's test doubles): auth is off. */
export const authOff: AuthApi = {
  enabled: false,
  authInfo: () => { throw etcdError('InvalidAuthToken'); },
  authInfoFromCommonName: (cn) => ({ username: cn, revision: 0 }),
  checkAdmin: () => undefined,
  checkRange: () => undefined,
  authenticate: () => Promise.reject(etcdError('AuthNotEnabled')),
  call: () => Promise.reject(etcdError('AuthNotEnabled')),
};
