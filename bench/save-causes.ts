// What the puts during a snapshot save waited for (issue 10: no put pause over 100 ms), read
// in the same run from four sources, all on the wall clock (epoch ms):
// - the saving client's fsync/fdatasync calls, from strace (-ttt -T): etcdctl fsyncs the whole
//   file once at the end, so its dirty page cache goes to the disk in one burst;
// - the server's /metrics every pollMs: the WAL's fdatasync and the backend commit histograms
//   (etcd_disk_wal_fsync_duration_seconds, etcd_disk_backend_commit_duration_seconds; both
//   servers have them), and Concord's main-thread event-loop delay (its gauge reports the max
//   since the previous scrape);
// - Concord's GC pauses (--trace-gc on its stdout, anchored at the process's start);
// - each put's start and duration.
// A slow put is then listed with what overlapped it. Histogram buckets are powers of two
// (1 ms .. 8 s), so a WAL fsync or commit time reads as the bucket's upper bound ("<= 256").
import { readFileSync, existsSync } from 'node:fs';
import { httpGet } from '../test/harness.js';
import type { GcEvent } from './gc-trace.js';

/** How often the server's /metrics is read during a save. */
export const pollMs = 250;

export interface Span { readonly startMs: number; readonly endMs: number }
export interface PutSample extends Span { readonly ms: number }

/** One scrape: cumulative histogram buckets (le seconds -> count) and Concord's loop delay max since the last scrape. */
interface Scrape {
  readonly atMs: number;
  readonly wal: ReadonlyMap<number, number>;
  readonly commit: ReadonlyMap<number, number>;
  readonly loopMaxMs?: number;
}

/** Between two scrapes: the slowest WAL fsync and commit (bucket upper bound, ms; 0: none) and the loop's max delay. */
export interface MetricsWindow extends Span {
  readonly walMaxMs: number;
  readonly walSlow: number;
  readonly commitMaxMs: number;
  readonly loopMaxMs?: number;
}

function histogram(text: string, name: string): Map<number, number> {
  const out = new Map<number, number>();
  const re = new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\S+)$`, 'gm');
  for (let m = re.exec(text); m; m = re.exec(text)) out.set(m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2]));
  return out;
}

/** The slowest observation between two cumulative histograms, as its bucket's upper bound in ms (0: none). */
function slowestMs(a: ReadonlyMap<number, number>, b: ReadonlyMap<number, number>): number {
  const les = [...b.keys()].sort((x, y) => x - y);
  const total = (b.get(Infinity) ?? 0) - (a.get(Infinity) ?? 0);
  if (total <= 0) return 0;
  for (const le of les) if ((b.get(le) ?? 0) - (a.get(le) ?? 0) === total) return le * 1000;
  return Infinity;
}

/** Observations over `ms` between two cumulative histograms. */
function countOver(a: ReadonlyMap<number, number>, b: ReadonlyMap<number, number>, ms: number): number {
  const le = [...b.keys()].filter((x) => x * 1000 <= ms).sort((x, y) => y - x)[0];
  const total = (b.get(Infinity) ?? 0) - (a.get(Infinity) ?? 0);
  return le === undefined ? total : total - ((b.get(le) ?? 0) - (a.get(le) ?? 0));
}

/** Reads `endpoint`/metrics every pollMs until stop(); returns the windows between scrapes. */
export function pollMetrics(endpoint: string): { stop(): Promise<MetricsWindow[]> } {
  const scrapes: Scrape[] = [];
  let stopped = false;
  const scrape = async (): Promise<void> => {
    const r = await httpGet(`${endpoint}/metrics`, 10_000).catch(() => undefined);
    if (r === undefined || r.status !== 200) return;
    const loop = /^concord_event_loop_delay_seconds\{stat="max"\} (\S+)$/m.exec(r.body);
    scrapes.push({
      atMs: Date.now(),
      wal: histogram(r.body, 'etcd_disk_wal_fsync_duration_seconds'),
      commit: histogram(r.body, 'etcd_disk_backend_commit_duration_seconds'),
      ...(loop ? { loopMaxMs: Number(loop[1]) * 1000 } : {}),
    });
  };
  const loop = (async () => {
    while (!stopped) {
      const next = Date.now() + pollMs;
      await scrape();
      await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())));
    }
    await scrape();
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      const windows: MetricsWindow[] = [];
      for (let i = 1; i < scrapes.length; i++) {
        const a = scrapes[i - 1]!, b = scrapes[i]!;
        windows.push({
          startMs: a.atMs, endMs: b.atMs,
          walMaxMs: slowestMs(a.wal, b.wal), walSlow: countOver(a.wal, b.wal, 100), commitMaxMs: slowestMs(a.commit, b.commit),
          ...(b.loopMaxMs === undefined ? {} : { loopMaxMs: b.loopMaxMs }),
        });
      }
      return windows;
    },
  };
}

/** The command line that runs `cmd` under strace, tracing its fsync/fdatasync calls into `out` (none without strace). */
export function tracingFsyncs(cmd: string, args: string[], out: string): [string, string[]] {
  if (!existsSync('/usr/bin/strace')) return [cmd, args];
  return ['/usr/bin/strace', ['-f', '--seccomp-bpf', '-ttt', '-T', '-qq', '-e', 'trace=fsync,fdatasync', '-o', out, cmd, ...args]];
}

/** The fsync/fdatasync calls strace wrote to `file` (epoch ms), in order; [] when there is no trace. */
export function fsyncSpans(file: string): Span[] {
  if (!existsSync(file)) return [];
  const spans: Span[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    // "PID 1796154743.435491 fsync(1) = 0 <0.026046>", or split: "... <unfinished ...>" then
    // "PID T <... fsync resumed>) = 0 <0.026046>" (T: when it returned).
    const m = /^\d+\s+([\d.]+) (?:(?:fsync|fdatasync)\(|<\.\.\. (?:fsync|fdatasync) resumed>).* = -?\d+.* <([\d.]+)>$/.exec(line);
    if (!m) continue;
    const at = Number(m[1]) * 1000, took = Number(m[2]) * 1000;
    spans.push(line.includes('resumed>') ? { startMs: at - took, endMs: at } : { startMs: at, endMs: at + took });
  }
  return spans.sort((a, b) => a.startMs - b.startMs);
}

const overlaps = (a: Span, b: Span): boolean => a.startMs < b.endMs && b.startMs < a.endMs;

/** What overlapped one put. */
export interface PutCauses {
  readonly put: PutSample;
  /** ms of the put spent while the saving client fsynced. */
  readonly clientFsyncMs: number;
  /** Concord's GC pauses inside the put: their sum and the longest. */
  readonly gcMs: number;
  readonly gcMaxMs: number;
  /** Over the metrics windows the put overlaps: the longest loop delay, WAL fsync, backend commit. */
  readonly loopMaxMs?: number;
  readonly walMaxMs: number;
  readonly commitMaxMs: number;
}

/** GC events on the wall clock: `startedAtMs` anchors V8's ms-since-start. */
export function gcSpans(events: readonly GcEvent[], startedAtMs: number): Array<Span & { e: GcEvent }> {
  return events.map((e) => ({ startMs: startedAtMs + e.atMs, endMs: startedAtMs + e.atMs + e.pauseMs, e }));
}

export function causesOf(put: PutSample, fsyncs: readonly Span[], gcs: readonly (Span & { e: GcEvent })[], windows: readonly MetricsWindow[]): PutCauses {
  let clientFsyncMs = 0;
  for (const f of fsyncs) if (overlaps(put, f)) clientFsyncMs += Math.min(put.endMs, f.endMs) - Math.max(put.startMs, f.startMs);
  const inPut = gcs.filter((g) => overlaps(put, g));
  const ws = windows.filter((w) => overlaps(put, w));
  const loops = ws.map((w) => w.loopMaxMs).filter((x): x is number => x !== undefined);
  return {
    put, clientFsyncMs,
    gcMs: inPut.reduce((a, g) => a + g.e.pauseMs, 0), gcMaxMs: Math.max(0, ...inPut.map((g) => g.e.pauseMs)),
    ...(loops.length ? { loopMaxMs: Math.max(...loops) } : {}),
    walMaxMs: Math.max(0, ...ws.map((w) => w.walMaxMs)), commitMaxMs: Math.max(0, ...ws.map((w) => w.commitMaxMs)),
  };
}

/** The save's causes in figures: the table's second half. */
export interface SaveCauses {
  /** The saving client's fsync calls: count, total and longest ms. */
  clientFsyncs: number; clientFsyncMs: number; clientFsyncMaxMs: number;
  /** Longest put and puts over 100 ms that overlapped the client's fsyncs, and the others. */
  maxPutInFsyncMs: number; slowPutsInFsync: number; maxPutElsewhereMs: number; slowPutsElsewhere: number;
  /** The longest WAL fdatasync (bucket bound) during the save, WAL fsyncs over 100 ms, the longest backend commit. */
  walMaxMs: number; walSlow: number; commitMaxMs: number;
  /** Concord: the main thread's longest event-loop delay during the save (NaN for etcd). */
  loopMaxMs: number;
  /** Concord's GC during the save (NaN for etcd): mark-compacts, scavenges, the longest pause, all pauses, why the mark-compacts ran. */
  marks: number; scavenges: number; gcMaxMs: number; gcTotalMs: number; markReasons: string;
  /** The slowest puts with what overlapped them, longest first. */
  slowest: PutCauses[];
}

export function saveCauses(puts: readonly PutSample[], fsyncs: readonly Span[], gcs: readonly (Span & { e: GcEvent })[] | undefined, windows: readonly MetricsWindow[], slowMs: number, list = 8): SaveCauses {
  const inFsync = (p: PutSample) => fsyncs.some((f) => overlaps(p, f));
  const a = puts.filter(inFsync), b = puts.filter((p) => !inFsync(p));
  const loops = windows.map((w) => w.loopMaxMs).filter((x): x is number => x !== undefined);
  const marks = gcs?.filter((g) => g.e.kind === 'mark') ?? [];
  const reasons = new Map<string, number>();
  for (const m of marks) reasons.set(m.e.reason, (reasons.get(m.e.reason) ?? 0) + 1);
  return {
    clientFsyncs: fsyncs.length, clientFsyncMs: fsyncs.reduce((s, f) => s + f.endMs - f.startMs, 0), clientFsyncMaxMs: Math.max(0, ...fsyncs.map((f) => f.endMs - f.startMs)),
    maxPutInFsyncMs: Math.max(0, ...a.map((p) => p.ms)), slowPutsInFsync: a.filter((p) => p.ms > slowMs).length,
    maxPutElsewhereMs: Math.max(0, ...b.map((p) => p.ms)), slowPutsElsewhere: b.filter((p) => p.ms > slowMs).length,
    walMaxMs: Math.max(0, ...windows.map((w) => w.walMaxMs)), walSlow: windows.reduce((s, w) => s + w.walSlow, 0), commitMaxMs: Math.max(0, ...windows.map((w) => w.commitMaxMs)),
    loopMaxMs: loops.length ? Math.max(...loops) : NaN,
    marks: gcs ? marks.length : NaN, scavenges: gcs ? gcs.length - marks.length : NaN,
    gcMaxMs: gcs ? Math.max(0, ...gcs.map((g) => g.e.pauseMs)) : NaN, gcTotalMs: gcs ? gcs.reduce((s, g) => s + g.e.pauseMs, 0) : NaN,
    markReasons: [...reasons].map(([r, n]) => `${n}x ${r}`).join(', '),
    slowest: [...puts].sort((x, y) => y.ms - x.ms).slice(0, list).map((p) => causesOf(p, fsyncs, gcs ?? [], windows)),
  };
}

/**
 * Per-second lines of the save (from `fromMs`): puts, the longest, and what the sources saw in
 * that second; the last seconds show the end-of-save flush against the rest.
 */
export function timeline(fromMs: number, toMs: number, puts: readonly PutSample[], fsyncs: readonly Span[], gcs: readonly (Span & { e: GcEvent })[] | undefined, windows: readonly MetricsWindow[]): string[] {
  const lines = ['  s   puts  max put ms  client fsync ms  WAL fsync max ms  commit max ms  loop max ms  GC ms (marks)'];
  for (let t = fromMs; t < toMs; t += 1000) {
    const sec: Span = { startMs: t, endMs: t + 1000 };
    const ps = puts.filter((p) => p.startMs >= t && p.startMs < t + 1000);
    let fs = 0;
    for (const f of fsyncs) if (overlaps(sec, f)) fs += Math.min(sec.endMs, f.endMs) - Math.max(sec.startMs, f.startMs);
    const ws = windows.filter((w) => overlaps(sec, w));
    const loops = ws.map((w) => w.loopMaxMs).filter((x): x is number => x !== undefined);
    const g = gcs?.filter((x) => x.startMs >= t && x.startMs < t + 1000);
    lines.push([
      String((t - fromMs) / 1000).padStart(3), String(ps.length).padStart(6), Math.max(0, ...ps.map((p) => p.ms)).toFixed(0).padStart(11),
      fs.toFixed(0).padStart(16), `<=${Math.max(0, ...ws.map((w) => w.walMaxMs))}`.padStart(17), `<=${Math.max(0, ...ws.map((w) => w.commitMaxMs))}`.padStart(14),
      (loops.length ? Math.max(...loops).toFixed(0) : '-').padStart(12),
      g ? `${g.reduce((s, x) => s + x.e.pauseMs, 0).toFixed(0)} (${g.filter((x) => x.e.kind === 'mark').length})`.padStart(14) : '-'.padStart(14),
    ].join(' '));
  }
  return lines;
}
