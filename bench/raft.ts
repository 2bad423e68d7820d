/**
 * In-process 3-node raft, no I/O: proposals committed (applied on every node) per second, with
 * one proposal per Ready cycle versus batches of 256. Optionally through the wire codec.
 * Run: npx tsc -p . && node dist/bench/raft.js
 */
import { TestNetwork } from '../src/raft/rafttest/network.js';
import { rng } from '../src/testkit/index.js';
import { StateType } from '../src/raft/index.js';

function run(batch: number, total: number, serialize: boolean, size: number): number {
  const ids = Array.from({ length: size }, (_, i) => BigInt(i + 1));
  const net = TestNetwork.cluster(ids, rng(42));
  net.serialize = serialize;
  net.stabilize();
  const leader = net.node(1n);
  leader.node.campaign();
  net.stabilize();
  if (leader.node.raft.state !== StateType.Leader) throw new Error('no leader');
  const payload = new Uint8Array(256);
  const datas = Array.from({ length: batch }, () => payload);
  const start = leader.appliedIndex;
  const t0 = process.hrtime.bigint();
  for (let done = 0; done < total; done += batch) {
    if (batch === 1) leader.node.propose(payload);
    else leader.node.proposeBatch(datas);
    net.stabilize();
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const committed = Math.min(...[...net.nodes.values()].map((n) => n.appliedIndex)) - start;
  if (committed < total) throw new Error(`only ${committed} of ${total} committed`);
  return committed / secs;
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
for (const serialize of [false, true]) {
  for (const size of [1, 3]) {
    for (const batch of [1, 256]) {
      const total = batch === 1 ? 20000 : 200000;
      run(batch, total / 10, serialize, size); // warm-up
      const rate = run(batch, total, serialize, size);
      console.log(
        `raft ${size} node${size > 1 ? 's' : ' '} batch ${String(batch).padStart(3)} ${serialize ? 'wire codec' : 'in-memory '}: ${fmt(rate).padStart(10)} proposals/s`,
      );
    }
  }
}
