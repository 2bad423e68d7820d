/**
 * Password hashes: bcrypt at --bcrypt-cost, as etcd stores them (Go's x/crypto/bcrypt reads
 * the "$2b$" hashes made here, and these functions read etcd's "$2a$" ones). Both run on
 * libuv's thread pool (@node-rs/bcrypt's async API): a burst of logins with wrong passwords
 * costs CPU there, not the main thread's turns that serve everyone else.
 */
import { hash, verify } from '@node-rs/bcrypt';

/** bcrypt's limits (Go's bcrypt.MinCost / MaxCost); etcd falls back to 10 outside them. */
export const minBcryptCost = 4;
export const maxBcryptCost = 31;
export const defaultBcryptCost = 10;

export function hashPassword(password: string, cost: number): Promise<string> {
  return hash(password, cost);
}

/** Whether `password` matches `hashed`; a malformed hash matches nothing. */
export async function passwordMatches(password: string, hashed: Buffer): Promise<boolean> {
  if (hashed.length === 0) return false;
  try {
    return await verify(password, hashed);
  } catch {
    return false; // not a bcrypt hash (Go's CompareHashAndPassword also just fails)
  }
}
