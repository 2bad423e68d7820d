// The concord server's threads end up with the intended nice values (issue 14: the main
// thread's loop delay under load), read from /proc: a real server started by bin/concord.js;
// and that launcher's other process settings (V8's worker pool, glibc's mmap threshold).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Server, runConcord, startServer } from './harness.js';
import { chunkBytes } from '../src/raft/payload-arena.js';
import { MAIN_PRIORITY_THREADS, threadsOf } from '../src/cli/thread-priority.js';

const servers: Server[] = [];
after(async () => { for (const s of servers) await s.destroy(); });

/**
 * The server's main thread's nice value and the set of its other threads' values, leaving out
 * the threads that run at the main thread's value by design (MAIN_PRIORITY_THREADS: the WAL's
 * sync thread, which starts only after a slow fdatasync, so a slow disk at start made these
 * tests see it or not; src/cli/thread-priority.test.ts checks its value).
 */
function niceValues(pid: number): { main: number; others: Set<number>; count: number } {
  const threads = threadsOf(pid).filter((t) => !MAIN_PRIORITY_THREADS.has(t.name));
  const main = threads.find((t) => t.tid === pid);
  assert.ok(main, `no main thread in /proc/${pid}/task`);
  const others = threads.filter((t) => t !== main);
  return { main: main.nice, others: new Set(others.map((t) => t.nice)), count: others.length };
}

const linuxConcord = { skip: !runConcord() || process.platform !== 'linux' };

test('concord runs every thread but the main one at nice 5 by default', linuxConcord, async () => {
  const s = await startServer({ target: 'concord', env: { CONCORD_THREAD_NICE: '', CONCORD_MAIN_NICE: '' } }); // the defaults, whatever the test's environment
  servers.push(s);
  await s.client().put({ key: Buffer.from('k'), value: Buffer.from('v') }); // the libuv pool is at work
  const v = niceValues(s.pid!);
  assert.equal(v.main, 0);
  assert.ok(v.count >= 5, `V8's workers (at least 1) and libuv's pool (4): ${v.count}`);
  assert.deepEqual(v.others, new Set([5]));
});

test('CONCORD_THREAD_NICE=off leaves every thread at the nice value it started with', linuxConcord, async () => {
  const s = await startServer({ target: 'concord', env: { CONCORD_THREAD_NICE: 'off' } });
  servers.push(s);
  const v = niceValues(s.pid!);
  assert.equal(v.main, 0);
  assert.deepEqual(v.others, new Set([0]));
});

/** The command line the server's process runs (after bin/concord.js's launcher exec'd node). */
function cmdline(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').filter(Boolean);
}

test('started as a program, concord runs V8 with one worker fewer than the CPUs (at least 1), as the same process', linuxConcord, async () => {
  const s = await startServer({ target: 'concord', env: { CONCORD_V8_POOL_SIZE: '', CONCORD_NODE_ARGS: '' } });
  servers.push(s);
  const argv = cmdline(s.pid!);
  // The launcher execs node: the pid the harness spawned is the server itself, not a shell.
  assert.match(argv[0]!, /(^|\/)node$/);
  assert.ok(argv.includes(`--v8-pool-size=${Math.max(1, availableParallelism() - 1)}`), argv.join(' '));
});

test('CONCORD_V8_POOL_SIZE sets the V8 worker count and CONCORD_NODE_ARGS adds node flags', linuxConcord, async () => {
  const wide = await startServer({ target: 'concord', env: { CONCORD_V8_POOL_SIZE: '3' }, nodeArgs: ['--max-old-space-size=512'] });
  servers.push(wide);
  assert.ok(cmdline(wide.pid!).includes('--v8-pool-size=3'));
  assert.ok(cmdline(wide.pid!).includes('--max-old-space-size=512'));
  const narrow = await startServer({ target: 'concord', env: { CONCORD_V8_POOL_SIZE: '1' } });
  servers.push(narrow);
  for (const srv of [wide, narrow]) await srv.client().put({ key: Buffer.from('k'), value: Buffer.from('v') }); // both pools started
  // Node starts the V8 workers with the process; the rest of the threads are the same in both.
  assert.equal(niceValues(wide.pid!).count - niceValues(narrow.pid!).count, 2);
});

/** The environment the server's process runs with (after the launcher exec'd node). */
function environ(pid: number): Map<string, string> {
  const vars = readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').filter(Boolean);
  return new Map(vars.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
}

test('started as a program, concord fixes glibc\'s mmap threshold at the raft log\'s chunk size', linuxConcord, async () => {
  const s = await startServer({ target: 'concord', env: { GLIBC_TUNABLES: '' } });
  servers.push(s);
  assert.equal(environ(s.pid!).get('GLIBC_TUNABLES'), `glibc.malloc.mmap_threshold=${chunkBytes}`);
});

/**
 * What GLIBC_TUNABLES the launcher line hands node, given the caller's: run with a `node` on
 * PATH that prints it. (A real server's /proc/PID/environ does not say: glibc's loader cuts the
 * variable in place after its first tunable once it has parsed them; node's process.env has it whole.)
 */
function launcherTunablesFor(callers: string | undefined): string {
  const dir = mkdtempSync(join(tmpdir(), 'concord-launcher-'));
  try {
    writeFileSync(join(dir, 'node'), '#!/bin/sh\nprintf %s "$GLIBC_TUNABLES"\n', { mode: 0o755 });
    const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${dir}:${process.env.PATH}` };
    if (callers === undefined) delete env.GLIBC_TUNABLES; else env.GLIBC_TUNABLES = callers;
    return execFileSync(launcher, [], { env, encoding: 'utf8' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const launcher = fileURLToPath(new URL('../../bin/concord.js', import.meta.url));

test('the launcher adds its mmap threshold to the caller\'s GLIBC_TUNABLES, and leaves a threshold the caller set', { skip: process.platform !== 'linux' }, () => {
  const ours = `glibc.malloc.mmap_threshold=${chunkBytes}`;
  assert.equal(launcherTunablesFor(undefined), ours);
  assert.equal(launcherTunablesFor(''), ours);
  assert.equal(launcherTunablesFor('glibc.malloc.arena_max=2'), `glibc.malloc.arena_max=2:${ours}`);
  assert.equal(launcherTunablesFor('glibc.malloc.mmap_threshold=4194304'), 'glibc.malloc.mmap_threshold=4194304');
  assert.equal(launcherTunablesFor('glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=0'), 'glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=0');
});
