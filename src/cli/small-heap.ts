/**
 * V8 heap settings for the `concord` server, set at run time by bin/concord.js before it loads
 * the program (V8 flags given on node's command line win). Separate from cli/concord.ts so
 * they take effect before that module graph is compiled: compiling it alone grows the young
 * generation.
 */
import { setFlagsFromString } from 'node:v8';

/**
 * A heap that grows less ahead of its live data: V8 sizes the next old-space limit at about
 * 2x the live heap after each full GC; --heap-growing-percent=20 makes it 1.2x. Measured with
 * bench/mem.ts's loader (100k 256-byte puts): RSS 357 -> 256 MiB, server CPU per put unchanged
 * within noise. (--optimize-for-size gave 222 MiB but cost a third more CPU per put.) V8 reads
 * the factor at each GC, so setting it at run time works; Node refuses it in NODE_OPTIONS.
 * An explicit heap-growing flag on node's command line wins.
 */
export function preferSmallHeap(): void {
  const explicit = (flag: RegExp) => process.execArgv.some((a) => flag.test(a));
  if (!explicit(/^--heap[-_]growing[-_]percent/)) setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  if (!explicit(/^--(max|min)[-_]semi[-_]space[-_]size|^--semi[-_]space[-_]growth[-_]factor/)) {
    setFlagsFromString(`--semi-space-growth-factor=${SEMI_SPACE_GROWTH_FACTOR}`);
  }
}

const HEAP_GROWING_PERCENT = 20;

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
