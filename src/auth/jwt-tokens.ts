/**
 * etcd's JWT tokens (auth/jwt.go): a token is a JWS whose claims are etcd's — `username`,
 * `revision` (the auth revision when it was issued) and `exp` (now + ttl, in seconds) — signed
 * with the key `--auth-token jwt,...` names, so a token from any member (or from etcd with the
 * same key) is good on every member, and stateless: nothing is kept per token, a permission
 * change makes older tokens "old" through their revision claim.
 *
 * Signing uses `jose` and is asynchronous, so it is done by the member that proposed the
 * Authenticate once the entry applied (etcd signs in apply, but only the proposer's answer
 * leaves the member). Verifying must be synchronous (every call resolves its caller before
 * anything else), so it is done with node:crypto on the same keys: HMAC, RSASSA-PKCS1-v1_5,
 * RSASSA-PSS and ECDSA in JWS's raw r||s form.
 */
import { createHmac, timingSafeEqual, verify, constants, type KeyObject } from 'node:crypto';
import { etcdError } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import type { AuthInfo } from './auth-info.js';

/** `jose` (some 60 modules) is loaded by the first signature: most servers never sign a JWT. */
let jose: Promise<typeof import('jose')> | undefined;
const loadJose = () => (jose ??= import('jose'));

import type { JwtAlg } from './jwt-algs.js';
export { jwtAlgs, type JwtAlg } from './jwt-algs.js';

export interface JwtOptions {
  readonly alg: JwtAlg;
  /** The private (or HMAC) key; absent when only a public key was given (verify only, etcd's verifyOnly). */
  readonly signKey?: KeyObject;
  /** The key tokens are checked with: the public half, or the HMAC key. */
  readonly verifyKey: KeyObject;
  /** ttl= (etcd's default 5 minutes). */
  readonly ttlMs: number;
}

/** Claims as etcd writes them, checked before a token is believed. */
interface EtcdClaims {
  username: string;
  revision: number;
}

export class JwtTokens {
  readonly kind = 'jwt';
  private readonly hash: string;

  constructor(private readonly o: JwtOptions, private readonly log?: Logger, private readonly nowMs: () => number = Date.now) {
    this.hash = `sha${o.alg.slice(2)}`;
  }

  // etcd's tokenJWT keeps no state: enabling, disabling and user changes do nothing here.
  enable(): void {}
  disable(): void {}
  invalidateUser(): void {}

  /** At apply: nothing; the proposer signs (`sign`) once the entry applied. */
  assign(): string {
    return '';
  }

  /** etcd's tokenJWT.assign: a token for `username` at auth revision `revision`. */
  async sign(username: string, revision: number): Promise<string> {
    if (this.o.signKey === undefined) throw etcdError('JwtVerifyOnly');
    const exp = Math.floor((this.nowMs() + this.o.ttlMs) / 1000);
    const { SignJWT } = await loadJose();
    const token = await new SignJWT({ username, revision })
      .setProtectedHeader({ alg: this.o.alg, typ: 'JWT' })
      .setExpirationTime(exp)
      .sign(this.o.signKey);
    this.log?.debug('created/assigned a new JWT token', { 'user-name': username, revision });
    return token;
  }

  /** etcd's tokenJWT.info: the claims of a token signed with our key by our method, not expired. */
  info(token: string): AuthInfo | undefined {
    const v = this.verify(token);
    if ('error' in v) {
      this.log?.warn('failed to parse a JWT token', { token, error: v.error });
      return undefined;
    }
    if (v.claims === undefined) {
      this.log?.warn('invalid JWT token', { token });
      return undefined;
    }
    return { username: v.claims.username, revision: v.claims.revision };
  }

  /** golang-jwt's Parse (an error) then etcd's look at the claims (undefined when they are not etcd's). */
  private verify(token: string): { error: string } | { claims: EtcdClaims | undefined } {
    const parts = token.split('.');
    if (parts.length !== 3) return { error: 'token contains an invalid number of segments' };
    const [h, p, s] = parts as [string, string, string];
    const header = parseJsonSegment(h);
    const c = parseJsonSegment(p);
    if (header === undefined || c === undefined) return { error: 'malformed token' };
    if (header.alg !== this.o.alg) return { error: 'invalid signing method' };
    if (!this.signatureMatches(Buffer.from(`${h}.${p}`), Buffer.from(s, 'base64url'))) return { error: 'signature is invalid' };
    // golang-jwt's MapClaims.Valid: exp, iat and nbf are checked when present.
    const now = Math.floor(this.nowMs() / 1000);
    if (typeof c.exp === 'number' && now > c.exp) return { error: 'Token is expired' };
    if (typeof c.iat === 'number' && now < c.iat) return { error: 'Token used before issued' };
    if (typeof c.nbf === 'number' && now < c.nbf) return { error: 'Token is not valid yet' };
    if (typeof c.username !== 'string' || typeof c.revision !== 'number' || !(c.revision >= 0)) return { claims: undefined };
    return { claims: { username: c.username, revision: Math.trunc(c.revision) } };
  }

  private signatureMatches(input: Buffer, sig: Buffer): boolean {
    const key = this.o.verifyKey;
    try {
      switch (this.o.alg.slice(0, 2)) {
        case 'HS': {
          const mac = createHmac(this.hash, key).update(input).digest();
          return mac.length === sig.length && timingSafeEqual(mac, sig);
        }
        case 'RS':
          return verify(this.hash, input, { key, padding: constants.RSA_PKCS1_PADDING }, sig);
        case 'PS':
          return verify(this.hash, input, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO }, sig);
        default:
          return verify(this.hash, input, { key, dsaEncoding: 'ieee-p1363' }, sig);
      }
    } catch {
      return false; // a signature of the wrong shape for the key
    }
  }
}

/** A base64url JSON object segment, or undefined. */
function parseJsonSegment(seg: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(Buffer.from(seg, 'base64url').toString('utf8'));
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? v as Record<string, unknown> : undefined;
  } catch {
    return undefined;
  }
}
