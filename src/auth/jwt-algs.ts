/**
 * The sign methods golang-jwt registers that etcd's Key() supports: what --auth-token's
 * sign-method accepts. A module of its own so the flag parser (cli/) can check the flag
 * without loading the auth store (auth/'s second entry module, reached through server/config.ts).
 */
export const jwtAlgs = ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512'] as const;
export type JwtAlg = typeof jwtAlgs[number];
