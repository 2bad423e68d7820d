// How the benches start a load generator (bench/loadgen.ts, bench/watchgen.ts): a child
// process of its own, under Node flags that keep its garbage collector off the servers' cores.
//
// Why (issue 14, session 35): the generator shares the 2 cores with the server it drives, and
// Node's default gives it 4 V8 worker threads. Each of its scavenges and marking cycles wakes
// them, and a thread waking from sleep preempts the thread on its core: the server's. `perf
// record -e sched:sched_switch` over 45 s of txn-put with 100 clients: of the 235.7 ms Concord's
// main thread spent runnable in waits of 2 ms or more, 181.6 ms went to the generator's 4 V8
// workers (12.2 ms to its main thread, the rest to the VM's kernel threads and agent). With
// `--single-threaded-gc` (its GC on its own main thread) and 64 MiB semi-spaces (fewer
// scavenges), the generator's share of the server's waits of 1 ms or more fell from 55-117 to
// 3-40 ms per 25 s (`perf` in 4 runs each, alternating). What it did not measurably change is
// the loop figures: in 2 alternating pairs of issue 14's command, the windows' loop maxima
// followed the machine's floor either way. `--v8-pool-size=1` came after those runs: with GC
// single-threaded, `loop-stalls --sched-waits` still showed the generator's 4 V8 workers (its
// compiler's) taking 2-4 ms each of the server's waits in a 14 s window. The servers are
// measured, the instrument should not hold them, and these flags apply to etcd's runs and
// Concord's alike.
//
// BENCH_LOADGEN_NODE_ARGS (or a bench's `--loadgen-node-args "..."`) replaces the flags: ""
// runs the generators under Node's defaults, as before session 35.

import { fork, type ChildProcess, type StdioOptions } from 'node:child_process';

/** The generators' Node flags unless BENCH_LOADGEN_NODE_ARGS says otherwise. */
export const GENERATOR_NODE_ARGS: readonly string[] = ['--single-threaded-gc', '--v8-pool-size=1', '--max-semi-space-size=64'];

/** The flags a generator runs under: `given` (a space-separated list, "" for none) or the default. */
export function generatorNodeArgs(given: string | undefined = process.env.BENCH_LOADGEN_NODE_ARGS): string[] {
  return given === undefined ? [...GENERATOR_NODE_ARGS] : given.split(/\s+/).filter(Boolean);
}

/** Starts `script` (a generator's compiled file) with its JSON config as argv[2] and an IPC channel. */
export function forkGenerator(script: string, config: unknown, stdio: StdioOptions, nodeArgs: readonly string[] = generatorNodeArgs()): ChildProcess {
  return fork(script, [JSON.stringify(config)], { stdio, execArgv: [...nodeArgs] });
}
