// A member that knows no leader (the two others SIGSTOPped), differential against etcd:
// requests wait for a leader instead of failing at once. etcd's raft stops taking proposals
// while it has no leader (Propose blocks until one is elected or the request timeout, 5 s plus
// two election timeouts, passes), and its linearizable reads retry their ReadIndex meanwhile.
// So a put that gives up answers "context deadline exceeded" (Unknown) and a read "etcdserver:
// request timed out"; a put sent while there is no leader succeeds once the others return, and
// a read then fails with the retryable "etcdserver: leader changed" (etcd 3.4's read loop).
// Concord used to answer "etcdserver: no leader" at once: under faults its clients saw bursts
// of errors etcd's never see (test/linearizability.test.ts counts them).
// A call that asks for a leader (`hasleader` metadata, clientv3.WithRequireLeader) is the
// exception: etcd's interceptors refuse it at once with "etcdserver: no leader", unary calls
// and streams alike (Concord honoured it on Watch only).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { LeaseGrantRequest, PutRequest, RangeRequest } from '../src/proto/gen/etcdserverpb/rpc.js';
import { targetsWithWorkerThreadApi, sleep, GrpcError, type TargetName } from './harness.js';
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

/** Calls a member with `hasleader: true` metadata, requests given encoded: its outcome as a line. */
const requireLeaderProbes: Array<{ name: string; path: string; body: Uint8Array; stream?: true }> = [
  { name: 'Put', path: '/etcdserverpb.KV/Put', body: PutRequest.encode(PutRequest.fromPartial({ key: Buffer.from('k'), value: Buffer.from('v') })).finish() },
  { name: 'Range', path: '/etcdserverpb.KV/Range', body: RangeRequest.encode(RangeRequest.fromPartial({ key: Buffer.from('k') })).finish() },
  { name: 'serializable Range', path: '/etcdserverpb.KV/Range', body: RangeRequest.encode(RangeRequest.fromPartial({ key: Buffer.from('k'), serializable: true })).finish() },
  { name: 'Status', path: '/etcdserverpb.Maintenance/Status', body: new Uint8Array(0) },
  { name: 'MemberList', path: '/etcdserverpb.Cluster/MemberList', body: new Uint8Array(0) },
  { name: 'LeaseGrant', path: '/etcdserverpb.Lease/LeaseGrant', body: LeaseGrantRequest.encode(LeaseGrantRequest.fromPartial({ TTL: 10 })).finish() },
  { name: 'Snapshot (stream)', path: '/etcdserverpb.Maintenance/Snapshot', body: new Uint8Array(0), stream: true },
];

async function requireLeaderOutcome(c: Cluster, i: number, p: typeof requireLeaderProbes[number]): Promise<string> {
  const md = new grpc.Metadata();
  md.set('hasleader', 'true');
  const raw = c.member(i).rpc.raw;
  const same = (b: Buffer) => b;
  const deadline = Date.now() + clientTimeoutMs;
  const err = await new Promise<grpc.ServiceError | null>((resolve) => {
    if (p.stream) {
      const s = raw.makeServerStreamRequest(p.path, same, same, Buffer.from(p.body), md, { deadline });
      s.on('data', () => s.cancel()); // a first chunk means it was served
      s.on('error', (e: grpc.ServiceError) => resolve(e.code === grpc.status.CANCELLED ? null : e));
      s.on('end', () => resolve(null));
    } else {
      raw.makeUnaryRequest(p.path, same, same, Buffer.from(p.body), md, { deadline }, (e) => resolve(e));
    }
  });
  return `with hasleader, ${p.name}: ${err ? `code ${err.code} ${err.details}` : 'ok'}`;
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

async function session(target: TargetName, env?: Record<string, string>): Promise<string[]> {
  const out: string[] = [];
  const c = await startCluster({ target, size: 3, flags: ['--heartbeat-interval', '200', '--election-timeout', '2000'], ...(env ? { env } : {}) });
  clusters.push(c);
  const leader = await c.waitForLeader();
  const alone = (leader + 1) % 3;
  const others = [0, 1, 2].filter((i) => i !== alone);
  out.push(await outcome(c, alone, { kind: 'put', key: 'k', value: 'before' }));

  for (const i of others) c.pause(i);
  await untilLeaderless(c, alone);
  out.push(`without a leader, ${await outcome(c, alone, { kind: 'put', key: 'k', value: 'lost' })}`);
  out.push(`without a leader, ${await outcome(c, alone, { kind: 'get', key: 'k' })}`);
  for (const p of requireLeaderProbes) out.push(`without a leader, ${await requireLeaderOutcome(c, alone, p)}`);

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

const results = new Map<string, string[]>();
// Concord twice: its client API in this thread, and on its worker thread (CONCORD_API_THREAD=1),
// which must carry the `hasleader` metadata across to the main thread.
for (const { target, label, env } of targetsWithWorkerThreadApi()) {
  test(`${label}: a member without a leader holds requests until one is elected or etcd's request timeout`, { timeout: 240_000 }, async () => {
    const out = await session(target, env);
    console.log(out.map((l) => `# ${l}`).join('\n'));
    assert.deepEqual(out, [
      'put: ok {"kind":"put"}',
      'without a leader, put: code 2 context deadline exceeded',
      'without a leader, get: code 14 etcdserver: request timed out',
      ...requireLeaderProbes.map((p) => `without a leader, with hasleader, ${p.name}: code 14 etcdserver: no leader`),
      'sent without a leader, then the others resumed: put: ok {"kind":"put"}',
      'sent without a leader, then the others resumed: get: code 14 etcdserver: leader changed',
      'get: ok {"kind":"get","value":"waited"}',
    ]);
    results.set(label, out);
    for (const [otherLabel, other] of results) {
      if ((otherLabel === 'etcd') !== (label === 'etcd')) assert.deepEqual(out, other, `${label} and ${otherLabel} answer the same`);
    }
  });
}
