import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from './registry.js';
import { registerEventLoopMetrics } from './event-loop.js';
import { busy, PAUSE_MS, scrapeLoopMaxMs } from './test-pause.js';

// One registry for the file: the loop monitor is started once per process.
const r = new Registry();
registerEventLoopMetrics(r);

const maxMs = (): number => scrapeLoopMaxMs(r);

test('concord_event_loop_delay_seconds: an interval does not count the scrape that started it, and counts the pauses after it', async () => {
  // Sorted after concord_event_loop_delay_seconds: rendered after the interval was read and reset,
  // so its pause is the scrape's own, as the rest of a big render and the reply's write are.
  let slowScrape = false;
  r.collectedRows('zz_slow_collector', 'A collector that takes PAUSE_MS.', [], () => {
    if (slowScrape) busy(PAUSE_MS);
    return [];
  });
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

test('concord_event_loop_delay_seconds: the later turns of a sliced scrape (/metrics) are the scrape\'s own, not the next interval\'s', async () => {
  // Sorted after concord_event_loop_delay_seconds: each holds the loop past the 1 ms slice, so
  // each is a turn of its own, spread over more than the monitor's 5 ms period; the last pauses.
  let sliced = false;
  for (const name of ['d_turn_1', 'd_turn_2', 'd_turn_3', 'd_turn_4']) {
    r.collectedRows(name, 'A collector that takes 2 ms.', [], () => { if (sliced) busy(2); return []; });
  }
  r.collectedRows('zz_sliced_pause', 'A collector that takes PAUSE_MS.', [], () => { if (sliced) busy(PAUSE_MS); return []; });
  const load = setInterval(() => busy(2), 20);
  try {
    await sleep(300);
    maxMs(); // starts an interval
    sliced = true;
    let turns = 0;
    await r.renderInSlices(1, () => turns++);
    sliced = false;
    assert.ok(turns >= 5, `the render took ${turns} turns`);
    await sleep(100);
    const afterScrape = maxMs();
    assert.ok(afterScrape < PAUSE_MS / 2, `the sliced scrape's ${PAUSE_MS} ms turn is not in the next interval (max ${afterScrape} ms)`);
  } finally {
    clearInterval(load);
  }
});
