// The concord server's threads end up with the intended nice values (issue 14: the main
// thread's loop delay under load), read from /proc: a real server started by bin/concord.js.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { Server, runConcord, startServer } from './harness.js';

const servers: Server[] = [];
after(async () => { for (const s of servers) await s.destroy(); });

/** The server's main thread's nice value and the set of its other threads' values. */
function niceValues(pid: number): { main: number; others: Set<number>; count: number } {
  const nice = (tid: string) => {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  };
  const tids = readdirSync(`/proc/${pid}/task`);
  return { main: nice(String(pid)), others: new Set(tids.filter((t) => t !== String(pid)).map(nice)), count: tids.length - 1 };
}

const linuxConcord = { skip: !runConcord() || process.platform !== 'linux' };

test('concord runs every thread but the main one at nice 5 by default', linuxConcord, async () => {
  const s = await startServer({ target: 'concord', env: { CONCORD_THREAD_NICE: '', CONCORD_MAIN_NICE: '' } }); // the defaults, whatever the test's environment
  servers.push(s);
  await s.client().put({ key: Buffer.from('k'), value: Buffer.from('v') }); // the libuv pool is at work
  const v = niceValues(s.pid!);
  assert.equal(v.main, 0);
  assert.ok(v.count >= 8, `V8's workers and libuv's pool: ${v.count}`);
  assert.deepEqual(v.others, new Set([5]));
});

test('CONCORD_THREAD_NICE=off leaves every thread at the nice value it started with', linuxConcord, async () => {
  const s = await startServer({ target: 'concord', env: { CONCORD_THREAD_NICE: 'off' } });
  servers.push(s);
  const v = niceValues(s.pid!);
  assert.equal(v.main, 0);
  assert.deepEqual(v.others, new Set([0]));
});
