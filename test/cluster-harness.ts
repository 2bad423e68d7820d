// Multi-member cluster harness: N members (etcd, Concord, or a mix) on 127.0.0.1, each a real
// process with its own temp dir, bootstrapped with etcd's own flags, with per-member fault
// injection (kill -9, stop, SIGSTOP/SIGCONT, restart) and, with `proxy: true`, a loopback TCP
// proxy in front of every member's peer port (test/net-proxy.ts) so tests can cut, delay and
// heal peer links.
//
//   const c = await startCluster({ target: 'etcd', size: 3 });
//   try { const l = await c.waitForLeader(); await c.kill(l); ... } finally { await c.destroy(); }
//
// Members are test/harness.ts Servers (same process registry, logs, readiness probe, etcdctl and
// gRPC client), so everything a single-server test does works on c.members[i]. Readiness: a
// member is ready once it logged "ready to serve client requests" and answers /version; both
// need a quorum, so all members start at once. startCluster also waits for an agreed leader.
// c.addMember() makes a member to join the running cluster (`member add`, then start it with
// --initial-cluster-state existing). Peer TLS: `peerScheme: 'https'` plus the --peer-* flags.
//
// This is the one cluster harness: every multi-member test builds on it.

import { StatusRequest, StatusResponse, PutRequest, PutResponse } from '../src/proto/gen/etcdserverpb/rpc.js';
import { Server, freePort, sleep, etcdctl, prefixEnd, type TargetName, type EtcdClient, type CmdResult } from './harness.js';
import { PeerProxies, etcdMemberId } from './net-proxy.js';

export interface ClusterOptions {
  /** Every member's target (default 'etcd'); `targets` overrides it per member. */
  target?: TargetName;
  /** One target per member, for mixed clusters: ['concord', 'etcd', 'etcd']. Sets the size. */
  targets?: TargetName[];
  /** Number of members (default 3; ignored when `targets` is given). */
  size?: number;
  /** Extra flags for every member, e.g. ['--heartbeat-interval', '50', '--election-timeout', '500']. */
  flags?: string[];
  /** Advertise every peer URL through a PeerProxies proxy (cut/delay/heal links). Default false. */
  proxy?: boolean;
  /**
   * Per-member readiness timeout, also the wait for an agreed leader (default 60 s: a member
   * is ready only once a quorum is up, and a loaded 2-core machine starts Node slowly).
   */
  readyTimeoutMs?: number;
  /** Peer URL scheme (default http); https needs the --peer-* TLS flags in `flags`. */
  peerScheme?: 'http' | 'https';
  /** Environment added to every member's (e.g. CONCORD_API_THREAD=1; etcd ignores it). */
  env?: Record<string, string>;
  /** Node's own flags for every Concord member (e.g. ['--trace-gc']); etcd ignores them. */
  nodeArgs?: string[];
}

/** The peer URL a member listens on and the one the others dial (equal without a proxy). */
interface PeerPorts { listen: number; advertised: number }

/** A cluster member: a harness Server whose flags name the whole cluster. */
export class ClusterMember extends Server {
  /** The whole --initial-cluster value, set by the cluster before the first start. */
  initialCluster = '';
  clusterToken = '';
  advertisedPeerPort = 0;
  /** 'existing' for a member joining a running cluster (after `member add`). */
  clusterState: 'new' | 'existing' = 'new';
  peerScheme: 'http' | 'https' = 'http';
  /** True between pause() and resume(): the process exists but is SIGSTOPped. */
  paused = false;
  private grpc: EtcdClient | null = null;

  override get peerUrl(): string { return `${this.peerScheme}://127.0.0.1:${this.peerPort}`; }
  get advertisedPeerUrl(): string { return `${this.peerScheme}://127.0.0.1:${this.advertisedPeerPort}`; }

  /** The single-server flags with this cluster's peer URL and initial cluster in place. */
  override args(): string[] {
    const a = super.args();
    const set = (flag: string, value: string) => {
      const i = a.indexOf(flag);
      if (i < 0) throw new Error(`harness Server.args() lacks ${flag}`);
      a[i + 1] = value;
    };
    set('--initial-advertise-peer-urls', this.advertisedPeerUrl);
    set('--initial-cluster', this.initialCluster);
    return [...a, '--initial-cluster-token', this.clusterToken, '--initial-cluster-state', this.clusterState];
  }

  /**
   * Starts (or restarts) the process. The cached gRPC client is replaced around it: one used
   * while the member was down sits in grpc-js's reconnect backoff (up to minutes).
   */
  override async start(): Promise<void> {
    this.closeRpc();
    await super.start();
    this.closeRpc();
  }

  /** One cached gRPC client to this member (closed by the cluster's destroy()). */
  get rpc(): EtcdClient {
    this.grpc ??= this.client();
    return this.grpc;
  }

  closeRpc(): void { this.grpc?.close(); this.grpc = null; }

  /** SIGSTOP: the process freezes (no heartbeats, no replies) until resume(). */
  pause(): void {
    if (!this.running || this.paused) throw new Error(`pause(): ${this.name} is not running or already paused`);
    process.kill(this.pid!, 'SIGSTOP');
    this.paused = true;
  }

  /** SIGCONT after pause(). */
  resume(): void {
    if (!this.paused) return;
    if (this.running) process.kill(this.pid!, 'SIGCONT');
    this.paused = false;
  }

  /** kill -9 (works on a paused process too). */
  override async kill(): Promise<void> {
    await super.kill();
    this.paused = false;
  }

  /** SIGTERM (after SIGCONT if paused: a stopped process would not see it), SIGKILL after boundMs. */
  override async stop(boundMs?: number) {
    this.resume();
    return super.stop(boundMs);
  }
}

export class Cluster {
  constructor(readonly members: ClusterMember[], readonly net: PeerProxies | null, private readonly opts: ClusterOptions = {}) {}

  get size(): number { return this.members.length; }
  /** Client URLs of all members, in member order. */
  endpoints(): string[] { return this.members.map((m) => m.endpoint); }
  endpoint(i: number): string { return this.member(i).endpoint; }
  member(i: number): ClusterMember {
    const m = this.members[i];
    if (!m) throw new Error(`no member ${i} (cluster of ${this.size})`);
    return m;
  }
  /** Members whose process runs and is not paused: the ones that can answer. */
  live(): number[] { return this.members.flatMap((m, i) => (m.running && !m.paused ? [i] : [])); }
  /** Members whose process runs. */
  running(): ClusterMember[] { return this.members.filter((m) => m.running); }

  /** Real etcdctl against every running member (--endpoints of all of them). */
  ctl(args: string[], opts: { timeoutMs?: number } = {}): Promise<CmdResult> {
    return etcdctl(this.running().map((m) => m.endpoint).join(','), args, opts);
  }

  /**
   * A new member for this cluster, not started: `member add` it (its advertisedPeerUrl), then
   * start() it; it joins with --initial-cluster-state existing. Added to `members` (destroy()
   * cleans it up); remove it from there once it has left the cluster.
   */
  async addMember(target: TargetName, name: string): Promise<ClusterMember> {
    const m = new ClusterMember({ target, name, extraArgs: this.opts.flags ?? [], readyTimeoutMs: this.opts.readyTimeoutMs ?? defaultReadyTimeoutMs, ...(this.opts.env ? { env: this.opts.env } : {}), ...(this.opts.nodeArgs ? { nodeArgs: this.opts.nodeArgs } : {}) });
    m.peerScheme = this.opts.peerScheme ?? 'http';
    const taken = new Set(this.members.flatMap((x) => [x.clientPort, x.peerPort, x.advertisedPeerPort]));
    for (const set of [(p: number) => { m.clientPort = p; }, (p: number) => { m.peerPort = p; m.advertisedPeerPort = p; }]) {
      let p = await freePort();
      while (taken.has(p)) p = await freePort();
      taken.add(p);
      set(p);
    }
    m.clusterToken = this.members[0]?.clusterToken ?? '';
    m.clusterState = 'existing';
    m.initialCluster = [...this.running(), m].map((x) => `${x.name}=${x.advertisedPeerUrl}`).join(',');
    this.members.push(m);
    return m;
  }

  kill(i: number): Promise<void> { return this.member(i).kill(); }
  stop(i: number) { return this.member(i).stop(); }
  pause(i: number): void { this.member(i).pause(); }
  resume(i: number): void { this.member(i).resume(); }
  /**
   * Start a stopped or killed member again on its data dir and ports; waits until it is ready.
   * The member's cached gRPC client is replaced once it is ready: one used while it was down
   * sits in grpc-js's reconnect backoff (up to minutes) and fails calls at once meanwhile.
   */
  restart(i: number): Promise<void> {
    return this.member(i).restart();
  }

  /** Each live member's Status (undefined where it did not answer within timeoutMs). */
  async statuses(timeoutMs = 2000): Promise<(StatusResponse | undefined)[]> {
    return Promise.all(this.members.map(async (m) => {
      if (!m.running || m.paused) return undefined;
      try {
        return await m.rpc.unary('/etcdserverpb.Maintenance/Status', StatusRequest, StatusResponse, {}, timeoutMs);
      } catch { return undefined; }
    }));
  }

  /**
   * The index of the leader every answering live member agrees on, or -1 (no answer, no leader,
   * disagreement, or a leader that is not a live member: e.g. one just paused).
   */
  async leaderIndex(timeoutMs = 2000): Promise<number> {
    const st = await this.statuses(timeoutMs);
    const answered = st.filter((s): s is StatusResponse => s !== undefined);
    if (answered.length === 0) return -1;
    const leader = answered[0]!.leader;
    if (leader === 0n || answered.some((s) => s.leader !== leader)) return -1;
    const idx = st.findIndex((s) => s?.header?.memberId === leader);
    return idx;
  }

  /** Polls leaderIndex() until it is >= 0; throws after timeoutMs. */
  async waitForLeader(timeoutMs = 30_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = await this.leaderIndex();
      if (i >= 0) return i;
      if (Date.now() > deadline) throw new Error(`no agreed leader within ${timeoutMs} ms`);
      await sleep(100);
    }
  }

  /** The leader member every answering live member agrees on (waits for one; throws after timeoutMs). */
  async leader(timeoutMs = 30_000): Promise<ClusterMember> {
    return this.member(await this.waitForLeader(timeoutMs));
  }

  /** HashKV of every running member at one revision (each member's current one by default). */
  async hashes(revision = 0): Promise<Array<{ name: string; hash: number; revision: number }>> {
    return Promise.all(this.running().map(async (m) => {
      const h = await m.rpc.hashKV(revision);
      return { name: m.name, hash: h.hash, revision: h.header!.revision };
    }));
  }

  /** Runs fn with a fresh client to each running member, closing them after. */
  async withClients<T>(fn: (clients: Array<{ member: ClusterMember; client: EtcdClient }>) => Promise<T>): Promise<T> {
    const clients = this.running().map((member) => ({ member, client: member.client() }));
    try {
      return await fn(clients);
    } finally {
      for (const c of clients) c.client.close();
    }
  }

  /** Kill every member (by pid), close the proxies and clients, remove the temp dirs. */
  async destroy(): Promise<void> {
    for (const m of this.members) m.closeRpc();
    await Promise.all(this.members.map((m) => m.destroy()));
    await this.net?.close();
  }
}

/** Free ports for every member's client and peer listeners (and the proxies'), all distinct. */
async function pickPorts(n: number, proxy: boolean): Promise<{ client: number; peer: PeerPorts }[]> {
  const taken = new Set<number>();
  const one = async (): Promise<number> => {
    for (;;) { const p = await freePort(); if (!taken.has(p)) { taken.add(p); return p; } }
  };
  const out: { client: number; peer: PeerPorts }[] = [];
  for (let i = 0; i < n; i++) {
    const client = await one();
    const listen = await one();
    out.push({ client, peer: { listen, advertised: proxy ? await one() : listen } });
  }
  return out;
}

let clusterSeq = 0;
const defaultReadyTimeoutMs = 60_000;

async function tryStartCluster(opts: ClusterOptions, targets: TargetName[]): Promise<Cluster> {
  const ports = await pickPorts(targets.length, !!opts.proxy);
  const token = `concord-test-${process.pid}-${++clusterSeq}`;
  const members = targets.map((target, i) => {
    const m = new ClusterMember({ target, name: `m${i}`, extraArgs: opts.flags ?? [], readyTimeoutMs: opts.readyTimeoutMs ?? defaultReadyTimeoutMs, ...(opts.env ? { env: opts.env } : {}), ...(opts.nodeArgs ? { nodeArgs: opts.nodeArgs } : {}) });
    m.peerScheme = opts.peerScheme ?? 'http';
    m.clientPort = ports[i]!.client;
    m.peerPort = ports[i]!.peer.listen;
    m.advertisedPeerPort = ports[i]!.peer.advertised;
    m.clusterToken = token;
    return m;
  });
  const initialCluster = members.map((m) => `${m.name}=${m.advertisedPeerUrl}`).join(',');
  for (const m of members) m.initialCluster = initialCluster;
  let net: PeerProxies | null = null;
  const cluster = () => new Cluster(members, net, opts);
  try {
    if (opts.proxy) {
      net = await PeerProxies.start(members.map((m) => ({
        name: m.name, listenPort: m.advertisedPeerPort, targetPort: m.peerPort, id: etcdMemberId([m.advertisedPeerUrl], token),
      })));
    }
    const started = await Promise.allSettled(members.map((m) => m.start()));
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    const c = cluster();
    await c.waitForLeader(opts.readyTimeoutMs ?? defaultReadyTimeoutMs);
    return c;
  } catch (e) {
    await cluster().destroy();
    throw e;
  }
}

/**
 * Start a cluster and wait until every member is ready and they agree on a leader. The caller
 * destroys it (in after()/finally). A start that lost a port race is retried on fresh ports.
 */
export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  const targets = opts.targets ?? Array.from({ length: opts.size ?? 3 }, () => opts.target ?? 'etcd');
  if (targets.length === 0) throw new Error('startCluster: no members');
  for (let attempt = 0; ; attempt++) {
    try {
      return await tryStartCluster(opts, targets);
    } catch (e) {
      if (attempt < 2 && /address already in use|EADDRINUSE/i.test(String(e))) continue;
      throw e;
    }
  }
}

/**
 * A steady writer: puts `<prefix><n>` through the running members in turn (whichever run at
 * that moment: members joining and leaving are picked up) until stop(), recording the keys
 * acknowledged. A put that fails (member down, removed, no leader) is not recorded.
 */
export function startWriter(c: Cluster, prefix: string, putTimeoutMs = 3000): { acked: string[]; stop(): Promise<void> } {
  const acked: string[] = [];
  let stopped = false;
  const done = (async () => {
    for (let n = 0; !stopped; n++) {
      const alive = c.running().filter((m) => !m.paused);
      if (alive.length === 0) { await sleep(50); continue; }
      const m = alive[n % alive.length]!;
      const key = `${prefix}${String(n).padStart(6, '0')}`;
      try {
        await m.rpc.unary('/etcdserverpb.KV/Put', PutRequest, PutResponse, PutRequest.fromPartial({ key: Buffer.from(key), value: Buffer.from(`value of ${key}`) }), putTimeoutMs);
        acked.push(key);
      } catch {
        await sleep(20);
      }
    }
  })();
  return { acked, stop: async () => { stopped = true; await done; } };
}

/** Of `keys` (all under `prefix`), those each running member lacks, by member name (linearizable reads). */
export async function missingKeys(c: Cluster, prefix: string, keys: readonly string[]): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const m of c.running()) {
    const r = await m.rpc.range({ key: Buffer.from(prefix), rangeEnd: prefixEnd(prefix), keysOnly: true });
    const have = new Set(r.kvs.map((kv) => Buffer.from(kv.key).toString()));
    out[m.name] = keys.filter((k) => !have.has(k));
  }
  return out;
}

/** HashKV of every running member at the lowest current revision among them (all have applied it). */
export async function hashesAtCommonRevision(c: Cluster): Promise<{ revision: number; hashes: Array<{ name: string; hash: number }> }> {
  const revision = Math.min(...(await c.hashes()).map((h) => h.revision));
  const hashes = (await c.hashes(revision)).map(({ name, hash }) => ({ name, hash }));
  return { revision, hashes };
}
