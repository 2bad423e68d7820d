// Scheduling priority of another process's threads, for the benches' diagnostics (issue 14:
// does the main thread's loop delay come from waiting for a core?). On Linux a nice value
// belongs to a thread: setpriority(PRIO_PROCESS, tid) changes that thread alone, and a pid is
// its main thread's tid. Threads created later inherit their creator's value.
import { setPriority } from 'node:os';
import { threadsOf } from '../src/cli/thread-priority.js';

/** Which of a process's threads a renice applies to. */
export type TaskSet = 'all' | 'main' | 'others';

/** Sets `nice` on the chosen threads of `pid`; returns how many it set (threads may exit meanwhile). */
export function reniceTasks(pid: number, nice: number, which: TaskSet): number {
  let set = 0;
  for (const { tid } of threadsOf(pid)) {
    if (which === 'main' && tid !== pid) continue;
    if (which === 'others' && tid === pid) continue;
    try { setPriority(tid, nice); set++; } catch { /* the thread exited */ }
  }
  return set;
}

/** "--loadgen-nice 10" style option: undefined when absent. */
export function niceOption(argv: string[], name: string): number | undefined {
  const i = argv.indexOf(`--${name}`);
  if (i < 0 || argv[i + 1] === undefined) return undefined;
  const n = Number(argv[i + 1]);
  if (!Number.isInteger(n) || n < -20 || n > 19) throw new Error(`--${name}: a nice value from -20 to 19, got ${argv[i + 1]}`);
  return n;
}

/** Each thread's CPU time (ms, user + system) and nice value (thread-priority.ts's reader). */
export function taskStats(pid: number): Map<number, { cpuMs: number; nice: number }> {
  return new Map(threadsOf(pid).map((t) => [t.tid, { cpuMs: t.cpuTicks * TICK_MS, nice: t.nice }]));
}
const TICK_MS = 10; // USER_HZ is 100 on Linux

/** "tid(nice) cpu%" per thread over a window, from two taskStats snapshots; main thread first. */
export function taskCpuLine(pid: number, before: Map<number, { cpuMs: number }>, after: Map<number, { cpuMs: number; nice: number }>, windowMs: number): string {
  return [...after].sort((a, b) => (a[0] === pid ? -1 : b[0] === pid ? 1 : a[0] - b[0]))
    .map(([tid, s]) => `${tid === pid ? 'main' : tid}(${s.nice}) ${(((s.cpuMs - (before.get(tid)?.cpuMs ?? 0)) / windowMs) * 100).toFixed(0)}%`)
    .join(' ');
}
