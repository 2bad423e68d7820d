/**
 * A cluster for membership scenarios: every member is the server's real Ready loop
 * (RaftNode) over in-memory ports, the real Applier over MVCC on its own LMDB file, and the
 * real ClusterService (guards, conf changes, auto-promotion) on top. Members can be added at
 * run time, as an operator starts a new etcd with `--initial-cluster-state existing`: an
 * empty log and no membership, filled by the leader's appends from index 1.
 *
 * Every member counts as connected to every other for HealthInterval (the network is
 * perfect here), so the strict-reconfig guards decide on started members and raft progress.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ClusterService, MemoryNetwork, MemorySnapshotter, MemoryWal, RaftNode,
  attributesToJson, encodeRaftRequest, memberAttributesPath, memberToJson, testApplier,
  type Membership, type WaitRegistry,
} from '../server/index.js';
import { MemoryStorage } from '../raft/index.js';
import { Backend } from '../storage/index.js';
import { MvccStore } from '../mvcc/index.js';
import { nopLogger } from '../log/index.js';
import { rng } from '../testkit/index.js';
import { ConfChangeType, EntryType, PutRequest, ResponseHeader, encodeConfChange, type Entry, type NodeId } from '../proto/index.js';

/** Wall clock the services see: fixed per run, so added members' ids replay with the seed. */
const epochMs = 1_700_000_000_000;
/** Bound on any wait for the cluster (loop turns). */
const maxTurns = 20_000;

export interface LifecycleMember {
  readonly id: NodeId;
  readonly raft: RaftNode;
  readonly store: MvccStore;
  readonly membership: Membership;
  readonly waits: WaitRegistry;
  readonly cluster: ClusterService;
  /** Set when the applier removed this member (the server would stop a second later). */
  removed: boolean;
  stopped: boolean;
}

export interface LifecycleOptions {
  seed: number;
  voters: number;
  autoPromoteLearners: boolean;
}

export class LifecycleCluster {
  readonly members = new Map<NodeId, LifecycleMember>();
  private readonly net = new MemoryNetwork();
  private readonly dir = mkdtempSync(join(tmpdir(), 'concord-lifecycle-'));
  private readonly random: () => number;
  private clockMs = epochMs;
  private requestSeq = 0n;

  constructor(private readonly o: LifecycleOptions) {
    this.random = rng(o.seed);
  }

  /** Starts `voters` members bootstrapped as etcd does (named, so started) and waits for a leader. */
  async start(): Promise<void> {
    const ids = Array.from({ length: this.o.voters }, (_, i) => BigInt(i + 1));
    const boot: Entry[] = ids.map((id, i) => ({
      term: 1, index: i + 1, type: EntryType.EntryConfChange,
      data: encodeConfChange({
        type: ConfChangeType.ConfChangeAddNode, nodeId: id, id: 0n,
        context: Buffer.from(memberToJson({ id, name: `m${id}`, peerURLs: [peerUrl(id)], clientURLs: [], isLearner: false })),
      }),
    }));
    for (const id of ids) this.startMember(id, boot);
    await this.until(() => this.leader() !== undefined && this.live().every((m) => m.raft.leader === this.leader()!.id), 'a leader all follow');
  }

  /** A new member with an empty log (etcd's --initial-cluster-state existing), publishing its name once it can. */
  join(id: NodeId): LifecycleMember {
    const m = this.startMember(id, []);
    return m;
  }

  live(): LifecycleMember[] {
    return [...this.members.values()].filter((m) => !m.stopped);
  }

  leader(): LifecycleMember | undefined {
    return this.live().find((m) => m.raft.isLeader);
  }

  /** Proposes `count` puts through the leader (not waited for one by one). */
  writes(count: number): void {
    const leader = this.leader();
    if (!leader) return;
    for (let i = 0; i < count; i++) {
      const key = `k${Math.floor(this.random() * 50)}`;
      leader.raft.propose(encodeRaftRequest(this.nextRequestId(leader.id), { kind: 'put', req: PutRequest.fromPartial({ key: Buffer.from(key), value: Buffer.from(String(this.random())) }) }));
    }
  }

  /** Publishes a member's name through raft, as a started etcd does (etcd's IsStarted). */
  publish(m: LifecycleMember): void {
    const req = { ID: 0n, Method: 'PUT', Path: memberAttributesPath(m.id), Val: attributesToJson(`m${m.id}`, []) };
    try {
      m.raft.propose(encodeRaftRequest(this.nextRequestId(m.id), { kind: 'v2', req }));
    } catch {
      // No leader known yet: the caller publishes again.
    }
  }

  /**
   * Runs the cluster until `cond` holds: every turn ticks every live member, runs the
   * auto-promoter where enabled, and lets the loops and the network run.
   */
  async until(cond: () => boolean, what: string): Promise<void> {
    for (let i = 0; i < maxTurns && !cond(); i++) {
      this.clockMs += 10;
      for (const m of this.live()) {
        m.raft.tick();
        if (this.o.autoPromoteLearners) m.cluster.maybeAutoPromote();
        // A removed member stops (etcd: a second after applying its removal).
        if (m.removed) await this.stop(m);
      }
      for (let j = 0; j < 5; j++) await new Promise((r) => setImmediate(r));
    }
    if (!cond()) throw new Error(`lifecycle (seed ${this.o.seed}): never happened: ${what}\n${this.describe()}`);
  }

  /** Every live member's store hash, members and learners, for failure messages. */
  describe(): string {
    return this.live().map((m) => `${m.id}: leader=${m.raft.leader} applied=${m.raft.appliedIndex} last=${m.raft.inspect().log.lastIndex()} pendingConf=${m.raft.inspect().pendingConfIndex} members=${m.membership.list().map((x) => `${x.id}${x.isLearner ? 'L' : ''}${x.name ? '' : '?'}`).join(',')}`).join('\n');
  }

  async close(): Promise<void> {
    for (const m of this.members.values()) await this.stop(m);
    for (const m of this.members.values()) await m.store.close();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async stop(m: LifecycleMember): Promise<void> {
    if (m.stopped) return;
    m.stopped = true;
    await m.raft.stop();
  }

  private nextRequestId(member: NodeId): bigint {
    return ((member & 0xffffn) << 48n) | ++this.requestSeq;
  }

  private startMember(id: NodeId, log: Entry[]): LifecycleMember {
    const backend = Backend.open({ path: join(this.dir, `${id}.lmdb`) });
    const store = MvccStore.open({ backend });
    let self: LifecycleMember | undefined;
    const { applier, membership, waits } = testApplier(id, store, 1000, undefined, () => { self!.removed = true; });
    const storage = new MemoryStorage();
    if (log.length > 0) {
      storage.setHardState({ term: 1, vote: 0n, commit: log.length });
      storage.append(log);
    }
    const raft = new RaftNode({
      id, storage, applied: 0, electionTick: 10, heartbeatTick: 1, random: this.random,
      wal: new MemoryWal(), snapshotter: new MemorySnapshotter(), transport: this.net.transport(id),
      applier, events: {}, log: nopLogger(),
    });
    const cluster = new ClusterService({
      memberId: id, membership, raft, waits,
      nextRequestId: () => this.nextRequestId(id),
      peers: { activeSince: (peer) => (this.members.get(peer)?.stopped === false ? epochMs - 60_000 : undefined) },
      strictReconfigCheck: true, requestTimeoutMs: 60_000,
      header: () => ResponseHeader.fromPartial({ memberId: id, revision: store.currentRevision, raftTerm: raft.term }),
      log: nopLogger(), now: () => this.clockMs,
    });
    self = { id, raft, store, membership, waits, cluster, removed: false, stopped: false };
    this.members.set(id, self);
    this.net.join(id, { step: (msg) => { if (!self!.stopped) raft.step(msg); } });
    raft.start();
    return self;
  }
}

/** The peer URL of member `id` (no listener: the network is in memory). */
export function peerUrl(id: NodeId): string {
  return `http://127.0.0.1:${(Number(id % 60000n)) + 1024}`;
}

/** Runs the cluster until `p` settles; its value, or its rejection rethrown. */
export async function settle<T>(c: LifecycleCluster, p: Promise<T>, what: string): Promise<T> {
  let outcome: { ok: true; value: T } | { ok: false; error: unknown } | undefined;
  p.then((value) => { outcome = { ok: true, value }; }, (error: unknown) => { outcome = { ok: false, error }; });
  await c.until(() => outcome !== undefined, what);
  if (!outcome!.ok) throw outcome!.error;
  return outcome!.value;
}
