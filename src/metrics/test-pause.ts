/** For the event-loop delay tests: a pause of the main thread, and how long one is. */

/** Holds the thread for `ms`: a pause as the histogram's timer sees it. */
export function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* spin */ }
}

/** Long beside any pause a loaded test machine adds on its own: the assertions split at half of it. */
export const PAUSE_MS = 200;
