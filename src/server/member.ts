/**
 * One member, started from its data dir: bootstrap or restart, the backend and MVCC store,
 * the applier, the raft loop (RaftNode) and the EtcdServer the API calls. The client API
 * is not started here: the composition root (cli/start-server.ts) wires it on top.
 *
 * Bootstrap and restart are one path: a new member first writes a WAL holding etcd's
 * bootstrap entries (one AddNode conf change per initial member, committed at term 1), then
 * starts exactly as a restarting member does, by replaying its WAL.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { MemoryStorage } from '../raft/index.js';
import { Wal, Snapshotter, validSnapshotEntries } from '../wal/index.js';
import { WatchableStore, storedConsistentIndex, type MvccStore } from '../mvcc/index.js';
import { Backend, backendPath } from '../storage/index.js';
import { Lessor, defaultCheckpointIntervalMs } from '../lease/index.js';
import { AuthStore, newTokenProvider } from '../auth/index.js';
import type { Logger } from '../log/index.js';
import { formatDuration } from '../log/index.js';
import {
  ConfChangeType, EntryType, encodeConfChange, Metadata, type AlarmMember,
  type Entry, type HardState, type Snapshot,
} from '../proto/index.js';
import type { ServerConfig } from './config.js';
import { defaultQuotaBackendBytes, defaultWatchProgressNotifyIntervalMs } from './config.js';
import { bootstrapIdentity, checkBackendMatchesSnapshot } from './bootstrap.js';
import { Membership, memberToJson, idToHex, type Member } from './membership.js';
import { joinIdentity } from './join.js';
import { AlarmSet } from './alarms.js';
import { membersKey, alarmsKey, alarmsRecord, alarmsOfRecord } from './member-records.js';
import { EtcdServer, serverVersion } from './etcd-server.js';
import { Applier } from './applier.js';
import { RaftNode } from './raft-node.js';
import { WaitRegistry } from './wait.js';
import { bindMemberMetrics, timedWal } from './metrics.js';
import { SnapshotPolicy } from './snapshot-policy.js';
import { PeerNetwork, type PeerTls } from './peers.js';
import { urlString } from './ids.js';
import { LeaseExpiry, minLeaseTtlSeconds, rootWhileAuthOn } from './lease-expiry.js';
import { LeaseHost } from './lease-host.js';
import { LeaseForwarder } from './lease-forward.js';
import { PromoteForwarder } from './promote-forward.js';
import { mergedSnapshot, saveSnapshotDb } from './snapshot-db.js';
import { adoptEtcdDataDir } from './etcd-data-dir.js';
import { recoverSnapshotBackend } from './snapshot-install.js';
import { membershipOfSnapshotData } from './v2-store.js';
import { standaloneLog, logForcedRestart } from './force-new-cluster.js';
import { checkInitialHashKV, CorruptionMonitor } from './corrupt-check.js';

/** As etcd 3.5 keeps it: bucket "cluster", key "clusterVersion". */
const clusterVersionKey = Buffer.from('clusterVersion');

/**
 * Proposals waiting for their entry to apply. etcd bounds the gap between commit and apply
 * (5,000 entries, checked in EtcdServer); here apply keeps pace with commit on the Ready
 * loop, so the queue that can grow is proposals waiting for a WAL save, bounded by these.
 */
const maxProposalsInFlight = 20_000;
const maxProposalBytesInFlight = 256 * 1024 * 1024;

export interface RunningMember {
  readonly server: EtcdServer;
  readonly raft: RaftNode;
  readonly store: MvccStore;
  /** Stops the raft loop and closes the store and the WAL (the API must be closed first). */
  stop(): Promise<void>;
}

/** Starts the member and waits until its raft loop has replayed the WAL (and, alone, campaigned). */
export async function startMember(config: ServerConfig, log: Logger, wiring: { peerTls?: PeerTls } = {}): Promise<RunningMember> {
  const memberDir = join(config.dataDir, 'member');
  const walDir = config.walDir ?? join(memberDir, 'wal');
  const snapDir = join(memberDir, 'snap');
  const walExists = await Wal.exists(walDir);
  // An existing data dir wins over the bootstrap flags; a new one is checked before any write.
  // A member joining a running cluster asks a peer for the cluster (etcd's join).
  const joining = !walExists && config.initialClusterState === 'existing' ? await joinIdentity(config, log, wiring.peerTls?.client) : undefined;
  const boot = walExists ? undefined : joining ?? bootstrapIdentity(config);
  mkdirSync(snapDir, { recursive: true, mode: 0o700 });

  // An etcd data dir: its bbolt backend imported first, the key index built as it is copied.
  const importedIndex = await adoptEtcdDataDir(config.dataDir, walDir, log);
  // etcd's newBackend logs the batch settings it takes from the flags.
  if (config.backendBatchLimit !== undefined) log.info('setting backend batch limit', { 'batch limit': config.backendBatchLimit });
  if (config.backendBatchIntervalMs !== undefined) {
    log.info('setting backend batch interval', { 'batch interval': formatDuration(config.backendBatchIntervalMs) });
  }
  const openedAt = Date.now();
  const backend = Backend.open({
    path: backendPath(config.dataDir), unsafeNoSync: config.unsafeNoFsync,
    batchIntervalMs: config.backendBatchIntervalMs, batchLimit: config.backendBatchLimit,
  });
  log.info('opened backend db', { path: backend.path, took: formatDuration(Date.now() - openedAt) });

  if (boot !== undefined) {
    // A joining member's log starts empty: the leader sends it everything, conf changes too.
    await writeBootstrapWal(walDir, boot, joining ? [] : boot.members);
    backend.put('members', membersKey, Buffer.from(new Membership(boot.clusterId, []).toJson()));
  }

  // ---- restart path: snapshot, WAL, raft storage
  const snapshotter = new Snapshotter(snapDir);
  const snapshot: Snapshot | undefined = await snapshotter.loadNewestAvailable(await validSnapshotEntries(walDir));
  const snapIndex = snapshot?.metadata.index ?? 0;
  const wal = await Wal.open(walDir, { index: snapIndex, term: snapshot?.metadata.term ?? 0 }, {
    logger: (level, msg, fields) => log[level](msg, fields),
    unsafeNoSync: config.unsafeNoFsync,
  });
  const { metadata, hardState, entries } = await wal.readAll();
  const meta = Metadata.decode(metadata);
  const memberId = meta.NodeID ?? 0n;
  const clusterId = meta.ClusterID ?? 0n;

  const storage = new MemoryStorage();
  if (snapshot) storage.applySnapshot(snapshot);
  if (config.forceNewCluster && walExists) {
    // etcd applies --force-new-cluster only to an existing WAL (a new member has nothing to keep).
    const standalone = standaloneLog(memberId, snapshot, hardState, entries, storedConsistentIndex(backend), log);
    // etcd saves only the entries; the committed hard state too lets a quick second restart agree.
    await wal.save(standalone.hardState, standalone.appended, true);
    logForcedRestart(log, clusterId, memberId, standalone.hardState.commit);
    storage.setHardState(standalone.hardState);
    storage.append(standalone.entries);
  } else {
    storage.setHardState(hardState);
    storage.append(entries);
  }

  // Membership as of the snapshot (empty without one), then every conf change after it is
  // replayed and validated as it was the first time (etcd's v2 store: snapshot, then WAL).
  // The backend's record, which may be ahead of the replay, would change those decisions.
  const membership = snapshot?.data && snapshot.data.length > 0 ? membershipOfSnapshotData(snapshot.data, clusterId) : new Membership(clusterId, []);
  const alarms = new AlarmSet(alarmsOfRecord(backend.get('alarm', alarmsKey)));

  // Stopped between saving a leader's snapshot and taking its backend: take it now.
  const recovered = snapshot ? await recoverSnapshotBackend(backend, snapshot, clusterId, log) : false;
  checkBackendMatchesSnapshot(backend.path, storedConsistentIndex(backend), snapIndex);
  // The lessor first: opening the store re-attaches every key to its lease (as etcd orders it).
  const lessor = new Lessor({
    backend,
    minTtlSeconds: minLeaseTtlSeconds(config.electionTimeoutMs, config.heartbeatIntervalMs),
    checkpointIntervalMs: config.leaseCheckpoint ? (config.leaseCheckpointIntervalMs ?? defaultCheckpointIntervalMs) : 0,
    checkpointPersist: config.leaseCheckpointPersist ?? false,
    expiredRetryMs: 5000 + 2 * config.electionTimeoutMs, // etcd's ReqTimeout()
  });
  const clock = (): number => performance.now();
  // The MVCC store hands every write's events to its watchable layer (mvcc/watchable-store.ts).
  const watchable = WatchableStore.open({
    backend, log, leaseExists: (id) => lessor.has(id), onKeyLease: (key, lease) => lessor.attachKey(key, lease),
    restoredIndex: recovered ? undefined : importedIndex, // a recovered file is not the one imported
  });
  const store = watchable.kv;
  // Nothing else runs yet (no raft loop, API or peer listener): the rebuild's pages can go.
  await store.releaseMappedPages();
  const quotaBytes = config.quotaBackendBytes > 0 ? config.quotaBackendBytes : defaultQuotaBackendBytes;
  if (config.quotaBackendBytes === 0) {
    log.info('enabled backend quota with default value', { 'quota-name': 'v3-applier', 'quota-size-bytes': quotaBytes, 'quota-size': '2.1 GB' });
  } else {
    log.info('enabled backend quota', { 'quota-name': 'v3-applier', 'quota-size-bytes': quotaBytes });
  }

  // Peers are served before raft runs; what arrives meanwhile is dropped (raft resends).
  let raftNode: RaftNode | undefined;
  const peers = new PeerNetwork({
    memberId, clusterId, advertisePeerUrls: config.initialAdvertisePeerUrls.map(urlString), membership, log,
    clusterVersion: () => applier.clusterVersion,
    raft: () => raftNode,
    snapshotDb: async (m) => {
      const { image, snapshot } = await server!.mergedSnapshot();
      return mergedSnapshot({ ...m, snapshot }, image, log, { from: idToHex(memberId), to: idToHex(m.to) });
    },
    saveSnapshot: (m, db) => saveSnapshotDb(snapDir, m, db, log),
    ...(wiring.peerTls ? { tls: wiring.peerTls } : {}),
    onRemoved: () => server?.removedFromCluster('told by a peer'),
  });
  peers.syncMembers();
  if (joining) peers.addPeers(joining.members);
  await peers.listen(config.listenPeerUrls);

  const tokenTtlMs = config.auth?.tokenTtlMs ?? 300_000;
  const tokens = newTokenProvider(config.auth?.token ?? { kind: 'simple', ttlMs: tokenTtlMs }, log);
  const auth = new AuthStore({ backend, log, tokenTtlMs, tokens });
  // The server, applier and raft loop refer to one another; the loop runs only after start().
  let server: EtcdServer | undefined;
  const waits = new WaitRegistry({ maxProposalsInFlight, maxProposalBytesInFlight });
  const applier = new Applier({
    memberId, membership, store, alarms, waits, log,
    header: () => server!.header(),
    persistAlarms: (a) => backend.put('alarm', alarmsKey, alarmsRecord(a.get(0))),
    persistMembership: (m) => {
      backend.put('members', membersKey, Buffer.from(m.toJson()));
      peers.syncMembers();
    },
    persistClusterVersion: (v) => backend.put('cluster', clusterVersionKey, Buffer.from(v)),
    clusterVersion: backend.get('cluster', clusterVersionKey)?.toString('utf8'),
    lessor, clock,
    onEmptyEntry: () => { if (raftNode?.isLeader) expiry?.promote(); },
    auth,
    onRemovedSelf: () => server?.removedFromCluster(),
    holdingReads: (work) => server!.holdingReads(work),
  });
  let snapshots: SnapshotPolicy | undefined;
  let expiry: LeaseExpiry | undefined;
  // etcd's ElectionTicks: the timeout in whole heartbeats.
  const electionTick = Math.max(1, Math.floor(config.electionTimeoutMs / config.heartbeatIntervalMs));
  const raft = new RaftNode({
    id: memberId, storage, applied: snapIndex, electionTick, heartbeatTick: 1, random: Math.random,
    // etcd's WAL returns before timing a sync it skips: no fsync observations under --unsafe-no-fsync.
    wal: config.unsafeNoFsync ? wal : timedWal(wal), snapshotter, transport: peers, applier, log,
    tuning: { preVote: config.preVote ?? false },
    events: {
      leaderChanged: (leader, isLeader, previous) => {
        if (!isLeader && lessor.isPrimary) expiry?.demote();
        server?.onLeaderChanged(leader, previous);
      },
      readState: (ctx, index) => server?.onReadState(ctx, index),
      idle: () => snapshots!.maybeSnapshot(),
    },
  });
  raftNode = raft;
  snapshots = new SnapshotPolicy({
    snapshotCount: config.snapshotCount, log, store, raft, wal, snapshotter, membership, snapDir,
    clusterVersion: () => applier.clusterVersion, maxSnapshots: config.maxSnapshots ?? 5,
  });
  log.info('starting local member', { 'local-member-id': idToHex(memberId), 'cluster-id': idToHex(clusterId) });
  const promoteForwarder = new PromoteForwarder({
    leaderPeerUrls: () => (raft.leader === 0n || raft.leader === memberId ? undefined : membership.get(raft.leader)?.peerURLs),
    requestTimeoutMs: 5000 + 2 * config.electionTimeoutMs, // etcd's ReqTimeout()
    log, ...(wiring.peerTls ? { tls: wiring.peerTls.client } : {}),
  });
  server = new EtcdServer({
    config, log, memberId, membership, store, alarms, quotaBytes, raft, applier, waits, auth,
    peers, forwardPromote: (id) => promoteForwarder.promote(id),
  });
  const srv0 = server;
  peers.promote = (id) => srv0.cluster.promoteMember(id);
  server.watch = {
    watchable,
    hasLeader: () => server.leader !== 0n,
    progressNotifyIntervalMs: config.watchProgressNotifyIntervalMs ?? defaultWatchProgressNotifyIntervalMs,
    electionTimeoutMs: config.electionTimeoutMs,
  };
  bindMemberMetrics({
    memberId, raft, watchable, waits, quotaBytes,
    clusterVersion: () => applier.clusterVersion, defragging: () => server?.defragInflight ?? false,
  });
  const srv = server;
  expiry = new LeaseExpiry({
    lessor, clock, log, propose: (r, ai) => srv.propose(r, ai),
    revoker: rootWhileAuthOn(auth),
    electionTimeoutMs: config.electionTimeoutMs, checkpoints: config.leaseCheckpoint ?? false,
  });
  const appliedCaughtUp = (): Promise<void> | undefined => raft.appliedIndex >= raft.commitIndex ? undefined : raft.waitApplied(raft.commitIndex);
  const leases = new LeaseHost({
    memberId, lessor, clock, propose: (r, ai) => srv.propose(r, ai), header: () => srv.header(), appliedCaughtUp,
    isLeader: () => raft.isLeader,
    forwarder: new LeaseForwarder({
      leaderPeerUrls: () => (raft.leader === 0n ? undefined : membership.get(raft.leader)?.peerURLs),
      requestTimeoutMs: 5000 + 2 * config.electionTimeoutMs, // etcd's ReqTimeout()
      ...(wiring.peerTls ? { tls: wiring.peerTls.client } : {}),
    }),
  });
  server.lease = leases;
  peers.leases = { appliedCaughtUp, renew: (id) => leases.renewAsPrimary(id), timeToLive: (r) => leases.timeToLiveHere(r) };
  expiry.start();
  log.info('starting etcd server', { 'local-member-id': idToHex(memberId), 'local-server-version': serverVersion, 'cluster-version': 'to_be_decided' });

  // Through the server: a hash waits while the backend file is swapped, as reads do.
  peers.hashKV = (rev) => srv.storeHashKV(rev);
  const corruptDeps = {
    memberId, log, hashKV: (rev: number) => srv.storeHashKV(rev), tls: wiring.peerTls?.client,
    timeoutMs: 5000 + 2 * config.electionTimeoutMs, // etcd's ReqTimeout()
    peers: () => checkedPeers(membership, backend, memberId),
  };
  // etcd checks a restarting member only (a new one has nothing to compare), before raft runs.
  if (config.initialCorruptCheck && walExists) {
    try {
      await checkInitialHashKV(corruptDeps);
    } catch (e) {
      expiry.stop();
      server.stop();
      await peers.close();
      await store.close();
      await wal.close();
      throw e;
    }
  }
  const corruption = (config.corruptCheckTimeMs ?? 0) > 0 ? new CorruptionMonitor({
    ...corruptDeps, intervalMs: config.corruptCheckTimeMs!, isLeader: () => raft.isLeader,
    readNotify: () => srv.linearizableBarrier(), proposeAlarm: (req) => srv.alarm(req),
  }) : undefined;

  // Raft learns its voters from the conf changes replayed in the first Readies, so let the
  // loop drain those before deciding whether this member is alone.
  raft.start(config.heartbeatIntervalMs);
  await raft.exclusive(async () => undefined); // the loop is running
  await raft.drained();
  const voters = raft.voters();
  if (voters.length === 1 && voters[0] === memberId && electionTick > 1) {
    log.info('started as single-node; fast-forwarding election ticks', {
      'local-member-id': idToHex(memberId), 'forward-ticks': electionTick - 1,
      'forward-duration': formatDuration((electionTick - 1) * config.heartbeatIntervalMs),
      'election-ticks': electionTick, 'election-timeout': formatDuration(config.electionTimeoutMs),
    });
    raft.campaignAsSoleVoter();
  } else {
    advanceTicksOnceConnected(raft, peers, config, log);
  }
  const stopDebug = config.debugRaftLoop ? logLoopStats(raft, log) : () => undefined;
  corruption?.start();

  const started = server;
  return {
    server: started, raft, store,
    async stop() {
      // Peers are still connected: a leader hands over before anything stops (etcd's Stop).
      await started.transferLeadershipForStop();
      stopDebug();
      corruption?.stop();
      expiry!.stop();
      started.stop();
      await raft.stop();
      await peers.close();
      await store.close();
      await wal.close();
    },
  };
}

/**
 * etcd's bootstrap WAL: AddNode conf changes for every initial member, committed at term 1
 * (none for a member joining a running cluster).
 */
async function writeBootstrapWal(walDir: string, boot: { memberId: bigint; clusterId: bigint }, initialMembers: readonly Member[]): Promise<void> {
  const wal = await Wal.create(walDir, Metadata.encode({ NodeID: boot.memberId, ClusterID: boot.clusterId }).finish());
  if (initialMembers.length === 0) {
    await wal.close();
    return;
  }
  const entries: Entry[] = initialMembers.map((m, i) => ({
    term: 1, index: i + 1, type: EntryType.EntryConfChange,
    data: encodeConfChange({ type: ConfChangeType.ConfChangeAddNode, nodeId: m.id, context: Buffer.from(memberToJson(m)), id: 0n }),
  }));
  const hs: HardState = { term: 1, vote: 0n, commit: entries.length };
  await wal.save(hs, entries, true);
  await wal.close();
}

/**
 * The members a corruption check asks. Before raft replays the WAL, membership is only what a
 * snapshot held (etcd 3.4 then finds no peers and passes trivially); the backend's membership
 * record, written as conf changes applied, names them.
 */
function checkedPeers(membership: Membership, backend: Backend, self: bigint): Member[] {
  let list = membership.list();
  if (list.length === 0) {
    const text = backend.get('members', membersKey)?.toString('utf8');
    if (text) list = Membership.fromJson(text).list();
  }
  return list.filter((m) => m.id !== self);
}

/** What a new member's data dir is made from: bootstrapIdentity's inputs and where to write. */
export type NewMemberConfig = Pick<ServerConfig, 'name' | 'dataDir' | 'walDir' | 'initialCluster' | 'initialAdvertisePeerUrls' | 'initialClusterToken'>;

/**
 * Makes a new member's data dir around data from elsewhere (concordutl snapshot restore):
 * `fill` loads the backend first (without a consistent index, members or alarms), then this
 * writes what a bootstrap writes (the WAL of the initial cluster's conf changes, an empty
 * membership record) and `alarms`. The first start then replays the bootstrap entries, as a
 * data dir from etcd's restore does. Returns the new member and cluster ids.
 */
export async function writeRestoredMember(config: NewMemberConfig, alarms: readonly AlarmMember[], fill: (backend: Backend) => Promise<void>): Promise<{ memberId: bigint; clusterId: bigint }> {
  const boot = bootstrapIdentity(config);
  mkdirSync(join(config.dataDir, 'member', 'snap'), { recursive: true, mode: 0o700 });
  const backend = Backend.open({ path: backendPath(config.dataDir), deferSync: true }); // synced by forceCommit below
  try {
    await fill(backend);
    backend.put('members', membersKey, Buffer.from(new Membership(boot.clusterId, []).toJson()));
    if (alarms.length > 0) backend.put('alarm', alarmsKey, alarmsRecord(alarms));
    await backend.forceCommit();
  } finally {
    await backend.close();
  }
  await writeBootstrapWal(config.walDir ?? join(config.dataDir, 'member', 'wal'), boot, boot.members);
  return { memberId: boot.memberId, clusterId: boot.clusterId };
}

/**
 * etcd's adjustTicks for a member with peers: with --initial-election-tick-advance, once the
 * peers are connected (etcd waits up to rafthttp's 5 s ConnReadTimeout), all but two election
 * ticks are skipped, so a fresh cluster elects quickly yet still hears a live leader first.
 */
function advanceTicksOnceConnected(raft: RaftNode, peers: PeerNetwork, config: ServerConfig, log: Logger): void {
  const electionTicks = raft.electionTick;
  const electionTimeout = formatDuration(electionTicks * config.heartbeatIntervalMs);
  if (config.initialElectionTickAdvance === false) {
    log.info('skipping initial election tick advance', { 'election-ticks': electionTicks });
    return;
  }
  log.info('starting initial election tick advance', { 'election-ticks': electionTicks });
  const pollMs = 50;
  let polls = connReadTimeoutMs / pollMs;
  const timer = setInterval(() => {
    const active = peers.activePeers;
    if (active > 1) {
      const ticks = electionTicks - 2;
      log.info('initialized peer connections; fast-forwarding election ticks', {
        'local-member-id': idToHex(raft.id), 'forward-ticks': ticks,
        'forward-duration': formatDuration(ticks * config.heartbeatIntervalMs),
        'election-ticks': electionTicks, 'election-timeout': electionTimeout, 'active-remote-members': active,
      });
      raft.advanceTicks(ticks);
    }
    if (active > 1 || --polls <= 0) clearInterval(timer);
  }, pollMs);
  timer.unref();
}

/** rafthttp's ConnReadTimeout: how long adjustTicks waits for peer connections. */
const connReadTimeoutMs = 5000;

/** Tuning aid (CONCORD_DEBUG_LOOP): the Ready loop's batch sizes and WAL save latency, every second. */
function logLoopStats(raft: RaftNode, log: Logger): () => void {
  let last = { ...raft.stats };
  const timer = setInterval(() => {
    const s = raft.stats;
    const saves = s.walSaves - last.walSaves;
    log.info('raft loop', {
      readies: s.readies - last.readies, 'wal-saves': saves,
      'entries-per-save': saves ? +((s.entriesSaved - last.entriesSaved) / saves).toFixed(1) : 0,
      'wal-save-ms': saves ? +((s.walSaveMs - last.walSaveMs) / saves).toFixed(3) : 0,
    });
    last = { ...s };
  }, 1000);
  timer.unref();
  return () => clearInterval(timer);
}
