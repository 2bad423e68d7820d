/**
 * etcd's TokenProvider (auth/store.go): what `--auth-token` chose — simple tokens (kept in
 * memory on every member), JWT (signed, stateless) or, for an empty option, none at all
 * (etcd's tokenNop: every Authenticate fails, every token is invalid).
 */
import { etcdError } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import { JwtTokens, type JwtOptions } from './jwt-tokens.js';
import { SimpleTokens } from './simple-tokens.js';
import type { AuthInfo } from './auth-info.js';

export interface TokenProvider {
  readonly kind: 'simple' | 'jwt' | 'nop';
  enable(): void;
  disable(): void;
  invalidateUser(user: string): void;
  /** At apply of an Authenticate (every member): the token, or '' when the proposer signs it (`sign`). */
  assign(user: string, prefix: string, index: number): string;
  /** The caller behind a token, at `revision` for tokens that do not carry their own; undefined if invalid. */
  info(token: string, revision: number): AuthInfo | undefined;
  /** The proposer's signing of a token `assign` left empty. */
  sign?(user: string, revision: number): Promise<string>;
}

/** etcd's tokenNop (`--auth-token ''`). */
export class NopTokens implements TokenProvider {
  readonly kind = 'nop';
  enable(): void {}
  disable(): void {}
  invalidateUser(): void {}
  assign(): string {
    throw etcdError('AuthFailed');
  }
  info(): undefined {
    return undefined;
  }
}

/** What `--auth-token` (and `--auth-token-ttl` for simple tokens) configured. */
export type TokenProviderConfig =
  | { readonly kind: 'simple'; readonly ttlMs: number }
  | { readonly kind: 'jwt'; readonly jwt: JwtOptions }
  | { readonly kind: 'nop' };

export function newTokenProvider(c: TokenProviderConfig, log?: Logger): TokenProvider {
  switch (c.kind) {
    case 'simple':
      log?.warn('simple token is not cryptographically signed');
      return new SimpleTokens(c.ttlMs);
    case 'jwt':
      return new JwtTokens(c.jwt, log);
    case 'nop':
      return new NopTokens();
  }
}
