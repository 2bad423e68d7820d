// Counts what a server process does per request (not a test): loaded into Concord with
// `--import <this file's URL>` (bench/put-cost.ts's --count-async does that), it counts, from
// the moment it loads:
//   - event-loop turns (libuv's loop count) and events the loop's poll phase delivered;
//   - async resources created, by type: promises (PROMISE), setImmediate (Immediate),
//     process.nextTick (TickObject), timers (Timeout), fs requests (FSREQCALLBACK: each a
//     thread-pool job), http2 streams, native addons' async work (lmdb-js's by its name);
//   - callbacks run, by type (async_hooks `before`): what each turn actually runs.
// On SIGUSR2 it prints one line `ASYNC-COUNTS {json}` to stdout: the totals so far. The
// caller takes the difference of two such lines around its window and divides by requests.
// The hooks themselves cost CPU (promise hooks especially): read counts from such a run, never
// its CPU or latency.
import { createHook } from 'node:async_hooks';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';

const created = new Map<string, number>();
const ran = new Map<string, number>();
const typeOf = new Map<number, string>();
/** With ASYNC_COUNTS_STACKS=1: where each kind is created (the first frames outside node's internals). */
const stacks = process.env.ASYNC_COUNTS_STACKS === '1' ? new Map<string, number>() : undefined;
function site(type: string): string {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 30;
  const stack = new Error().stack;
  Error.stackTraceLimit = limit;
  const frames = (stack ?? '').split('\n').slice(1).map((l) => l.trim())
    .filter((l) => !l.includes('node:internal') && !l.includes('async-counts') && !l.includes('(node:'));
  return `${type} ${frames.slice(0, 3).join(' < ')}`;
}
/** With ASYNC_COUNTS_TRACE=N: the last N callbacks run, as "loopTurn type site", written to $TMPDIR/async-trace-PID.txt. */
const traceMax = Number(process.env.ASYNC_COUNTS_TRACE ?? 0);
const trace: string[] = [];
const siteOf = new Map<number, string>();
const uvLoop = (): number => (performance as unknown as { nodeTiming: { uvMetricsInfo?: { loopCount: number } } }).nodeTiming.uvMetricsInfo?.loopCount ?? NaN;
const bump = (m: Map<string, number>, k: string): void => { m.set(k, (m.get(k) ?? 0) + 1); };

createHook({
  init(id, type) {
    bump(created, type);
    if (stacks) bump(stacks, site(type));
    // Promises run no `before` of their own worth counting; keep the map small.
    if (type !== 'PROMISE') typeOf.set(id, type);
    if (traceMax > 0 && type !== 'PROMISE') siteOf.set(id, site(type));
  },
  before(id) {
    const t = typeOf.get(id);
    if (t !== undefined) bump(ran, t);
    if (traceMax > 0 && t !== undefined) {
      trace.push(`${uvLoop()} ${siteOf.get(id) ?? t}`);
      if (trace.length > traceMax) trace.shift();
    }
  },
  destroy(id) { typeOf.delete(id); siteOf.delete(id); },
}).enable();

process.on('SIGUSR2', () => {
  const uv = (performance as unknown as { nodeTiming: { uvMetricsInfo?: { loopCount: number; events: number } } }).nodeTiming.uvMetricsInfo;
  const out = {
    loopTurns: uv?.loopCount ?? NaN,
    loopEvents: uv?.events ?? NaN,
    created: Object.fromEntries(created),
    ran: Object.fromEntries(ran),
    ...(stacks ? { sites: Object.fromEntries(stacks) } : {}),
  };
  if (traceMax > 0) writeFileSync(`${tmpdir()}/async-trace-${process.pid}.txt`, `${trace.join('\n')}\n`);
  process.stdout.write(`ASYNC-COUNTS ${JSON.stringify(out)}\n`);
});
