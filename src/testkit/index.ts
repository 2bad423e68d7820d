/**
 * testkit/: helpers the tests of every layer share. A leaf: it imports nothing of ours, so a
 * low layer's tests (raft/, mvcc/) can use it without an arrow up the layer table.
 */

import { execFileSync } from 'node:child_process';

/**
 * Runs an ES module script in a child node with these flags (what a test process cannot be
 * given: --expose-gc, --allow-natives-syntax, V8 flags); returns its stdout. Throws if the
 * child fails, or is still running after timeoutMs (then it is killed).
 */
export function inChildNode(nodeFlags: readonly string[], script: string, env: NodeJS.ProcessEnv = process.env, timeoutMs = 120_000): string {
  return execFileSync(process.execPath, [...nodeFlags, '--input-type=module', '-e', script], { encoding: 'utf8', env, timeout: timeoutMs });
}

/** A small, fast seeded PRNG (mulberry32): the same seed replays the same run. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export * from './linearizability/index.js';
