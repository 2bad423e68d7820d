/**
 * For tests: one member in-process, wired as member.ts wires it but over the in-memory WAL,
 * snapshotter and transport, with a real MVCC store on a temporary LMDB backend.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryStorage } from '../raft/index.js';
import { Backend } from '../storage/index.js';
import { MvccStore } from '../mvcc/index.js';
import { Lessor, type LessorOptions } from '../lease/index.js';
import { AuthStore } from '../auth/index.js';
import { nopLogger } from '../log/index.js';
import { ConfChangeType, EntryType, ResponseHeader, encodeConfChange, type Entry, type NodeId } from '../proto/index.js';
import type { ServerConfig } from './config.js';
import { Applier } from './applier.js';
import { AlarmSet } from './alarms.js';
import { EtcdServer } from './etcd-server.js';
import { Membership, memberToJson, type Member } from './membership.js';
import { MemoryNetwork, MemorySnapshotter, MemoryWal } from './memory-ports.js';
import { RaftNode } from './raft-node.js';
import { WaitRegistry, type WaitLimits } from './wait.js';

export interface TestMember {
  server: EtcdServer;
  lessor: Lessor;
  raft: RaftNode;
  applier: Applier;
  store: MvccStore;
  wal: MemoryWal;
  waits: WaitRegistry;
  /** The member's auth store (the applier's). */
  auth: AuthStore;
  /** Stops everything and removes the temporary directory. */
  close(): Promise<void>;
}

const memberId = 0x8e9e05c52164694dn;
const clusterId = 0xcdf818194e3a8c32n;

export const testConfig = {
  maxTxnOps: 128, maxRequestBytes: 1572864, electionTimeoutMs: 1000, heartbeatIntervalMs: 100,
} as ServerConfig;

/** A lone member, leader of its cluster once started (its log holds the bootstrap entry). */
export async function startTestMember(o: { limits?: Partial<WaitLimits>; maxPendingReads?: number; clock?: () => number; lessor?: Partial<LessorOptions> } = {}): Promise<TestMember> {
  const dir = mkdtempSync(join(tmpdir(), 'concord-server-'));
  const backend = Backend.open({ path: join(dir, 'concord.lmdb') });
  const lessor = new Lessor({ backend, minTtlSeconds: 2, expiredRetryMs: 7000, ...o.lessor });
  const store = MvccStore.open({ backend, leaseExists: (id) => lessor.has(id), onKeyLease: (k, l) => lessor.attachKey(k, l) });
  const log = nopLogger();
  const auth = new AuthStore({ backend, log, tokenTtlMs: 300_000 });
  const membership = new Membership(clusterId, []);
  const alarms = new AlarmSet([]);
  const storage = new MemoryStorage();
  const boot: Entry = {
    term: 1, index: 1, type: EntryType.EntryConfChange,
    data: encodeConfChange({
      type: ConfChangeType.ConfChangeAddNode, nodeId: memberId, id: 0n,
      context: Buffer.from(memberToJson({ id: memberId, name: '', peerURLs: ['http://127.0.0.1:2380'], clientURLs: [], isLearner: false })),
    }),
  };
  storage.setHardState({ term: 1, vote: 0n, commit: 1 });
  storage.append([boot]);
  const waits = new WaitRegistry({ maxProposalsInFlight: 1000, maxProposalBytesInFlight: 1 << 20, ...o.limits });
  let server: EtcdServer | undefined;
  const applier = new Applier({
    memberId, membership, store, alarms, waits, log,
    header: () => server!.header(),
    persistAlarms: () => undefined, persistMembership: () => undefined, persistClusterVersion: () => undefined,
    clusterVersion: undefined, auth,
    lessor, clock: o.clock ?? (() => performance.now()),
    holdingReads: (work) => server!.holdingReads(work),
  });
  const wal = new MemoryWal();
  const raft = new RaftNode({
    id: memberId, storage, applied: 0, electionTick: 10, heartbeatTick: 1, random: () => 0.5,
    wal, snapshotter: new MemorySnapshotter(),
    transport: { send: () => undefined, sendSnapshot: () => undefined },
    applier, log,
    events: {
      leaderChanged: (leader, _isLeader, previous) => server?.onLeaderChanged(leader, previous),
      readState: (ctx, index) => server?.onReadState(ctx, index),
    },
  });
  server = new EtcdServer({
    config: testConfig, log, memberId, membership, store, alarms, quotaBytes: 1 << 30,
    raft, applier, waits, auth, ...(o.maxPendingReads !== undefined ? { maxPendingReads: o.maxPendingReads } : {}),
  });
  raft.start();
  await raft.drained();
  raft.campaignAsSoleVoter();
  while (!(raft.isLeader && raft.appliedTerm === raft.term)) await new Promise((r) => setImmediate(r));
  const started = server;
  return {
    server: started, lessor, raft, applier, store, wal, waits, auth,
    async close() {
      started.stop();
      wal.release();
      await raft.stop();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A member of an in-process cluster: the real loop and applier over a temporary LMDB. */
export interface ClusterTestMember {
  id: NodeId;
  raft: RaftNode;
  membership: Membership;
  waits: WaitRegistry;
}

export interface TestCluster {
  members: ClusterTestMember[];
  /** The one leader, once every member follows it. */
  leader(): ClusterTestMember;
  /** Ticks the leader until `cond` holds (bounded). */
  until(cond: () => boolean, what: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * The server's real applier for member `id` over `store`, wired as member.ts wires it but
 * with nothing kept outside the store (membership, alarms and cluster version in memory).
 * Response headers carry the store's revision.
 */
export function testApplier(
  id: NodeId, store: MvccStore, maxProposalsInFlight: number,
  lessor = new Lessor({ backend: store.backend, minTtlSeconds: 2, expiredRetryMs: 7000 }),
  onRemovedSelf?: () => void,
): { applier: Applier; membership: Membership; waits: WaitRegistry } {
  const membership = new Membership(clusterId, []);
  const waits = new WaitRegistry({ maxProposalsInFlight, maxProposalBytesInFlight: 1 << 20 });
  const applier = new Applier({
    memberId: id, membership, store, alarms: new AlarmSet([]), waits, log: nopLogger(),
    header: () => ResponseHeader.fromPartial({ revision: store.currentRevision }),
    persistAlarms: () => undefined, persistMembership: () => undefined, persistClusterVersion: () => undefined,
    clusterVersion: undefined, lessor, clock: () => performance.now(),
    auth: new AuthStore({ backend: store.backend, log: nopLogger(), tokenTtlMs: 300_000 }),
    holdingReads: (work) => work(), // no client reads here
    ...(onRemovedSelf ? { onRemovedSelf } : {}),
  });
  return { applier, membership, waits };
}

/** The member etcd would record for id `id` (peer URL http://127.0.0.1:<2380+id>). */
export function testMemberOf(id: NodeId, isLearner = false): Member {
  return { id, name: '', peerURLs: [`http://127.0.0.1:${2380 + Number(id)}`], clientURLs: [], isLearner };
}

/**
 * `size` members (ids 1..size) bootstrapped as etcd does (AddNode entries with the members'
 * JSON, committed at term 1), over the in-memory network and WALs, with a leader elected.
 */
export async function startTestCluster(size: number): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'concord-cluster-'));
  const net = new MemoryNetwork();
  const ids = Array.from({ length: size }, (_, i) => BigInt(i + 1));
  const boot: Entry[] = ids.map((id, i) => ({
    term: 1, index: i + 1, type: EntryType.EntryConfChange,
    data: encodeConfChange({ type: ConfChangeType.ConfChangeAddNode, nodeId: id, id: 0n, context: Buffer.from(memberToJson(testMemberOf(id))) }),
  }));
  const stores: MvccStore[] = [];
  const members = ids.map((id, i): ClusterTestMember => {
    const backend = Backend.open({ path: join(dir, `${id}.lmdb`) });
    const lessor = new Lessor({ backend, minTtlSeconds: 2, expiredRetryMs: 7000 });
    const store = MvccStore.open({ backend, leaseExists: (l) => lessor.has(l), onKeyLease: (k, l) => lessor.attachKey(k, l) });
    stores.push(store);
    const storage = new MemoryStorage();
    storage.setHardState({ term: 1, vote: 0n, commit: boot.length });
    storage.append(boot);
    const { applier, membership, waits } = testApplier(id, store, 100, lessor);
    let seed = i + 1;
    const raft = new RaftNode({
      id, storage, applied: 0, electionTick: 10, heartbeatTick: 1,
      random: () => ((seed = (seed * 48271) % 2147483647) / 2147483647),
      wal: new MemoryWal(), snapshotter: new MemorySnapshotter(), transport: net.transport(id),
      applier, events: {}, log: nopLogger(),
    });
    net.join(id, raft);
    return { id, raft, membership, waits };
  });
  for (const m of members) m.raft.start();
  const tickUntil = async (cond: () => boolean, tick: () => void, what: string): Promise<void> => {
    for (let i = 0; i < 2000 && !cond(); i++) {
      tick();
      await new Promise((r) => setImmediate(r));
    }
    if (!cond()) throw new Error(`test cluster: never happened: ${what}`);
  };
  await tickUntil(() => members.some((m) => m.raft.isLeader), () => members.forEach((m) => m.raft.tick()), 'a leader');
  const leader = (): ClusterTestMember => members.find((m) => m.raft.isLeader)!;
  await tickUntil(() => members.every((m) => m.raft.leader === leader().id && m.raft.appliedIndex === leader().raft.commitIndex), () => leader().raft.tick(), 'all follow the leader');
  return {
    members, leader,
    until: (cond, what) => tickUntil(cond, () => leader().raft.tick(), what),
    async close() {
      await Promise.all(members.map((m) => m.raft.stop()));
      for (const s of stores) await s.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
