/**
 * V8 heap settings for the `concord` server, set at run time by bin/concord.js before it loads
 * the program (V8 flags given on node's command line win). Separate from cli/concord.ts so
 * they take effect before that module graph is compiled: compiling it alone grows the young
 * generation.
 */
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { PerformanceObserver } from 'node:perf_hooks';
import { givenOnNodeCommandLine } from './node-flags.js';

/**
 * How far the old generation may grow past its live data before the next full GC: V8 picks a
 * factor of 1.1x to 4x from its own speed estimates; --heap-growing-percent=100 holds it at 2x.
 * Early on, 20 (1.2x) took RSS after 100k puts from 357 to 256 MiB; since then the idle GC
 * (cli/idle-gc.ts) compacts the heap once the load stops, and bench/mem.ts gives 120 MiB with
 * 20 and 121 with 100 (after a restart 95 and 91). Under put-100 load, 20 meant a mark-compact
 * every ~5k puts and 13-15 us per put of V8 worker-thread CPU (the concurrent marking that
 * competes with the main thread for a core); 100 gives one every ~14k puts, 8 us, and 48.7 vs
 * 54-61 us of server CPU per put (bench/put-cost.ts, alternating runs; issue 14). V8 reads
 * the factor at each GC, so setting it at run time works; Node refuses it in NODE_OPTIONS.
 * An explicit heap-growing flag on node's command line wins.
 */
export function preferSmallHeap(): void {
  if (!givenOnNodeCommandLine(/^--heap[-_]growing[-_]percent/)) setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  if (!givenOnNodeCommandLine(SEMI_SPACE_FLAG)) {
    setFlagsFromString(`--semi-space-growth-factor=${SEMI_SPACE_GROWTH_FACTOR}`);
  }
}

const HEAP_GROWING_PERCENT = 100;

/**
 * The young generation stays at its initial 1 MiB semi-space. V8 doubles it (up to 16 MiB, two
 * of them resident: 32 MiB) whenever many young objects survive a scavenge, which start-up
 * (module compilation) and the key-index rebuild after a restart both do; it never shrinks back
 * on an idle server. Its max size cannot change once the heap exists, but V8 reads the growth
 * factor at each scavenge, so a factor of 1 set before the program's modules load keeps it at
 * 1 MiB. bench/mem.ts, 100k keys: RSS at start -11 MiB, after restart -32 MiB (as node's
 * --max-semi-space-size=1); server CPU per put unchanged within noise (bench put-100, A/B).
 * An explicit semi-space flag on node's command line wins.
 */
const SEMI_SPACE_GROWTH_FACTOR = 1;

/** V8's own growth factor, restored once the server serves (see allowYoungGenerationGrowth). */
const DEFAULT_SEMI_SPACE_GROWTH_FACTOR = 2;

/**
 * Called once the server is ready: from then on the young generation may grow again, up to
 * YOUNG_GENERATION_CAP_BYTES. Start-up (module compilation, the key-index rebuild) is where
 * growth only wastes memory; under client load a 1 MiB young generation means a scavenge
 * every few hundred requests and early promotion: a bench A/B (put-100, range-s, alternating
 * runs) gave 5% and 14% more req/s with V8's default factor, but V8's own cap (16 MiB per
 * semi-space, both resident) cost 48 MiB of RSS after loading 100k keys. So growth is allowed
 * until the young generation reaches the cap, then frozen again (V8 reads the factor at each
 * scavenge; a 'gc' observer sees the size).
 */
export function allowYoungGenerationGrowth(): void {
  if (givenOnNodeCommandLine(SEMI_SPACE_FLAG)) return;
  setFlagsFromString(`--semi-space-growth-factor=${DEFAULT_SEMI_SPACE_GROWTH_FACTOR}`);
  const observer = new PerformanceObserver(() => {
    if (youngGenerationBytes() < YOUNG_GENERATION_CAP_BYTES) return;
    setFlagsFromString(`--semi-space-growth-factor=${SEMI_SPACE_GROWTH_FACTOR}`);
    observer.disconnect();
  });
  observer.observe({ entryTypes: ['gc'] });
}

/**
 * Both semi-spaces of the young generation together (what V8 reports as new_space). A cap of
 * 4 MiB (2 MiB semi-spaces) was measured against this one (issue 14, alternating runs): the
 * scavenge pause follows the semi-space size (under put-100 about half of what was allocated
 * since the last scavenge is still live), p50 3.5 -> 2.0 ms and p90 7-12 -> 4-5 ms at twice
 * the count, but the bench's loop delay did not move (put-100, 5 quiet rounds each: p99 10.5
 * vs 10.4 ms, max 16.8 vs 17.4 ms, req/s the same): scavenges do not set it. Kept at 8 MiB.
 */
const YOUNG_GENERATION_CAP_BYTES = 8 * 1024 * 1024;

function youngGenerationBytes(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
}

const SEMI_SPACE_FLAG = /^--(max|min)[-_]semi[-_]space[-_]size|^--semi[-_]space[-_]growth[-_]factor/;
