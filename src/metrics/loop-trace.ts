/**
 * A main-thread stall tracer for finding what makes the event loop pause (issue 14: no pause
 * over 10 ms under steady load). Off unless CONCORD_LOOP_TRACE names a file; off, `loopTrace`
 * is undefined and a call site costs one falsy check (`loopTrace?.span(...)`, its start time
 * taken only when `loopTrace` is set).
 *
 * On, it does three things:
 * - records spans of the work the layers mark (`span(kind, startMs, n)`: a Ready handled, an
 *   apply batch of n entries, a WAL write on the loop's thread, a backend flush, ...) in a
 *   ring of the last `ringSpans`, and every GC pause (a PerformanceObserver on 'gc':
 *   scavenge, mark-compact, incremental marking, weak callbacks) in a ring of its own;
 * - finds stalls with a 1 ms interval timer: a tick later than `CONCORD_LOOP_TRACE_MS`
 *   (default 5) past its due time is a stall from the previous tick to this one. Each tick
 *   reads the main thread's /proc schedstat, so a stall also says how much of it this
 *   thread ran (CPU), waited for a CPU (runnable, not running: other processes' load) or
 *   slept (neither: a blocking syscall such as fdatasync, a futex wait for GC helpers);
 * - once a second appends JSON lines to the file: one per stall older than `settleMs` (GC
 *   entries arrive after the pause), with the overlap of every span kind (the marked spans
 *   matched when the stall is found, the GC pauses when it is written), and one summary of
 *   the second's spans per kind (count, total and max ms, n). bench/loop-stalls.ts reads it.
 *
 * The probe itself costs ~1,000 wake-ups and schedstat reads a second: compare traced runs
 * with traced runs.
 */
import { strict as assert } from 'node:assert';
import { PerformanceObserver, constants, performance } from 'node:perf_hooks';
import { appendFileSync, closeSync, openSync, readSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';

/** Spans kept for attributing stalls (a second of put-100 marks ~10k). */
const ringSpans = 1 << 16;
/** GC pauses kept (a second of range-l has ~50 scavenges). */
const gcRingSpans = 1 << 12;
/** A stall is analysed once this old: PerformanceObserver delivers GC entries after the pause. */
const settleMs = 300;
const probeMs = 1;
const flushMs = 1000;

/** Overlap with a stall of one span kind: [ms, spans, items]. */
type Overlap = [number, number, number];
/** A stall, with the overlap of the marked spans (found with it; GC pauses are added once reported). */
interface Stall { startMs: number; endMs: number; runNs: number; waitNs: number; over: Record<string, Overlap> }
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
  private readonly spans = new SpanRing(ringSpans);
  /** GC pauses apart: they are reported after the pause, so their ends are not in recording order. */
  private readonly gcPauses = new SpanRing(gcRingSpans);
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
      for (const e of list.getEntries()) this.gcSpan(gcKind((e as unknown as { detail?: { kind?: number } }).detail?.kind), e.startTime, e.startTime + e.duration);
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

  /** Records work of `kind` that started at `startMs` (performance.now()) and ends now; `n` items. */
  span(kind: string, startMs: number, n = 0): void {
    const endMs = performance.now();
    this.spans.push(this.kindId(kind), startMs, endMs, n);
    this.count(kind, endMs - startMs, n);
  }

  private gcSpan(kind: string, startMs: number, endMs: number): void {
    this.gcPauses.push(this.kindId(kind), startMs, endMs, 0);
    this.count(kind, endMs - startMs, 0);
  }

  private kindId(kind: string): number {
    let id = this.kindIds.get(kind);
    if (id === undefined) {
      id = this.kinds.length;
      this.kinds.push(kind);
      this.kindIds.set(kind, id);
    }
    return id;
  }

  /** The current second's figures for `kind`. */
  private count(kind: string, ms: number, n: number): void {
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
      const stall: Stall = { startMs: this.lastTickMs, endMs: now, runNs: runNs - this.lastRunNs, waitNs: waitNs - this.lastWaitNs, over: {} };
      this.overlapSpans(stall);
      this.stalls.push(stall);
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

  /**
   * Adds the marked spans overlapping a stall just found. The tick that finds it is a timer
   * callback, so every span it overlapped has ended and is in the ring; spans are recorded as
   * they end, so going back from the newest, once one ended before the stall began none older
   * overlaps it. (Looking later, at the flush, meant scanning everything recorded since: under
   * range load that made the tracer's own flush a 7-27 ms stall, and past 64k spans the
   * stall's own had left the ring.)
   */
  private overlapSpans(s: Stall): void {
    this.spans.newestFirst((kind, start, end, n) => {
      if (end < s.startMs) return false;
      addOverlap(s, this.kinds[kind]!, start, end, n);
      return true;
    });
  }

  /** A settled stall as a JSON line's object, with the GC pauses that overlapped it. */
  private describe(s: Stall): object {
    this.gcPauses.newestFirst((kind, start, end) => {
      addOverlap(s, this.kinds[kind]!, start, end, 0);
      return true;
    });
    for (const a of Object.values(s.over)) a[0] = round(a[0]);
    return {
      type: 'stall', at: round(performance.timeOrigin + s.startMs), ms: round(s.endMs - s.startMs - probeMs),
      runMs: round(s.runNs / 1e6), waitMs: round(s.waitNs / 1e6), spans: s.over,
    };
  }
}

/** The last `size` spans (a power of two) in typed arrays: no object per span. */
class SpanRing {
  private readonly starts: Float64Array;
  private readonly ends: Float64Array;
  private readonly kinds: Uint16Array;
  private readonly ns: Int32Array;
  /** Spans pushed so far (the ring holds the last `size` of them). */
  private pushed = 0;

  constructor(private readonly size: number) {
    assert.ok(size > 0 && (size & (size - 1)) === 0, `a span ring's size is a power of two, not ${size}`);
    this.starts = new Float64Array(size);
    this.ends = new Float64Array(size);
    this.kinds = new Uint16Array(size);
    this.ns = new Int32Array(size);
  }

  push(kind: number, startMs: number, endMs: number, n: number): void {
    const i = this.pushed++ & (this.size - 1);
    this.starts[i] = startMs;
    this.ends[i] = endMs;
    this.kinds[i] = kind;
    this.ns[i] = n;
  }

  /** Visits the spans held, newest first, while `visit` returns true. */
  newestFirst(visit: (kind: number, startMs: number, endMs: number, n: number) => boolean): void {
    const oldest = Math.max(0, this.pushed - this.size);
    for (let r = this.pushed - 1; r >= oldest; r--) {
      const i = r & (this.size - 1);
      if (!visit(this.kinds[i]!, this.starts[i]!, this.ends[i]!, this.ns[i]!)) return;
    }
  }
}

function addOverlap(s: Stall, kind: string, start: number, end: number, n: number): void {
  const o = Math.min(end, s.endMs) - Math.max(start, s.startMs);
  if (o <= 0) return;
  const a = s.over[kind] ?? (s.over[kind] = [0, 0, 0]);
  a[0] += o; a[1]++; a[2] += n;
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
