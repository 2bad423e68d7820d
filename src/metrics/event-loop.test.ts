import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from './registry.js';
import { registerEventLoopMetrics } from './event-loop.js';
import { busy, PAUSE_MS } from './test-pause.js';

test('concord_event_loop_delay_seconds: an interval does not count the scrape that started it, and counts the pauses after it', async () => {
  const r = new Registry();
  registerEventLoopMetrics(r);
  // Sorted after concord_event_loop_delay_seconds: rendered after the interval was read and reset,
  // so its pause is the scrape's own, as the rest of a big render and the reply's write are.
  let slowScrape = false;
  r.collectedRows('zz_slow_collector', 'A collector that takes PAUSE_MS.', [], () => {
    if (slowScrape) busy(PAUSE_MS);
    return [];
  });
  const maxMs = (): number => {
    const m = /^concord_event_loop_delay_seconds\{stat="max"\} (\S+)$/m.exec(r.render());
    assert.ok(m, 'the max row is rendered');
    return Number(m[1]) * 1000;
  };
  // Sampling stays on while the loop is at least 2% busy: 2 ms of every 20.
  const load = setInterval(() => busy(2), 20);
  try {
    await sleep(300);
    maxMs(); // starts an interval
    slowScrape = true;
    maxMs(); // a scrape that pauses the loop for PAUSE_MS
    slowScrape = false;
    await sleep(100);
    const afterSlowScrape = maxMs();
    assert.ok(afterSlowScrape < PAUSE_MS / 2, `the scrape's own ${PAUSE_MS} ms are not in the next interval (max ${afterSlowScrape} ms)`);

    await sleep(50);
    busy(PAUSE_MS); // a pause that is not a scrape's
    await sleep(100);
    const afterPause = maxMs();
    assert.ok(afterPause >= PAUSE_MS / 2, `a pause after the scrape's turn is counted (max ${afterPause} ms)`);
  } finally {
    clearInterval(load);
  }
});
