/**
 * A main-thread stall tracer for finding what makes the event loop pause (issue 14: no pause
 * over 10 ms under steady load). Off unless CONCORD_LOOP_TRACE names a file; off, `loopTrace`
 * is undefined and a call site costs one falsy check (`loopTrace?.span(...)`, its start time
 * taken only when `loopTrace` is set).
 *
 * On, it does three things:
 * - records spans of the work the layers mark (`span(kind, startMs, n)`: a Ready handled, an
 *   apply batch of n entries, a WAL write on the loop's thread, a backend flush, ...) and
 *   every GC pause (a PerformanceObserver on 'gc': scavenge, mark-compact, incremental
 *   marking, weak callbacks) in a ring of the last `ringSpans`;
 * - finds stalls with a 1 ms interval timer: a tick later than `CONCORD_LOOP_TRACE_MS`
 *   (default 5) past its due time is a stall from the previous tick to this one. Each tick
 *   reads the main thread's /proc schedstat, so a stall also says how much of it this
 *   thread ran (CPU), waited for a CPU (runnable, not running: other processes' load) or
 *   slept (neither: a blocking syscall such as fdatasync, a futex wait for GC helpers);
 * - once a second appends JSON lines to the file: one per stall older than `settleMs` (GC
 *   entries arrive after the pause), with the overlap of every span kind, and one summary of
 *   the second's spans per kind (count, total and max ms, n). bench/loop-stalls.ts reads it.
 *
 * The probe itself costs ~1,000 wake-ups and schedstat reads a second: compare traced runs
 * with traced runs.
 */
import { PerformanceObserver, constants, performance } from 'node:perf_hooks';
import { appendFileSync, closeSync, openSync, readSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';

/** Spans kept for attributing stalls (a second of put-100 marks ~10k). */
const ringSpans = 1 << 16;
/** A stall is analysed once this old: PerformanceObserver delivers GC entries after the pause. */
const settleMs = 300;
/** Longer than any span the server marks: how far back of a stall's start overlapping spans are looked for. */
const spanHorizonMs = 1000;
const probeMs = 1;
const flushMs = 1000;

interface Stall { startMs: number; endMs: number; runNs: number; waitNs: number }
interface KindStats { count: number; totalMs: number; maxMs: number; n: number; hist: number[] }
/** Span duration buckets: bucket b counts spans under histBaseMs * 2^b ms (the last one everything longer). */
const histBaseMs = 0.125;
const histBuckets = 12;
function bucketOf(ms: number): number {
  let b = 0;
  while (b < histBuckets - 1 && ms >= histBaseMs * 2 ** b) b++;
  return b;
}

export class LoopTracer {
  private readonly kinds: string[] = [];
  private readonly kindIds = new Map<string, number>();
  private readonly starts = new Float64Array(ringSpans);
  private readonly ends = new Float64Array(ringSpans);
  private readonly kindOf = new Uint16Array(ringSpans);
  private readonly ns = new Int32Array(ringSpans);
  /** Spans recorded so far (the ring holds the last ringSpans of them). */
  private recorded = 0;
  private stalls: Stall[] = [];
  private second = new Map<string, KindStats>();
  private lastTickMs = performance.now();
  private lastRunNs = 0;
  private lastWaitNs = 0;
  private readonly schedFd: number | undefined;
  private readonly buf = Buffer.alloc(128);
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly gc: PerformanceObserver;

  constructor(private readonly file: string, private readonly thresholdMs: number) {
    try { this.schedFd = openSync('/proc/thread-self/schedstat', 'r'); } catch { this.schedFd = undefined; }
    this.readSched();
    this.gc = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) this.span(gcKind((e as unknown as { detail?: { kind?: number } }).detail?.kind), e.startTime, 0, e.startTime + e.duration);
    });
    this.gc.observe({ entryTypes: ['gc'] });
    const probe = setInterval(() => this.tick(), probeMs);
    const flush = setInterval(() => this.flush(false), flushMs);
    probe.unref();
    flush.unref();
    this.timers.push(probe, flush);
    process.on('exit', this.onExit);
  }

  private readonly onExit = (): void => this.flush(true);

  /** Records work of `kind` that started at `startMs` (performance.now()) and ends now (or at `endMs`); `n` items. */
  span(kind: string, startMs: number, n = 0, endMs = performance.now()): void {
    let id = this.kindIds.get(kind);
    if (id === undefined) {
      id = this.kinds.length;
      this.kinds.push(kind);
      this.kindIds.set(kind, id);
    }
    const i = this.recorded++ & (ringSpans - 1);
    this.starts[i] = startMs;
    this.ends[i] = endMs;
    this.kindOf[i] = id;
    this.ns[i] = n;
    const ms = endMs - startMs;
    const s = this.second.get(kind);
    if (s === undefined) {
      const hist = new Array<number>(histBuckets).fill(0);
      hist[bucketOf(ms)]++;
      this.second.set(kind, { count: 1, totalMs: ms, maxMs: ms, n, hist });
    } else { s.count++; s.totalMs += ms; if (ms > s.maxMs) s.maxMs = ms; s.n += n; s.hist[bucketOf(ms)]++; }
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
    process.off('exit', this.onExit);
    this.gc.disconnect();
    if (this.schedFd !== undefined) closeSync(this.schedFd);
  }

  private readSched(): { runNs: number; waitNs: number } {
    if (this.schedFd === undefined) return { runNs: 0, waitNs: 0 };
    const len = readSync(this.schedFd, this.buf, 0, this.buf.length, 0);
    const [run, wait] = this.buf.toString('latin1', 0, len).split(' ');
    return { runNs: Number(run), waitNs: Number(wait) };
  }

  private tick(): void {
    const now = performance.now();
    const { runNs, waitNs } = this.readSched();
    const late = now - this.lastTickMs - probeMs;
    if (late >= this.thresholdMs) {
      this.stalls.push({ startMs: this.lastTickMs, endMs: now, runNs: runNs - this.lastRunNs, waitNs: waitNs - this.lastWaitNs });
    }
    this.lastTickMs = now;
    this.lastRunNs = runNs;
    this.lastWaitNs = waitNs;
  }

  private flush(all: boolean): void {
    const now = performance.now();
    const lines: string[] = [];
    const keep: Stall[] = [];
    for (const s of this.stalls) {
      if (!all && s.endMs > now - settleMs) keep.push(s);
      else lines.push(JSON.stringify(this.describe(s)));
    }
    this.stalls = keep;
    const kinds: Record<string, KindStats> = {};
    for (const [k, v] of this.second) kinds[k] = { count: v.count, totalMs: round(v.totalMs), maxMs: round(v.maxMs), n: v.n, hist: v.hist };
    this.second = new Map();
    lines.push(JSON.stringify({ type: 'second', at: round(performance.timeOrigin + now), histBaseMs, kinds }));
    appendFileSync(this.file, lines.join('\n') + '\n');
    // The tracer's own write (a file append can wait on the disk): its stalls are charged to it.
    if (!all) this.span('trace.flush', now, lines.length);
  }

  /** A stall with the overlap, in ms, of each span kind that overlapped it ([ms, spans, n]). */
  private describe(s: Stall): object {
    const over: Record<string, [number, number, number]> = {};
    const oldest = Math.max(0, this.recorded - ringSpans);
    for (let r = this.recorded - 1; r >= oldest; r--) {
      const i = r & (ringSpans - 1);
      // Spans are recorded as they end, so ends fall going back: once one ended a second
      // before the stall began, none older can overlap it (no marked span lasts a second).
      // Scanning the whole ring per stall made the tracer's own flush a 13-17 ms stall.
      if (this.ends[i]! < s.startMs - spanHorizonMs) break;
      const o = Math.min(this.ends[i]!, s.endMs) - Math.max(this.starts[i]!, s.startMs);
      if (o <= 0) continue;
      const k = this.kinds[this.kindOf[i]!]!;
      const a = over[k] ?? (over[k] = [0, 0, 0]);
      a[0] += o; a[1]++; a[2] += this.ns[i]!;
    }
    for (const a of Object.values(over)) a[0] = round(a[0]);
    return {
      type: 'stall', at: round(performance.timeOrigin + s.startMs), ms: round(s.endMs - s.startMs - probeMs),
      runMs: round(s.runNs / 1e6), waitMs: round(s.waitNs / 1e6), spans: over,
    };
  }
}

function gcKind(kind: number | undefined): string {
  switch (kind) {
    case constants.NODE_PERFORMANCE_GC_MINOR: return 'gc.scavenge';
    case constants.NODE_PERFORMANCE_GC_MAJOR: return 'gc.mark-compact';
    case constants.NODE_PERFORMANCE_GC_INCREMENTAL: return 'gc.incremental';
    case constants.NODE_PERFORMANCE_GC_WEAKCB: return 'gc.weak';
    default: return 'gc.other';
  }
}

const round = (x: number): number => Math.round(x * 100) / 100;

function fromEnv(): LoopTracer | undefined {
  const file = process.env.CONCORD_LOOP_TRACE;
  if (!file || !isMainThread) return undefined;
  return new LoopTracer(file, Number(process.env.CONCORD_LOOP_TRACE_MS ?? 5));
}

/** The process's tracer, or undefined (the default): call sites do `loopTrace?.span(...)`. */
export const loopTrace: LoopTracer | undefined = fromEnv();
