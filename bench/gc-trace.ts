// V8's --trace-gc lines, as benchmarks read them from Concord's stdout:
//   [pid:0x...]   12345 ms: Scavenge 12.3 (15.0) -> 11.2 (16.0) MB, 1.23 / 0.00 ms  (average mu = ...) allocation failure;
// or its --trace-gc-nvp lines (name=value pairs, which also say what each collection promoted):
//   [pid:0x...]   12345 ms: pause=1.2 mutator=40.1 gc=s ... total_size_before=N total_size_after=N ... promoted=N new_space_survived=N ...
// `atMs` is V8's clock (ms since the isolate started); processStartEpochMs anchors it to the wall clock.
import { readFileSync } from 'node:fs';

export interface GcEvent {
  kind: 'scavenge' | 'mark';
  /** When the pause started, in ms since the isolate started. */
  atMs: number;
  beforeMB: number;
  afterMB: number;
  /** The main thread's pause. */
  pauseMs: number;
  /** V8's reason ("allocation failure", "external memory pressure", "finalize incremental marking via task", ...). */
  reason: string;
  /** Bytes this collection moved from the young generation to the old (--trace-gc-nvp lines only). */
  promotedBytes?: number;
  /** Bytes that stayed young, copied within the young generation (--trace-gc-nvp scavenges only). */
  survivedBytes?: number;
}

const gcLine = /\s([\d.]+) ms: (Scavenge|Mark-Compact|Mark-sweep|Mark-Compact \(reduce\))[^\d]*([\d.]+) \([\d.]+\) -> ([\d.]+) \([\d.]+\) MB, (?:pooled: [\d.]+ MB, )?([\d.]+) \/ [\d.]+ ms(?:\s+\([^)]*\))?\s*([^;]*)/;

const nvpLine = /\s([\d.]+) ms: pause=([\d.]+) .*\bgc=(\w+) /;
const MiB = 1024 * 1024;

function parseNvpLine(line: string): GcEvent | undefined {
  const m = nvpLine.exec(line);
  if (!m) return undefined;
  const field = (name: string): number => Number(new RegExp(`\\b${name}=([\\d.]+)`).exec(line)?.[1] ?? NaN);
  return {
    kind: m[3] === 's' ? 'scavenge' : 'mark', atMs: Number(m[1]), pauseMs: Number(m[2]), reason: '',
    beforeMB: field('total_size_before') / MiB, afterMB: field('total_size_after') / MiB,
    promotedBytes: field('promoted'), survivedBytes: field('new_space_survived'),
  };
}

export function parseGcLine(line: string): GcEvent | undefined {
  if (line.includes(' pause=')) return parseNvpLine(line);
  const m = gcLine.exec(line);
  if (!m) return undefined;
  return {
    kind: m[2] === 'Scavenge' ? 'scavenge' : 'mark',
    atMs: Number(m[1]), beforeMB: Number(m[3]), afterMB: Number(m[4]), pauseMs: Number(m[5]), reason: m[6]!.trim(),
  };
}

/** Calls `onEvent` for each --trace-gc line of a process's stdout chunks (lines may span chunks). */
export function gcLineReader(onEvent: (e: GcEvent, line: string) => void): (chunk: Buffer) => void {
  let partial = '';
  return (chunk) => {
    const lines = (partial + chunk.toString('latin1')).split('\n');
    partial = lines.pop()!;
    for (const l of lines) {
      const e = parseGcLine(l);
      if (e) onEvent(e, l);
    }
  };
}

/**
 * When process `pid` started, in ms since the epoch (/proc/PID/stat starttime after
 * /proc/stat's btime; 10 ms ticks). V8's isolate starts a little later (Node's bootstrap
 * before it: ~10-50 ms, more on a loaded machine), so GC times anchored here read that much early.
 */
export function processStartEpochMs(pid: number): number {
  const btime = Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1]);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const startTicks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]); // field 22
  return btime * 1000 + startTicks * 10;
}
