/**
 * auth/: etcd's auth store — users, roles, key permissions, the enabled flag and auth
 * revision in etcd's buckets, simple and JWT tokens, bcrypt password hashes. The server applies
 * auth entries through it and asks it every permission question.
 */
export { AuthStore, rootUser, rootRole } from './store.js';
export type { AuthStoreOptions } from './store.js';
export type { AuthInfo } from './auth-info.js';
export { encodeAuthRequest, authRequestOf } from './raft-request.js';
export type { AuthRequest, AuthOp } from './raft-request.js';
export { SimpleTokens, maxSimpleTokens } from './simple-tokens.js';
export { hashPassword, passwordMatches, minBcryptCost, maxBcryptCost, defaultBcryptCost } from './password.js';
export { IntervalUnion, permissionInterval, affineCompare } from './intervals.js';
export { JwtTokens, jwtAlgs } from './jwt-tokens.js';
export type { JwtAlg, JwtOptions } from './jwt-tokens.js';
export { NopTokens, newTokenProvider } from './token-provider.js';
export type { TokenProvider, TokenProviderConfig } from './token-provider.js';
