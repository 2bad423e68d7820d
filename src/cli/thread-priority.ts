/**
 * Scheduling priority of the server's own threads (issue 14: no main-thread pause over 10 ms
 * under load). Every request waits on the main thread (the event loop); the process's other
 * threads (V8's platform workers: concurrent marking, parallel scavenge helpers, compilation;
 * libuv's pool: the WAL's fdatasync, file I/O) only help it. On a small machine they compete
 * with it for the same cores, and a main thread that is runnable but waiting for a core is a
 * loop pause like any other. On Linux a nice value belongs to a thread (setpriority with a
 * thread id changes that thread alone; a pid is its main thread's id), so the helpers can
 * yield to the main thread without touching anything else.
 *
 * Raising a thread's nice value needs no privilege; lowering one below 0 needs CAP_SYS_NICE,
 * so the main thread's own boost (CONCORD_MAIN_NICE) is opt-in and a refusal is logged, not
 * fatal. Threads created later inherit their creator's value (the main thread's), hence the
 * slow rescan. Linux only: elsewhere there is no per-thread /proc and nothing is changed.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { setPriority } from 'node:os';
import type { Logger } from '../log/index.js';

/** What to hold; `undefined` leaves that thread (or those threads) alone. */
export interface ThreadNice {
  /**
   * How much nicer than the main thread every other thread runs (V8 workers, the libuv pool,
   * worker_threads), relative so that a server started under `nice` keeps the same order
   * (capped at 19, the lowest priority).
   */
  readonly helpersAboveMain: number | undefined;
  /** The main thread's own nice value: below its current one needs CAP_SYS_NICE (root). */
  readonly main: number | undefined;
}

/** The helpers' default offset: see docs/architecture.md (issue 14) for the A/B. */
export const DEFAULT_HELPERS_ABOVE_MAIN = 5;
/** How often new threads are looked for (worker_threads, a pool started late). */
const RESCAN_MS = 5_000;
const LOWEST_PRIORITY = 19;

/**
 * CONCORD_THREAD_NICE (how much nicer the helpers run than the main thread, 0 to 39, or "off";
 * default DEFAULT_HELPERS_ABOVE_MAIN) and CONCORD_MAIN_NICE (the main thread's nice value,
 * -20 to 19; unset leaves it alone). A malformed value is an error message, as a bad flag is.
 */
export function threadNiceFromEnv(env: Readonly<Record<string, string | undefined>>): ThreadNice | string {
  const helpersAboveMain = parseNice('CONCORD_THREAD_NICE', env.CONCORD_THREAD_NICE, DEFAULT_HELPERS_ABOVE_MAIN, 0, 39);
  if (typeof helpersAboveMain === 'string') return helpersAboveMain;
  const main = parseNice('CONCORD_MAIN_NICE', env.CONCORD_MAIN_NICE, undefined, -20, 19);
  if (typeof main === 'string') return main;
  return { helpersAboveMain, main };
}

function parseNice(name: string, raw: string | undefined, dflt: number | undefined, min: number, max: number): number | undefined | string {
  if (raw === undefined || raw === '') return dflt;
  if (raw === 'off') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) return `invalid ${name} ${JSON.stringify(raw)}: an integer from ${min} to ${max}, or "off"`;
  return n;
}

/**
 * Threads the main thread waits on synchronously, by name: the WAL's bounded fdatasync
 * (wal/native/sync_within.c). A helper's nice would make the loop wait for a core whenever
 * another process is running (put-1 at 2,884 req/s against 3,349 blocking, bench/loop-stalls
 * with the thread at the helpers' nice 5), so they run at the main thread's value.
 */
export const MAIN_PRIORITY_THREADS: ReadonlySet<string> = new Set(['concord-walsync']);

/** One thread of a process as /proc shows it. */
export interface TaskNice {
  readonly tid: number;
  /** Its name (comm: what pthread_setname_np set, at most 15 characters). */
  readonly name: string;
  readonly nice: number;
  /** User + system CPU time so far, in clock ticks (USER_HZ, 100 a second on Linux). */
  readonly cpuTicks: number;
}

/** This process's threads and their nice values; none without /proc. */
export function ownThreads(): TaskNice[] {
  return threadsOf('self');
}

/**
 * The threads of process `pid` (fields 2, 14, 15 and 19 of /proc/PID/task/TID/stat); none without
 * /proc. The benches read other processes' threads with it (bench/renice.ts).
 */
export function threadsOf(pid: number | 'self'): TaskNice[] {
  const out: TaskNice[] = [];
  let names: string[];
  try { names = readdirSync(`/proc/${pid}/task`); } catch { return out; }
  for (const name of names) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${name}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const fields = stat.slice(close + 2).split(' '); // fields[0] is field 3
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      out.push({ tid: Number(name), name: comm, nice: Number(fields[16]), cpuTicks: Number(fields[11]) + Number(fields[12]) });
    } catch { /* the thread exited between the listing and the read */ }
  }
  return out;
}

/**
 * Sets the nice values now and on every rescan; returns a stop function. A thread whose value
 * cannot be set is reported once (the main thread's boost without CAP_SYS_NICE) and skipped.
 */
export function holdThreadNice(want: ThreadNice, log: Logger, rescanMs = RESCAN_MS): () => void {
  if (process.platform !== 'linux' || (want.helpersAboveMain === undefined && want.main === undefined)) return () => {};
  const refused = new Set<number>();
  const set = (tid: number, nice: number): boolean => {
    try { setPriority(tid, nice); return true; } catch (e) {
      refused.add(tid);
      if (tid === process.pid) log.warn('cannot set the main thread\'s nice value; leaving it', { nice, error: String(e) });
      return false;
    }
  };
  const scan = (): void => {
    const threads = ownThreads();
    let mainNice = threads.find((t) => t.tid === process.pid)?.nice ?? 0;
    if (want.main !== undefined && mainNice !== want.main && !refused.has(process.pid) && set(process.pid, want.main)) mainNice = want.main;
    if (want.helpersAboveMain === undefined) return;
    const helperNice = Math.min(LOWEST_PRIORITY, mainNice + want.helpersAboveMain);
    for (const t of threads) {
      if (t.tid === process.pid || refused.has(t.tid)) continue;
      const nice = MAIN_PRIORITY_THREADS.has(t.name) ? mainNice : helperNice;
      if (t.nice !== nice) set(t.tid, nice);
    }
  };
  scan();
  const timer = setInterval(scan, rescanMs);
  timer.unref();
  return () => clearInterval(timer);
}
