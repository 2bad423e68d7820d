/**
 * Seeded randomized simulation of 3- and 5-node groups under message drop, delay, reorder,
 * duplication, partitions, crash/restart from persisted state, snapshots with compaction and
 * membership changes. Checks election safety, log matching, leader completeness, state-machine
 * safety, ReadIndex linearizability, and liveness once the network heals.
 *
 * RAFT_SIM_RUNS=n runs n seeds (default 60); RAFT_SIM_SEED=s replays one seed;
 * RAFT_SIM_STEPS=k sets steps per run (default 10000).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfChangeType, type NodeId } from '../proto/raftpb.js';
import { isRaftError } from './errors.js';
import { StateType } from './raft.js';
import { SimNetwork, type SimNode, rng } from './sim_network.js';

interface RunResult {
  violations: string[];
  committed: number;
  elections: number;
}

function pick<T>(r: () => number, xs: T[]): T {
  return xs[Math.floor(r() * xs.length)];
}

function runSimulation(seed: number, size: number, steps: number): RunResult {
  const r = rng(seed);
  const ids: NodeId[] = [];
  for (let i = 1; i <= size; i++) ids.push(BigInt(i));
  const net = SimNetwork.cluster(ids, { random: r, dropRate: 0.05, dupRate: 0.02, maxDelay: 8, maxInFlight: 5000 });
  let nextId = BigInt(size + 1);
  let proposals = 0;
  /** Outstanding reads: ctx -> highest index applied anywhere when the read was issued. */
  const reads = new Map<string, number>();
  let readSeq = 0;
  const violations: string[] = [];
  const live = (): SimNode[] => [...net.nodes.values()].filter((n) => n.alive);
  const maxApplied = (): number => {
    let m = 0;
    for (const k of net.history.keys()) if (k > m) m = k;
    return m;
  };
  const collectReads = (): void => {
    for (const n of net.nodes.values()) {
      for (const rs of n.readStates) {
        const key = new TextDecoder().decode(rs.requestCtx);
        const floor = reads.get(key);
        if (floor !== undefined && rs.index < floor) {
          violations.push(`read ${key} got index ${rs.index} < ${floor} applied before it was issued`);
        }
        reads.delete(key);
      }
      n.readStates = [];
    }
  };

  for (let step = 0; step < steps; step++) {
    const x = r();
    net.advanceTime();
    if (x < 0.3) {
      net.deliverOne();
    } else if (x < 0.45) {
      const n = pick(r, live());
      if (n) n.node.tick();
    } else if (x < 0.68) {
      const n = pick(r, live());
      if (n) {
        if (n.pending) net.persist(n);
        else net.collect(n);
      }
    } else if (x < 0.8) {
      const l = net.leader();
      const n = l && r() < 0.8 ? l : pick(r, live());
      if (n && net.propose(n, `p${seed}-${proposals}`)) proposals++;
    } else if (x < 0.83) {
      const n = pick(r, live());
      if (n) {
        const key = `r${readSeq++}`;
        try {
          n.node.readIndex(new TextEncoder().encode(key));
          reads.set(key, maxApplied());
        } catch (e) {
          if (!isRaftError(e, 'ProposalDropped')) throw e;
        }
      }
    } else if (x < 0.845) {
      if (r() < 0.5) net.heal();
      else {
        const side = ids.filter(() => r() < 0.5);
        net.partition(side);
      }
    } else if (x < 0.853) {
      // Crash a node (keeping a majority of the original members up) or restart one.
      const down = [...net.nodes.values()].filter((n) => !n.alive && !net.removed.has(n.id));
      if (down.length > 0 && r() < 0.6) pick(r, down).start();
      else if (live().length > Math.ceil((net.nodes.size + 1) / 2)) pick(r, live()).crash();
    } else if (x < 0.86) {
      const n = pick(r, live());
      if (n) n.snapshotAndCompact(Math.floor(r() * 5));
    } else if (x < 0.863) {
      // Membership: add a fresh node, promote a learner, or remove a voter.
      const l = net.leader();
      if (l && l.node.raft.pendingConfIndex <= l.node.raft.log.applied) {
        const cs = l.confState;
        const roll = r();
        let cc: { type: ConfChangeType; nodeId: NodeId } | undefined;
        if (cs.learners.length > 0 && roll < 0.4) {
          cc = { type: ConfChangeType.ConfChangeAddNode, nodeId: cs.learners[0] };
        } else if (cs.voters.length > 3 && roll < 0.7) {
          cc = { type: ConfChangeType.ConfChangeRemoveNode, nodeId: pick(r, cs.voters) };
        } else if (cs.voters.length + cs.learners.length < size + 2) {
          const id = nextId++;
          net.addEmptyNode(id);
          cc = { type: r() < 0.5 ? ConfChangeType.ConfChangeAddLearnerNode : ConfChangeType.ConfChangeAddNode, nodeId: id };
        }
        if (cc) {
          try {
            l.node.proposeConfChange({ ...cc, id: 0n, context: undefined });
          } catch (e) {
            if (!isRaftError(e, 'ProposalDropped')) throw e;
          }
        }
      }
    } else {
      net.deliverOne();
    }
    // Removed nodes are shut down, as the server does once it applies its own removal.
    for (const id of net.removed) {
      const n = net.nodes.get(id);
      if (n?.alive) n.crash();
    }
    collectReads();
    if (step % 500 === 499) net.checkLogMatching();
  }

  // Liveness: heal everything, restart every member, and a proposal must commit everywhere.
  net.heal();
  net.dropRate = 0;
  net.dupRate = 0;
  for (const n of net.nodes.values()) if (!n.alive && !net.removed.has(n.id)) n.start();
  let committedFinal = false;
  const marker = `final-${seed}`;
  for (let round = 0; round < 400 && !committedFinal; round++) {
    net.tickAll();
    // Bounded, so a livelock fails the run quickly instead of spinning.
    net.stabilize(200);
    const l = net.leader();
    if (l && l.node.raft.state === StateType.Leader) {
      // Periodic snapshots (as a server takes them) let members that joined after the last
      // snapshot restore from one that includes them.
      if (round % 50 === 49) l.snapshotAndCompact(0);
      if (round % 20 === 0 || !l.appliedData.includes(marker)) net.propose(l, marker);
      net.stabilize(200);
      const members = [...net.nodes.values()].filter((n) => n.alive && l.confState.voters.includes(n.id));
      committedFinal = members.length > 0 && members.every((n) => n.appliedData.includes(marker));
    }
  }
  if (!committedFinal) {
    const states = [...net.nodes.values()].map(
      (n) => `${n.id}:${n.alive ? StateType[n.node.raft.state] : 'down'} t${n.node.raft.term} c${n.node.raft.log.committed} a${n.appliedIndex} cs=${n.confState.voters}`,
    );
    violations.push(`liveness: no commit after heal [${states.join(' ')}]`);
  }
  net.checkLogMatching();
  collectReads();
  for (const v of net.violations) violations.push(`${v.kind}: ${v.detail}`);
  if (process.env.RAFT_SIM_VERBOSE) {
    console.log(
      `seed ${seed} size ${size}: applied ${net.history.size} entries, ${net.leaders.size} terms with a leader, ` +
        `${net.nodes.size} nodes ever, ${net.removed.size} removed, ${net.delivered} delivered, ${readSeq} reads`,
    );
  }
  return { violations, committed: net.history.size, elections: net.leaders.size };
}

const runs = Number(process.env.RAFT_SIM_RUNS ?? 60);
const steps = Number(process.env.RAFT_SIM_STEPS ?? 10000);
const only = process.env.RAFT_SIM_SEED;

test('simulation: safety and liveness hold under faults across seeded runs (3 and 5 nodes)', () => {
  const seeds = only !== undefined ? [Number(only)] : Array.from({ length: runs }, (_, i) => 1000 + i);
  let committed = 0;
  let elections = 0;
  for (const seed of seeds) {
    const size = seed % 2 === 0 ? 3 : 5;
    let res: RunResult;
    try {
      res = runSimulation(seed, size, steps);
    } catch (e) {
      throw new Error(`simulation seed ${seed} (${size} nodes) threw: ${(e as Error).stack}\nreplay with RAFT_SIM_SEED=${seed}`);
    }
    if (res.violations.length > 0) {
      assert.fail(`simulation seed ${seed} (${size} nodes) failed; replay with RAFT_SIM_SEED=${seed}\n${res.violations.slice(0, 5).join('\n')}`);
    }
    committed += res.committed;
    elections += res.elections;
  }
  // Sanity: the runs did real work (entries applied, several elections).
  assert.ok(committed > seeds.length * 10, `too little committed: ${committed}`);
  assert.ok(elections >= seeds.length, `too few elections: ${elections}`);
});
