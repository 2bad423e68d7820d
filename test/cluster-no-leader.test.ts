// A member that knows no leader (the two others SIGSTOPped), differential against etcd:
// requests wait for a leader instead of failing at once. etcd's raft stops taking proposals
// while it has no leader (Propose blocks until one is elected or the request timeout, 5 s plus
// two election timeouts, passes), and its linearizable reads retry their ReadIndex meanwhile.
// So a put that gives up answers "context deadline exceeded" (Unknown) and a read "etcdserver:
// request timed out"; a put sent while there is no leader succeeds once the others return, and
// a read then fails with the retryable "etcdserver: leader changed" (etcd 3.4's read loop).
// Concord used to answer "etcdserver: no leader" at once: under faults its clients saw bursts
// of errors etcd's never see (test/linearizability.test.ts counts them).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { selectedTargets, sleep, GrpcError, type TargetName } from './harness.js';
import { startCluster, type Cluster } from './cluster-harness.js';
import { runKvOp } from './linearizability-workload.js';
import type { KvInput } from '../src/testkit/index.js';

const clusters: Cluster[] = [];
after(async () => { for (const c of clusters) await c.destroy(); });

/** Longer than etcd's request timeout here (5 s + 2 x 2 s): the server gives up first. */
const clientTimeoutMs = 30_000;

async function outcome(c: Cluster, i: number, input: KvInput): Promise<string> {
  try {
    const out = await runKvOp(c.member(i).rpc, input, clientTimeoutMs);
    return `${input.kind}: ok ${JSON.stringify(out)}`;
  } catch (e) {
    if (!(e instanceof GrpcError)) throw e;
    return `${input.kind}: code ${e.code} ${e.details}`;
  }
}

/** Polls member i's Status until it reports no leader (bounded). */
async function untilLeaderless(c: Cluster, i: number): Promise<void> {
  for (let n = 0; n < 600; n++) {
    const st = await c.member(i).rpc.status().catch(() => undefined);
    if (st && st.leader === 0n) return;
    await sleep(100);
  }
  throw new Error(`m${i} still names a leader`);
}

async function session(target: TargetName): Promise<string[]> {
  const out: string[] = [];
  const c = await startCluster({ target, size: 3, flags: ['--heartbeat-interval', '200', '--election-timeout', '2000'] });
  clusters.push(c);
  const leader = await c.waitForLeader();
  const alone = (leader + 1) % 3;
  const others = [0, 1, 2].filter((i) => i !== alone);
  out.push(await outcome(c, alone, { kind: 'put', key: 'k', value: 'before' }));

  for (const i of others) c.pause(i);
  await untilLeaderless(c, alone);
  out.push(`without a leader, ${await outcome(c, alone, { kind: 'put', key: 'k', value: 'lost' })}`);
  out.push(`without a leader, ${await outcome(c, alone, { kind: 'get', key: 'k' })}`);

  // Sent while there is no leader, answered once the others are back and elect one.
  const put = outcome(c, alone, { kind: 'put', key: 'k', value: 'waited' });
  const get = outcome(c, alone, { kind: 'get', key: 'k' });
  await sleep(500);
  for (const i of others) c.resume(i);
  out.push(`sent without a leader, then the others resumed: ${await put}`);
  out.push(`sent without a leader, then the others resumed: ${await get}`);
  await c.waitForLeader();
  out.push(await outcome(c, alone, { kind: 'get', key: 'k' }));
  return out;
}

const results = new Map<TargetName, string[]>();
for (const target of selectedTargets()) {
  test(`${target}: a member without a leader holds requests until one is elected or etcd's request timeout`, { timeout: 240_000 }, async () => {
    const out = await session(target);
    console.log(out.map((l) => `# ${l}`).join('\n'));
    assert.deepEqual(out, [
      'put: ok {"kind":"put"}',
      'without a leader, put: code 2 context deadline exceeded',
      'without a leader, get: code 14 etcdserver: request timed out',
      'sent without a leader, then the others resumed: put: ok {"kind":"put"}',
      'sent without a leader, then the others resumed: get: code 14 etcdserver: leader changed',
      'get: ok {"kind":"get","value":"waited"}',
    ]);
    results.set(target, out);
    const other = results.get(target === 'etcd' ? 'concord' : 'etcd');
    if (other) assert.deepEqual(out, other, 'Concord and etcd answer the same');
  });
}
