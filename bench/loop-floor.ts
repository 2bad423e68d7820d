// The machine's own event-loop floor for the bench's windows (issue 14: "no pause over 10 ms on
// the main thread"). A separate Node process that does nothing but sample its own event-loop
// delay the way Concord's concord_event_loop_delay_seconds does (monitorEventLoopDelay, a 5 ms
// timer, the excess over the period), over the same window as each scenario's measurement.
//
// Why: on this 2-core VM a timer's lateness is not all the server's doing. `perf sched` during
// range-l showed Concord's main thread runnable but not running for 1-8 ms at a time while
// the core went to the load generator, Concord's V8 worker, the VM's agent and kdamond, or
// stayed idle (the vCPU not picked up yet). The floor says how late a timer fires in a process
// with no work at all over the same window, so a row's loop max can be read against it. It is
// a lower bound of the machine's share: an idle process's wake-ups preempt busy ones (it has
// CPU credit from sleeping), a thread busy 80% of the time gets no such credit.
//
// The floor is what an unpinned probe sees: a thread free to wake on whichever CPU is free (a
// lower bound). On request (`perCpu`, the bench's `--floor per-cpu`) one more probe pinned to
// each CPU (taskset) gives the worst any one CPU did to a timer over the window (`cpuMaxMs`): a
// thread running on a vCPU the host takes away cannot move, and the unpinned probe, on one CPU
// at a time, misses what the other one went through.
//
// The pinned probes are not the default because they move what they stand beside (session 45,
// 12 alternating rounds of Concord's put-100, range and txn rows, 3 reps each): with them,
// Concord's window maxima had a median of 7.3-7.9 ms and 34 of 144 windows went over 10 ms;
// with no probe, 5.8-5.9 ms and 15 of 144; with the unpinned probe alone, 6.6 ms and 6 of 48.
// A probe that cannot move wakes every 5 ms on the CPU it is tied to, whoever runs there.
//
// Parent side: startLoopFloor() forks the probes; reset() at a window's start, read() at its end.

import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { LoopDelay } from './mem.js';

/** The sampling period: Concord's (src/metrics/event-loop.ts RESOLUTION_MS). */
const RESOLUTION_MS = 5;
/** util-linux's taskset, to pin a probe to one CPU; without it only the unpinned probe runs. */
export const TASKSET = '/usr/bin/taskset';

type Request = { type: 'reset' } | { type: 'read'; id: number };
type Reply = { type: 'read'; id: number; delay: LoopDelay };

export interface LoopFloor {
  /** Starts a new window. */
  reset(): void;
  /** The window's p99 and max since the last reset (undefined if the probe is gone), and the pinned probes' worst max. */
  read(): Promise<LoopDelay | undefined>;
  stop(): void;
}

/** One probe process: `cpu` pins it (taskset -c), undefined leaves it free. */
function startProbe(cpu: number | undefined): LoopFloor {
  const pin = cpu === undefined ? {} : { execPath: TASKSET, execArgv: ['-c', String(cpu), process.execPath] };
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--probe'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], ...pin });
  child.unref();
  const waiting = new Map<number, (d: LoopDelay | undefined) => void>();
  let nextId = 0;
  child.on('message', (m: Reply) => { waiting.get(m.id)?.(m.delay); waiting.delete(m.id); });
  child.on('exit', () => { for (const done of waiting.values()) done(undefined); waiting.clear(); });
  child.on('error', () => { /* no taskset after all: read() answers undefined */ });
  const send = (r: Request): boolean => child.connected && child.send(r);
  return {
    reset: () => { send({ type: 'reset' }); },
    read: () => new Promise((resolve) => {
      const id = nextId++;
      waiting.set(id, resolve);
      if (!send({ type: 'read', id })) { waiting.delete(id); resolve(undefined); }
    }),
    stop: () => { if (child.connected) child.disconnect(); child.kill(); },
  };
}

/** The unpinned probe, and with `perCpu` one pinned to each CPU (see above for why not by default). */
export function startLoopFloor(perCpu: boolean): LoopFloor {
  const free = startProbe(undefined);
  const pinned = perCpu && existsSync(TASKSET) ? Array.from({ length: availableParallelism() }, (_, cpu) => startProbe(cpu)) : [];
  const all = [free, ...pinned];
  return {
    reset: () => { for (const p of all) p.reset(); },
    read: async () => {
      const [d, ...perCpu] = await Promise.all(all.map((p) => p.read()));
      if (d === undefined) return undefined;
      const maxes = perCpu.filter((x) => x !== undefined).map((x) => x.maxMs);
      return maxes.length === pinned.length && maxes.length > 0 ? { ...d, cpuMaxMs: Math.max(...maxes) } : d;
    },
    stop: () => { for (const p of all) p.stop(); },
  };
}

/**
 * This process's own event-loop delay over windows, sampled as concord_event_loop_delay_seconds
 * is (a RESOLUTION_MS timer, the excess over the period): the probes', and bench/busy-canary.ts's.
 */
export function ownLoopDelay(): { reset(): void; read(): LoopDelay } {
  const h = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  h.enable();
  // Node's samples are whole intervals between ticks (the period included): the delay is the excess.
  const ms = (ns: number): number => (Number.isFinite(ns) ? Math.max(0, ns / 1e6 - RESOLUTION_MS) : 0);
  return { reset: () => h.reset(), read: () => ({ p99Ms: ms(h.percentile(99)), maxMs: ms(h.max) }) };
}

function probe(): void {
  const delay = ownLoopDelay();
  process.on('message', (m: Request) => {
    if (m.type === 'read') process.send!({ type: 'read', id: m.id, delay: delay.read() } satisfies Reply);
    delay.reset();
  });
  process.on('disconnect', () => process.exit(0));
}

if (process.argv[2] === '--probe') probe();
