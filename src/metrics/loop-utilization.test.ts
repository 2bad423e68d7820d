import { test } from 'node:test';
import assert from 'node:assert/strict';
import { watchLoopUtilization } from './loop-utilization.js';

test('watchers with the same period share one check: each gets every reading; stopped, none is called', async () => {
  const seen: Array<[string, number]> = [];
  const stopA = watchLoopUtilization(20, (u) => seen.push(['a', u]));
  const stopB = watchLoopUtilization(20, (u) => seen.push(['b', u]));
  const deadline = Date.now() + 30_000;
  while (!(seen.some(([w]) => w === 'a') && seen.some(([w]) => w === 'b')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  for (const [, u] of seen) assert.ok(u >= 0 && u <= 1, `utilization ${u}`);
  // One timer: every check calls a then b with the same reading (two timers would not pair up).
  for (let i = 0; i + 1 < seen.length; i += 2) {
    assert.deepEqual([seen[i]![0], seen[i + 1]![0]], ['a', 'b']);
    assert.equal(seen[i]![1], seen[i + 1]![1]);
  }
  stopA();
  stopB();
  const count = seen.length;
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(seen.length, count, 'no calls after stop');
});
