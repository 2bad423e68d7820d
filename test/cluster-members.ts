// A cluster of real processes on loopback for the cluster tests: N members, each etcd or
// Concord, started together with the same etcd flags (--initial-cluster naming all of them).
// Built on test/harness.ts's Server (ports, process tracking, readiness, clean-up by pid).
// (h-linz's test/cluster-harness.ts was not on main when this was written.)
import { Server, freePort, sleep, etcdctl, type TargetName, type CmdResult, EtcdClient } from './harness.js';

/** One member whose --initial-cluster names the whole cluster. */
export class ClusterMember extends Server {
  initialCluster = '';
  clusterState: 'new' | 'existing' = 'new';
  /** https: the peer URLs need the --peer-* TLS flags in extraArgs. */
  peerScheme: 'http' | 'https' = 'http';

  override get peerUrl(): string { return `${this.peerScheme}://127.0.0.1:${this.peerPort}`; }

  override args(): string[] {
    return [
      ...super.args().filter((_, i, a) => a[i] !== '--initial-cluster' && a[i - 1] !== '--initial-cluster'),
      '--initial-cluster', this.initialCluster,
      '--initial-cluster-state', this.clusterState,
      '--initial-cluster-token', 'cluster-test',
    ];
  }
}

export class Cluster {
  constructor(readonly members: ClusterMember[]) {}

  /** Every member's client URL, comma-separated (etcdctl --endpoints). */
  get endpoints(): string {
    return this.members.filter((m) => m.running).map((m) => m.endpoint).join(',');
  }

  running(): ClusterMember[] {
    return this.members.filter((m) => m.running);
  }

  /** etcdctl against every running member. */
  ctl(args: string[], opts: { timeoutMs?: number } = {}): Promise<CmdResult> {
    return etcdctl(this.endpoints, args, opts);
  }

  /** The member every running member names as leader (waits until they agree). */
  async leader(timeoutMs = 15_000): Promise<ClusterMember> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const ids = await Promise.all(this.running().map(async (m) => {
        const c = m.client();
        try {
          const s = await c.status();
          return { member: m, id: s.header!.memberId, leader: s.leader };
        } catch {
          return undefined;
        } finally {
          c.close();
        }
      }));
      const known = ids.filter((x) => x !== undefined);
      const leaders = new Set(known.map((x) => x.leader));
      const self = known.find((x) => x.id === x.leader);
      if (known.length === this.running().length && leaders.size === 1 && self && self.leader !== 0n) return self.member;
      if (Date.now() > deadline) throw new Error(`no agreed leader after ${timeoutMs} ms: ${JSON.stringify(known.map((x) => [x.member.name, x.id.toString(16), x.leader.toString(16)]))}`);
      await sleep(100);
    }
  }

  /** HashKV of every running member at one revision (the cluster's current one by default). */
  async hashes(revision = 0): Promise<Array<{ name: string; hash: number; revision: number }>> {
    return Promise.all(this.running().map(async (m) => {
      const c = m.client();
      try {
        const h = await c.hashKV(revision);
        return { name: m.name, hash: h.hash, revision: h.header!.revision };
      } finally {
        c.close();
      }
    }));
  }

  /** Runs fn with a client to each running member, closing them after. */
  async withClients<T>(fn: (clients: Array<{ member: ClusterMember; client: EtcdClient }>) => Promise<T>): Promise<T> {
    const clients = this.running().map((member) => ({ member, client: member.client() }));
    try {
      return await fn(clients);
    } finally {
      for (const c of clients) c.client.close();
    }
  }

  async destroy(): Promise<void> {
    await Promise.all(this.members.map((m) => m.destroy()));
  }
}

/**
 * Starts one member per entry of `kinds` (etcd or concord) as one new cluster, all at once
 * (none is ready before a quorum is up), and waits for them all to serve.
 */
export async function startCluster(kinds: readonly TargetName[], extraArgs: string[] = [], peerScheme: 'http' | 'https' = 'http'): Promise<Cluster> {
  const members = kinds.map((target, i) => new ClusterMember({ target, name: `m${i}-${target}`, extraArgs, readyTimeoutMs: 60_000 }));
  for (const m of members) m.peerScheme = peerScheme;
  const cluster = new Cluster(members);
  try {
    for (const m of members) {
      m.clientPort = await freePort();
      m.peerPort = await freePort();
    }
    const initial = members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
    for (const m of members) m.initialCluster = initial;
    await Promise.all(members.map((m) => m.start()));
  } catch (e) {
    await cluster.destroy();
    throw e;
  }
  return cluster;
}
