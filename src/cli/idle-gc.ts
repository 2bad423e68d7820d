/**
 * A full garbage collection once the server goes idle after work that grew its memory (a bulk
 * load, a burst of writes): what the work left behind is given back while nobody waits.
 *
 * Why: V8 collects the old generation only when it reaches its limit, and an idle server
 * allocates nothing, so the garbage of the last busy spell stays resident for good. After
 * loading 100k keys that is ~30 MiB of dead objects in the old generation (most of the raft
 * log, dropped by the compaction after the snapshot) and ~27 MiB of dead ArrayBuffers. V8's
 * memory reducer did not shrink it either: RSS unchanged 40 s after the load. (The ArrayBuffers'
 * bytes go back to glibc, which keeps them: see docs/architecture.md, memory.)
 *
 * How: every checkIntervalMs the event loop's utilization over the interval is read
 * (performance.eventLoopUtilization, no allocation to speak of); once it was under
 * idleUtilization for idleChecks intervals in a row and the V8 heap plus external memory grew
 * by growthBytes since the last collection, one full, compacting GC runs: it stops the loop
 * (1.4 s of wall time after 100k keys on the bench machine at load average 25; a request that
 * arrives meanwhile waits), so it runs only when the loop has been idle, at most once per
 * growthBytes of growth. A loaded server never qualifies.
 */
import { performance } from 'node:perf_hooks';
import { givenOnNodeCommandLine } from './node-flags.js';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Logger } from '../log/index.js';
import { watchLoopUtilization } from '../metrics/index.js';

export interface IdleGcOptions {
  /** How often the loop's utilization is sampled. */
  checkIntervalMs: number;
  /** Utilization (0..1) over one interval under which the interval counts as idle. */
  idleUtilization: number;
  /** Idle intervals in a row before a collection. */
  idleChecks: number;
  /** Growth of heap + external memory since the last collection that makes one worth it. */
  growthBytes: number;
}

/**
 * Idle means under 1% over three checks in a row (0.75 s): the loaded bench machine, serving
 * 600 puts/s, was under 5% in some single seconds, and a GC there found nothing to free.
 */
export const defaultIdleGcOptions: IdleGcOptions = { checkIntervalMs: 250, idleChecks: 3, idleUtilization: 0.01, growthBytes: 16 * 1024 * 1024 };

/**
 * Starts the checks (on the timer metrics/ watches the loop with); the returned function stops
 * them. Growth counts from `sinceBytes` (heapFootprintBytes() at some earlier moment; default
 * now): the composition root passes the footprint from before the member started, so what the
 * start-up left behind counts too. A restart replays every WAL entry since the last snapshot
 * and rebuilds the key index, and an idle member allocates nothing after that: counted from
 * the end of the start, that garbage never qualified and stayed resident (90k puts, no
 * snapshot yet: RSS after the restart 195 MiB, against 156 MiB once it is collected; etcd 155-170).
 */
export function collectWhenIdle(log: Logger, opts: IdleGcOptions = defaultIdleGcOptions, sinceBytes = heapFootprintBytes()): () => void {
  let baseline = sinceBytes;
  let idleInARow = 0;
  return watchLoopUtilization(opts.checkIntervalMs, (utilization) => {
    idleInARow = utilization < opts.idleUtilization ? idleInARow + 1 : 0;
    const before = heapFootprintBytes();
    if (before < baseline) baseline = before; // V8 collected on its own meanwhile
    if (idleInARow < opts.idleChecks || before - baseline < opts.growthBytes) return;
    const started = performance.now();
    const cpu = process.cpuUsage();
    collect();
    const { user, system } = process.cpuUsage(cpu);
    baseline = heapFootprintBytes();
    log.debug('collected garbage while idle', {
      'before-bytes': before, 'after-bytes': baseline,
      took: `${(performance.now() - started).toFixed(1)}ms`, cpu: `${((user + system) / 1000).toFixed(1)}ms`,
    });
  });
}

/** The V8 heap's committed bytes plus memory V8 tracks outside it (ArrayBuffers). */
export function heapFootprintBytes(): number {
  const h = getHeapStatistics();
  return h.total_heap_size + h.external_memory;
}

let gc: (() => void) | undefined;

/**
 * One full GC that also compacts every fragmented page (--compact-on-every-full-gc), so the
 * emptied pages go back to the OS: a plain full GC freed the same objects but left the old
 * space's committed size where it was (62 MiB after 100k keys, 34 MiB used), as the raft log's
 * dead entries sit on pages beside live key-index objects. The gc function is taken from a
 * fresh context, the only place --expose-gc can still add it once the main context exists
 * (~0.3 MiB, kept).
 */
function collect(): void {
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
    setFlagsFromString('--no-expose-gc');
  }
  if (givenOnNodeCommandLine(/^--(no-)?compact[-_]on[-_]every[-_]full[-_]gc/)) return gc();
  setFlagsFromString('--compact-on-every-full-gc');
  try {
    gc();
  } finally {
    setFlagsFromString('--no-compact-on-every-full-gc');
  }
}
