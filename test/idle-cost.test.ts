// What an idle member wakes up for. Every wake-up of the main thread is a return from
// epoll_wait: a voluntary context switch, counted by the kernel in /proc/PID/task/PID/status.
// An idle single member has a handful of timers (the raft tick at 10/s, the event loop's
// busy check and the idle-GC check at 4/s each, lease expiry at 2/s): about 25 wake-ups a
// second. The bound is a count, not a time: a loaded machine fires timers late, so it only
// lowers the rate. It failed at ~200/s while the event-loop delay histogram sampled every 5 ms
// on an idle loop (bench/idle.ts measures the CPU that cost).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startServer, type Server } from './harness.js';

const servers: Server[] = [];
after(async () => { for (const s of servers) await s.destroy(); });

/** Voluntary context switches of the process's main thread so far. */
function mainThreadWakeups(pid: number): number {
  const status = readFileSync(`/proc/${pid}/task/${pid}/status`, 'utf8');
  const m = /^voluntary_ctxt_switches:\s+(\d+)$/m.exec(status);
  assert.ok(m, 'no voluntary_ctxt_switches in /proc status');
  return Number(m[1]);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('an idle single Concord member wakes its main thread fewer than 100 times a second', async () => {
  const s = await startServer({ target: 'concord' });
  servers.push(s);
  await sleep(3000); // past start-up: the first busy checks, the leader's first ticks
  const pid = s.pid!;
  const w0 = mainThreadWakeups(pid);
  const t0 = performance.now();
  await sleep(4000);
  const perSecond = (mainThreadWakeups(pid) - w0) / ((performance.now() - t0) / 1000);
  assert.ok(perSecond < 100, `main thread woke ${perSecond.toFixed(0)} times a second while idle`);
});
