/**
 * The seeded cluster simulation (simulation.ts) over many seeds: 1-, 3- and 5-member
 * clusters running the server's real Ready loop under faults. Settings from the environment
 * (read here only):
 *   SIM_RUNS=n    seeds to run (default 120)          SIM_FIRST=s  first seed (default 1000)
 *   SIM_SEED=s    replay one seed                      SIM_STEPS=k  steps per run (default 3000)
 *   SIM_TRACE=1   print the replayed run's events      SIM_VERBOSE=1  one summary line per seed
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSimulation, sizeForSeed, type RunResult } from './simulation.js';

const runs = Number(process.env.SIM_RUNS ?? 120);
const steps = Number(process.env.SIM_STEPS ?? 3000);
const first = Number(process.env.SIM_FIRST ?? 1000);
const only = process.env.SIM_SEED;
const trace = process.env.SIM_TRACE ? (line: string) => console.log(line) : undefined;
const verbose = !!process.env.SIM_VERBOSE;

test('simulation: safety and liveness hold under faults across seeded runs (1, 3 and 5 members, the real Ready loop)', async () => {
  const seeds = only !== undefined ? [Number(only)] : Array.from({ length: runs }, (_, i) => first + i);
  // A member's loop that fails rejects its run; the simulation reports it (raft.error) with the seed.
  const loopFailures: unknown[] = [];
  const onRejection = (e: unknown): void => { loopFailures.push(e); };
  process.on('unhandledRejection', onRejection);
  let committed = 0;
  let elections = 0;
  try {
    for (const seed of seeds) {
      const size = sizeForSeed(seed);
      let res: RunResult;
      try {
        res = await runSimulation({ seed, size, steps, ...(trace ? { trace } : {}) });
      } catch (e) {
        throw new Error(`simulation seed ${seed} (${size} members) threw: ${(e as Error).stack}\nreplay with SIM_SEED=${seed}`);
      }
      if (verbose) console.log(res.summary);
      if (res.violations.length > 0 || loopFailures.length > 0) {
        assert.fail(`simulation seed ${seed} (${size} members) failed; replay with SIM_SEED=${seed}\n${[...res.violations, ...loopFailures.map(String)].slice(0, 5).join('\n')}`);
      }
      committed += res.committed;
      elections += res.elections;
    }
  } finally {
    process.off('unhandledRejection', onRejection);
  }
  // Sanity: the runs did real work (entries applied, several elections).
  assert.ok(committed > seeds.length * 10, `too little committed: ${committed}`);
  assert.ok(elections >= seeds.length, `too few elections: ${elections}`);
});
