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
import { AuthStore } from '../auth/index.js';
import { nopLogger } from '../log/index.js';
import { ConfChangeType, EntryType, encodeConfChange, type Entry } from '../proto/index.js';
import type { ServerConfig } from './config.js';
import { Applier } from './applier.js';
import { AlarmSet } from './alarms.js';
import { EtcdServer } from './etcd-server.js';
import { Membership, memberToJson } from './membership.js';
import { MemorySnapshotter, MemoryWal } from './memory-ports.js';
import { RaftNode } from './raft-node.js';
import { WaitRegistry, type WaitLimits } from './wait.js';

export interface TestMember {
  server: EtcdServer;
  raft: RaftNode;
  applier: Applier;
  store: MvccStore;
  wal: MemoryWal;
  waits: WaitRegistry;
  /** Stops everything and removes the temporary directory. */
  close(): Promise<void>;
}

const memberId = 0x8e9e05c52164694dn;
const clusterId = 0xcdf818194e3a8c32n;

export const testConfig = {
  maxTxnOps: 128, maxRequestBytes: 1572864, electionTimeoutMs: 1000, heartbeatIntervalMs: 100,
} as ServerConfig;

/** A lone member, leader of its cluster once started (its log holds the bootstrap entry). */
export async function startTestMember(o: { limits?: Partial<WaitLimits>; maxPendingReads?: number } = {}): Promise<TestMember> {
  const dir = mkdtempSync(join(tmpdir(), 'concord-server-'));
  const backend = Backend.open({ path: join(dir, 'concord.lmdb') });
  const store = MvccStore.open({ backend });
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
    server: started, raft, applier, store, wal, waits,
    async close() {
      started.stop();
      wal.release();
      await raft.stop();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
