/**
 * Password hashes: bcrypt at --bcrypt-cost, as etcd stores them (Go's x/crypto/bcrypt reads
 * the "$2b$" hashes made here, and these functions read etcd's "$2a$" ones). Both run on
 * libuv's thread pool (@node-rs/bcrypt's async API): a burst of logins with wrong passwords
 * costs CPU there, not the main thread's turns that serve everyone else.
 *
 * That pool (4 threads by default) also runs the WAL's and backend's file operations: were
 * every thread busy hashing, a put's fsync would queue behind the burst. So at most
 * `maxConcurrentBcrypt` hashes run at once; the rest wait here, bounded.
 */

import { etcdError } from '../errors/index.js';

/** The bcrypt addon is loaded by the first hash or check: servers without auth never use it. */
let bcrypt: Promise<typeof import('@node-rs/bcrypt')> | undefined;
const loadBcrypt = () => (bcrypt ??= import('@node-rs/bcrypt'));

/** bcrypt's limits (Go's bcrypt.MinCost / MaxCost); etcd falls back to 10 outside them. */
export const minBcryptCost = 4;
export const maxBcryptCost = 31;
export const defaultBcryptCost = 10;

/** bcrypt jobs on libuv's pool at once: half its default 4 threads, the rest left for file I/O. */
export const maxConcurrentBcrypt = 2;
/** bcrypt jobs waiting for a turn, at most; past it a request is refused as "too many requests". */
export const maxQueuedBcrypt = 1024;

let running = 0;
const waiting: Array<() => void> = [];

/** Runs `job` when a bcrypt slot is free. */
async function inTurn<T>(job: () => Promise<T>): Promise<T> {
  if (running < maxConcurrentBcrypt) {
    running++;
  } else {
    if (waiting.length >= maxQueuedBcrypt) throw etcdError('RequestTooManyRequests');
    await new Promise<void>((resolve) => waiting.push(resolve)); // the finishing job hands its slot over
  }
  try {
    return await job();
  } finally {
    const next = waiting.shift();
    if (next !== undefined) next();
    else running--;
  }
}

export function hashPassword(password: string, cost: number): Promise<string> {
  return inTurn(async () => (await loadBcrypt()).hash(password, cost));
}

/** Whether `password` matches `hashed`; a malformed hash matches nothing. */
export async function passwordMatches(password: string, hashed: Buffer): Promise<boolean> {
  if (hashed.length === 0) return false;
  return inTurn(async () => {
    const { verify } = await loadBcrypt();
    try {
      return await verify(password, hashed);
    } catch {
      return false; // not a bcrypt hash (Go's CompareHashAndPassword also just fails)
    }
  });
}
