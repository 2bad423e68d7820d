/**
 * Concord's own gauge (no etcd counterpart, hence the concord_ prefix): the main thread's
 * event-loop delay from perf_hooks.monitorEventLoopDelay, the pauses (GC, synchronous I/O,
 * long callbacks) every request waiting on this thread sees. Each scrape reports the delay
 * since the previous scrape and starts a new interval, so a bench can read one window.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Registry } from './registry.js';

/**
 * The sampling timer's period. A sample is how late the timer fired, so a pause shows in full
 * only when a tick falls in it: max sees every pause longer than this, percentiles are of ticks.
 */
const RESOLUTION_MS = 5;

let started = false;

/** Starts sampling and registers concord_event_loop_delay_seconds{stat=p50|p99|max|mean}. */
export function registerEventLoopMetrics(registry: Registry): void {
  if (started) return;
  started = true;
  const h = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  h.enable();
  // Node's samples are the whole interval between ticks (resolution included): the delay is the excess.
  const seconds = (ns: number) => (Number.isFinite(ns) ? Math.max(0, ns / 1e6 - RESOLUTION_MS) / 1e3 : 0);
  registry.collectedRows('concord_event_loop_delay_seconds',
    'Event-loop delay of the main thread over the interval since the previous scrape (perf_hooks.monitorEventLoopDelay).',
    ['stat'], () => {
      const rows = [
        { values: ['p50'], value: seconds(h.percentile(50)) },
        { values: ['p99'], value: seconds(h.percentile(99)) },
        { values: ['max'], value: seconds(h.max) },
        { values: ['mean'], value: seconds(h.mean) },
      ];
      h.reset();
      return rows;
    });
}
