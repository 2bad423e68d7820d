/**
 * etcd's simple tokens (auth/simple_token.go): "<16 random letters>.<raft index>", the
 * letters drawn by the member that proposes the Authenticate, the index added when the
 * entry applies (so every member knows the token). A token lives `ttlMs` past its last
 * use. Tokens are kept in least-recently-used order, which with one TTL for all is also
 * expiry order: expired tokens are dropped from the front, and past `maxTokens` the least
 * recently used goes first.
 */
import { randomInt } from 'node:crypto';

const letters = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
const prefixLength = 16;

/** Simple tokens held at most; the least recently used is dropped past it. */
export const maxSimpleTokens = 100_000;

interface TokenEntry {
  readonly user: string;
  expiresAt: number;
}

export class SimpleTokens {
  readonly kind = 'simple';
  private readonly tokens = new Map<string, TokenEntry>();
  private enabled = false;

  constructor(
    private readonly ttlMs: number,
    private readonly maxTokens = maxSimpleTokens,
    private readonly now: () => number = () => performance.now(),
  ) {}

  enable(): void {
    this.enabled = true;
  }

  /** Auth disabled: every token is forgotten (etcd's tokenSimple.disable). */
  disable(): void {
    this.enabled = false;
    this.tokens.clear();
  }

  /** The random half of a token, drawn before proposing. */
  static genPrefix(): string {
    let s = '';
    for (let i = 0; i < prefixLength; i++) s += letters[randomInt(letters.length)];
    return s;
  }

  assign(user: string, prefix: string, index: number): string {
    const token = `${prefix}.${index}`;
    if (!this.enabled) return token;
    this.expire();
    while (this.tokens.size >= this.maxTokens) this.tokens.delete(this.tokens.keys().next().value as string);
    this.tokens.set(token, { user, expiresAt: this.now() + this.ttlMs });
    return token;
  }

  /** The user a live token belongs to (its TTL starts again), or undefined. */
  userOf(token: string): string | undefined {
    this.expire();
    const e = this.tokens.get(token);
    if (e === undefined) return undefined;
    e.expiresAt = this.now() + this.ttlMs;
    this.tokens.delete(token); // re-insert: the map stays in last-use order
    this.tokens.set(token, e);
    return e.user;
  }

  /** etcd's tokenSimple.info: the token's user at the store's current revision. */
  info(token: string, revision: number): { username: string; revision: number } | undefined {
    const user = this.userOf(token);
    return user === undefined ? undefined : { username: user, revision };
  }

  invalidateUser(user: string): void {
    for (const [t, e] of this.tokens) if (e.user === user) this.tokens.delete(t);
  }

  get size(): number {
    return this.tokens.size;
  }

  private expire(): void {
    const now = this.now();
    for (const [t, e] of this.tokens) {
      if (e.expiresAt > now) return;
      this.tokens.delete(t);
    }
  }
}
