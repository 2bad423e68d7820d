/**
 * One timer for everything that watches how busy the main thread's event loop is (the
 * event-loop delay sampler, the idle GC): each timer is a wake-up of an otherwise idle
 * member, so watchers with the same period share one. Utilization is
 * performance.eventLoopUtilization over the period (0..1): the share of wall time the loop
 * spent outside its poll for I/O.
 */
import { performance, type EventLoopUtilization } from 'node:perf_hooks';

export type UtilizationListener = (utilization: number) => void;

interface Watch { timer: NodeJS.Timeout; listeners: Set<UtilizationListener>; last: EventLoopUtilization }
const watches = new Map<number, Watch>();

/**
 * Calls `listener` every `periodMs` with the loop's utilization over the period; the returned
 * function stops it. The timer never keeps the process up. Time spent in the listeners is not
 * counted as load in the next period (a full GC run from one is the watcher's own doing).
 */
export function watchLoopUtilization(periodMs: number, listener: UtilizationListener): () => void {
  let w = watches.get(periodMs);
  if (w === undefined) {
    const watch: Watch = { timer: setInterval(() => check(watch), periodMs), listeners: new Set(), last: performance.eventLoopUtilization() };
    watch.timer.unref();
    watches.set(periodMs, watch);
    w = watch;
  }
  const own = w;
  // A listener may be added twice (two servers in one test process): each stop removes its own.
  const entry: UtilizationListener = (u) => listener(u);
  own.listeners.add(entry);
  return () => {
    own.listeners.delete(entry);
    if (own.listeners.size > 0) return;
    clearInterval(own.timer);
    watches.delete(periodMs);
  };
}

function check(w: Watch): void {
  const now = performance.eventLoopUtilization();
  const u = performance.eventLoopUtilization(now, w.last).utilization;
  for (const l of w.listeners) l(u);
  w.last = performance.eventLoopUtilization();
}
