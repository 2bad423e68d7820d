/**
 * Concord's own gauge (no etcd counterpart, hence the concord_ prefix): the main thread's
 * event-loop delay from perf_hooks.monitorEventLoopDelay, the pauses (GC, synchronous I/O,
 * long callbacks) every request waiting on this thread sees. Each scrape reports the delay
 * since the previous scrape and starts a new interval, so a bench can read one window. The
 * interval does not count the scrape's own turns: it starts once the whole render is done (a
 * /metrics render is sliced over several turns, and the slices after this family's were
 * counted in the next interval until session 44: a 1-2 ms turn of the bench's own scrape at
 * the start of every window), and Node's reset() also forgets when the timer last fired, so
 * the next tick records nothing and only sets the baseline (event-loop.test.ts; Prometheus's
 * scrape_duration_seconds shows what a scrape costs). What the loop did between this family's
 * reading and the render's end is in neither interval.
 *
 * Sampled only while the loop is busy. The histogram's timer wakes the thread every
 * RESOLUTION_MS, 200 times a second: on an idle member that was half its CPU (19 -> 10 ms/s)
 * and 85% of its context switches (181 -> 28 /s). An idle loop keeps no request waiting, so
 * every BUSY_CHECK_MS the loop's utilization over the check decides: at least BUSY_UTILIZATION
 * turns sampling on, less turns it off. What is missed: the first check's worth of a busy
 * spell, and a pause that starts and ends inside an idle spell (the idle GC logs its own).
 *
 * monitorEventLoopDelay, disabled and enabled again, records the whole time it was off as its
 * first sample: every idle spell inside a scrape interval showed as a pause that long (the
 * bench's mem row: 255-268 ms, one 250 ms check of idleness, in about half its runs; session
 * 38). So a busy spell that follows an idle one starts from a reset histogram, and the spells
 * before it in the interval are carried as figures: max and mean exactly, p50 and p99 as the
 * highest of the spells' (an interval of one busy spell, a bench window, is exact).
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { watchLoopUtilization } from './loop-utilization.js';
import type { Registry } from './registry.js';

/**
 * The sampling timer's period. A sample is how late the timer fired, so a pause shows in full
 * only when a tick falls in it: max sees every pause longer than this, percentiles are of ticks.
 */
const RESOLUTION_MS = 5;
/** How often the loop's utilization is read to turn sampling on or off (the idle GC's period: one timer). */
const BUSY_CHECK_MS = 250;
/** Utilization (0..1) over a check from which the loop counts as busy: 5 ms of work in 250. */
const BUSY_UTILIZATION = 0.02;

let started = false;

/** Starts sampling and registers concord_event_loop_delay_seconds{stat=p50|p99|max|mean}. */
export function registerEventLoopMetrics(registry: Registry): void {
  if (started) return;
  started = true;
  const h = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  const earlier = new EarlierSpells();
  h.enable(); // from the start: recovery's pauses count too, until the first idle check
  watchLoopUtilization(BUSY_CHECK_MS, (u) => {
    if (u < BUSY_UTILIZATION) return void h.disable();
    if (!h.enable()) return; // it was on: the same busy spell goes on
    // On again after an idle spell. No tick has run since enable(): the reset makes the first
    // one only a baseline, so the idle spell is not a sample.
    earlier.carry(h);
    h.reset();
  });
  // Node's samples are the whole interval between ticks (resolution included): the delay is the excess.
  const seconds = (ns: number) => (Number.isFinite(ns) ? Math.max(0, ns / 1e6 - RESOLUTION_MS) / 1e3 : 0);
  registry.collectedRows('concord_event_loop_delay_seconds',
    'Event-loop delay of the main thread over the interval since the previous scrape (perf_hooks.monitorEventLoopDelay).',
    ['stat'], () => {
      // Read, not taken in: the interval goes on until the render ends (scrapes may overlap).
      const f = earlier.figuresWith(h);
      return [
        { values: ['p50'], value: seconds(f.p50) },
        { values: ['p99'], value: seconds(f.p99) },
        { values: ['max'], value: seconds(f.max) },
        { values: ['mean'], value: seconds(f.mean) },
      ];
    });
  registry.afterRender(() => {
    earlier.clear();
    h.reset();
  });
}

/** Delay figures of one or more busy spells (ns): percentiles and max as the worst spell's. */
interface SpellFigures { readonly p50: number; readonly p99: number; readonly max: number; readonly sum: number; readonly count: number }

const NO_SPELL: SpellFigures = { p50: 0, p99: 0, max: 0, sum: 0, count: 0 };

/** `f` with the histogram's current spell added (the histogram is only read). */
function withSpell(f: SpellFigures, h: IntervalHistogram): SpellFigures {
  if (h.count === 0) return f;
  return {
    p50: Math.max(f.p50, h.percentile(50)),
    p99: Math.max(f.p99, h.percentile(99)),
    max: Math.max(f.max, h.max),
    sum: f.sum + h.mean * h.count,
    count: f.count + h.count,
  };
}

/** The figures of the busy spells of the current interval already read off the histogram (ns). */
class EarlierSpells {
  private figures = NO_SPELL;

  /** Takes in the histogram's spell (the caller then resets it). */
  carry(h: IntervalHistogram): void {
    this.figures = withSpell(this.figures, h);
  }

  /** The interval's figures: the spells carried so far and the histogram's current one, which stays out. */
  figuresWith(h: IntervalHistogram): { p50: number; p99: number; max: number; mean: number } {
    const f = withSpell(this.figures, h);
    return { p50: f.p50, p99: f.p99, max: f.max, mean: f.count > 0 ? f.sum / f.count : NaN };
  }

  clear(): void {
    this.figures = NO_SPELL;
  }
}
