/** For the event-loop delay tests: a pause of the main thread, how long one is, and the gauge's max. */
import assert from 'node:assert/strict';
import type { Registry } from './registry.js';

/** Holds the thread for `ms`: a pause as the histogram's timer sees it. */
export function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* spin */ }
}

/** Long beside any pause a loaded test machine adds on its own: the assertions split at half of it. */
export const PAUSE_MS = 200;

/** Scrapes `registry` (ending the gauge's interval) and returns concord_event_loop_delay_seconds' max, in ms. */
export function scrapeLoopMaxMs(registry: Registry): number {
  const m = /^concord_event_loop_delay_seconds\{stat="max"\} (\S+)$/m.exec(registry.render());
  assert.ok(m, 'the max row is rendered');
  return Number(m[1]) * 1000;
}
