// Its own file: registerEventLoopMetrics starts the process's one sampler (once per process).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from './registry.js';
import { registerEventLoopMetrics } from './event-loop.js';
import { busy, PAUSE_MS, scrapeLoopMaxMs } from './test-pause.js';

test('concord_event_loop_delay_seconds: an idle spell with sampling off is not a pause when the loop gets busy again', async () => {
  const r = new Registry();
  registerEventLoopMetrics(r);
  const maxMs = (): number => scrapeLoopMaxMs(r);
  const busySpell = async (ms: number): Promise<void> => {
    const load = setInterval(() => busy(2), 20);
    await sleep(ms);
    clearInterval(load);
  };
  await busySpell(400); // sampling on
  maxMs(); // starts an interval
  await busySpell(300);
  // Idle for several 250 ms checks: sampling goes off. Then busy again: it comes back on.
  // perf_hooks.monitorEventLoopDelay, disabled and enabled again, counted these 3 PAUSE_MS as
  // one pause.
  await sleep(3 * PAUSE_MS);
  await busySpell(600);
  const max = maxMs();
  assert.ok(max < PAUSE_MS / 2, `the ${3 * PAUSE_MS} ms idle spell is not counted as a pause (max ${max} ms)`);
});
