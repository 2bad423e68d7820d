// Who held the CPU while a server's main thread waited for one, and where it slept (issue 14;
// diagnostics, not a test): `perf record -e sched:sched_switch` over a bench window, read back
// with `perf script`. bench/loop-stalls.ts runs it with `--sched-waits`.
//
// The loop tracer (src/metrics/loop-trace.ts) says how much of a stall the main thread ran,
// waited for a CPU or slept, from its own schedstat; it cannot say what ran instead. The
// scheduler's switch events can: each time the main thread leaves its CPU they give the state
// it left in (R: preempted, still runnable; S or D: asleep) and, with kernel call chains, where
// it went to sleep; every switch on that CPU until it comes back says who ran meanwhile.
// Session 35 found this way that the load generator's own V8 workers held most of the server's
// waits of 2 ms or more (bench/generator-process.ts), and that the longest sleeps were the loop
// idle in epoll_wait with its CPU idle: no work, and a wake-up the VM's host held back.
//
// Needs Linux's `perf` (Debian's linux-perf) and the right to trace the scheduler (root, or
// kernel.perf_event_paranoid at -1); without them the summary says so and the bench goes on.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { rmSync } from 'node:fs';

/** A running `perf record`; stop() ends it once its file is whole. */
export interface SchedRecording {
  readonly file: string;
  stop(): Promise<void>;
}

/** Starts recording every CPU's context switches (kernel call chains only) into `file`; why not, when perf cannot run. */
export function recordSchedSwitches(file: string): SchedRecording | string {
  const probe = spawnSync('perf', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return 'perf is not installed (Debian: linux-perf)';
  rmSync(file, { force: true });
  const child: ChildProcess = spawn('perf', ['record', '-q', '-a', '-e', 'sched:sched_switch', '-g', '--kernel-callchains', '-o', file],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return {
    file,
    async stop() {
      child.kill('SIGINT');
      await exited;
      if (stderr.trim()) process.stderr.write(`perf record: ${stderr.trim()}\n`);
    },
  };
}

/** One switch event: the CPU, when, who left it (in which state, from which kernel frames) and who came. */
interface Switch {
  readonly cpu: number;
  readonly t: number;
  readonly prevTid: number;
  readonly prevState: string;
  readonly nextTid: number;
  readonly frames: string[];
}

/** Who a thread belongs to, for the summary: its process id and the thread's name. */
interface Owner { pid: number; comm: string }

const HEADER = /^\s*(.+?)\s+(\d+)\/(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+sched:sched_switch:\s+(.*)$/;
const FIELD = /(\w+)=(\S+)/g;
/** Frames that every switch has: the scheduler's own. */
const SCHEDULER_FRAMES = new Set(['__schedule', 'schedule', '__traceiter_sched_switch']);

/** The switch events of a recording, in order, and the owner of every thread seen. */
async function readSwitches(file: string): Promise<{ switches: Switch[]; owners: Map<number, Owner> }> {
  const child = spawn('perf', ['script', '-i', file, '-F', 'comm,pid,tid,cpu,time,event,trace,sym'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const switches: Switch[] = [];
  const owners = new Map<number, Owner>();
  let current: { cpu: number; t: number; prevTid: number; prevState: string; nextTid: number; frames: string[] } | undefined;
  for await (const line of createInterface({ input: child.stdout! })) {
    const m = HEADER.exec(line);
    if (m) {
      if (current) switches.push(current);
      const fields = new Map<string, string>();
      for (const f of m[6]!.matchAll(FIELD)) fields.set(f[1]!, f[2]!);
      const tid = Number(m[3]);
      owners.set(tid, { pid: Number(m[2]), comm: m[1]! });
      const next = Number(fields.get('next_pid'));
      // A thread that never left a CPU in the window is known only by the switch that brought it.
      if (!owners.has(next)) owners.set(next, { pid: next, comm: fields.get('next_comm') ?? '?' });
      current = { cpu: Number(m[4]), t: Number(m[5]) * 1000, prevTid: Number(fields.get('prev_pid')), prevState: fields.get('prev_state') ?? '?', nextTid: Number(fields.get('next_pid')), frames: [] };
    } else if (current && current.frames.length < 6) {
      const sym = line.trim().split(/\s+/).pop();
      if (sym && !SCHEDULER_FRAMES.has(sym)) current.frames.push(sym);
    }
  }
  if (current) switches.push(current);
  return { switches, owners };
}

/**
 * The main thread `mainTid`'s runnable waits of at least `minWaitMs` with who held its CPU
 * meanwhile, and its sleeps of at least `minSleepMs` with where it slept; as printable lines.
 * `names` labels known processes (the server, the generator) by pid.
 */
export async function summarizeSchedWaits(file: string, mainTid: number, names: ReadonlyMap<number, string>, minWaitMs = 1, minSleepMs = 10): Promise<string[]> {
  const { switches, owners } = await readSwitches(file);
  if (switches.length === 0) return ['sched waits: perf recorded no context switches (its own message, if any, is above)'];
  const label = (tid: number): string => {
    if (tid === 0) return 'idle';
    const o = owners.get(tid);
    const proc = o && names.get(o.pid);
    if (!proc) return `${o?.comm ?? '?'}[${tid}]`;
    return o.pid === tid ? `${proc} main` : `${proc} ${o.comm}:${tid}`;
  };
  const held = new Map<string, number>();
  let waits = 0, waitMs = 0;
  const sleeps: string[] = [];
  let left: { sw: Switch; index: number } | undefined;
  for (let i = 0; i < switches.length; i++) {
    const sw = switches[i]!;
    if (sw.prevTid === mainTid) { left = { sw, index: i }; continue; }
    if (sw.nextTid !== mainTid || !left) continue;
    const ms = sw.t - left.sw.t;
    if (left.sw.prevState.startsWith('R') && ms >= minWaitMs) {
      waits++; waitMs += ms;
      holders(switches, left.index, i, left.sw.cpu, (tid, heldMs) => held.set(label(tid), (held.get(label(tid)) ?? 0) + heldMs));
    } else if (!left.sw.prevState.startsWith('R') && ms >= minSleepMs) {
      const idle = switches[left.index]!.nextTid === 0 ? ', its CPU idle' : '';
      sleeps.push(`  slept ${ms.toFixed(1)} ms (${left.sw.prevState}${idle}) in ${left.sw.frames.slice(0, 4).join(' < ')}`);
    }
    left = undefined;
  }
  const out = [`main thread's runnable waits of ${minWaitMs} ms or more: ${waits}, ${waitMs.toFixed(1)} ms in all; its CPU meanwhile held by:`];
  for (const [who, ms] of [...held].sort((a, b) => b[1] - a[1]).slice(0, 10)) out.push(`  ${who.padEnd(44)} ${ms.toFixed(1).padStart(8)} ms`);
  out.push(`main thread's sleeps of ${minSleepMs} ms or more: ${sleeps.length}`, ...sleeps);
  return out;
}

/** Calls `add` with each thread that ran on `cpu` between switches `from` and `to`, and for how long. */
function holders(switches: readonly Switch[], from: number, to: number, cpu: number, add: (tid: number, ms: number) => void): void {
  let on = switches[from]!.nextTid;
  let since = switches[from]!.t;
  for (let j = from + 1; j <= to; j++) {
    const sw = switches[j]!;
    if (sw.cpu !== cpu) continue;
    add(on, sw.t - since);
    on = sw.nextTid;
    since = sw.t;
  }
}
