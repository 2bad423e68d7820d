/**
 * server/: one Concord member. `startServer` bootstraps or restarts the member from its data
 * dir, starts the raft loop and the client API, and returns a handle to stop it.
 *
 * Bootstrap and restart are one path: a new member first writes a WAL holding etcd's
 * bootstrap entries (one AddNode conf change per initial member, committed at term 1), then
 * starts exactly as a restarting member does, by replaying its WAL.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { RawNode, MemoryStorage } from '../raft/index.js';
import { Wal, Snapshotter, validSnapshotEntries } from '../wal/index.js';
import { WatchableStore } from '../mvcc/index.js';
import { Backend, backendPath } from '../storage/index.js';
import { startApi } from '../api/index.js';
import type { Logger } from '../log/index.js';
import { formatDuration } from '../log/index.js';
import { Metadata } from '../proto/gen/etcdserverpb/etcdserver.js';
import {
  ConfChangeType, EntryType, encodeConfChange, type Entry, type HardState, type Snapshot,
} from '../proto/raftpb.js';
import { AlarmMember } from '../proto/gen/etcdserverpb/rpc.js';
import type { ServerConfig } from './config.js';
import { defaultQuotaBackendBytes, defaultWatchProgressNotifyIntervalMs } from './config.js';
import { urlString } from './ids.js';
import { bootstrapIdentity } from './bootstrap.js';
import { Membership, memberToJson, idToHex } from './membership.js';
import { AlarmSet } from './alarms.js';
import { EtcdServer, serverVersion, clusterVersion } from './etcd-server.js';
import { RaftNode } from './raft-node.js';
import { SnapshotPolicy } from './snapshot-policy.js';
import { startAutoCompaction } from './compactor.js';

export { EtcdServer, serverVersion, clusterVersion } from './etcd-server.js';
export type { ServerConfig } from './config.js';
export type { EtcdService } from './service.js';

export interface RunningServer {
  readonly server: EtcdServer;
  readonly clientAddresses: string[];
  stop(): Promise<void>;
}

/** Concord keeps membership and alarms as one JSON record each in these databases. */
const membersKey = Buffer.from('members');
const alarmsKey = Buffer.from('alarms');
/** As etcd 3.5 keeps it: bucket "cluster", key "clusterVersion". */
const clusterVersionKey = Buffer.from('clusterVersion');

export async function startServer(config: ServerConfig, log: Logger): Promise<RunningServer> {
  const memberDir = join(config.dataDir, 'member');
  const walDir = config.walDir ?? join(memberDir, 'wal');
  const snapDir = join(memberDir, 'snap');
  const walExists = await Wal.exists(walDir);
  // An existing data dir wins over the bootstrap flags; a new one is checked before any write.
  const boot = walExists ? undefined : bootstrapIdentity(config);
  mkdirSync(snapDir, { recursive: true, mode: 0o700 });

  const openedAt = Date.now();
  const backend = Backend.open({ path: backendPath(config.dataDir) });
  log.info('opened backend db', { path: backend.path, took: formatDuration(Date.now() - openedAt) });

  // ---- identity and initial WAL
  let memberId: bigint;
  let clusterId: bigint;
  if (boot !== undefined) {
    memberId = boot.memberId;
    clusterId = boot.clusterId;
    const wal = await Wal.create(walDir, Metadata.encode({ NodeID: memberId, ClusterID: clusterId }).finish());
    // etcd's bootstrap: AddNode conf changes for every initial member, committed at term 1.
    const entries: Entry[] = boot.members.map((m, i) => ({
      term: 1, index: i + 1, type: EntryType.EntryConfChange,
      data: encodeConfChange({ type: ConfChangeType.ConfChangeAddNode, nodeId: m.id, context: Buffer.from(memberToJson(m)), id: 0n }),
    }));
    const hs: HardState = { term: 1, vote: 0n, commit: entries.length };
    await wal.save(hs, entries, true);
    await wal.close();
    backend.put('members', membersKey, Buffer.from(new Membership(clusterId, []).toJson()));
  }

  // ---- restart path: snapshot, WAL, raft storage
  const snapshotter = new Snapshotter(snapDir);
  const walSnaps = await validSnapshotEntries(walDir);
  const snapshot: Snapshot | undefined = await snapshotter.loadNewestAvailable(walSnaps);
  const walAt = snapshot ? { index: snapshot.metadata.index, term: snapshot.metadata.term } : { index: 0, term: 0 };
  const wal = await Wal.open(walDir, walAt, { logger: (level, msg, fields) => log[level](msg, fields) });
  const { metadata, hardState, entries } = await wal.readAll();
  const meta = Metadata.decode(metadata);
  memberId = meta.NodeID ?? 0n;
  clusterId = meta.ClusterID ?? 0n;

  const storage = new MemoryStorage();
  if (snapshot) storage.applySnapshot(snapshot);
  storage.setHardState(hardState);
  storage.append(entries);

  // Membership: what the backend recorded (or the snapshot), plus conf changes replayed below.
  const membersText = backend.get('members', membersKey)?.toString('utf8')
    ?? (snapshot?.data && snapshot.data.length > 0 ? Buffer.from(snapshot.data).toString('utf8') : undefined);
  const membership = membersText ? Membership.fromJson(membersText) : new Membership(clusterId, []);
  const alarmsText = backend.get('alarm', alarmsKey)?.toString('utf8');
  const alarms = new AlarmSet(alarmsText ? (JSON.parse(alarmsText) as Array<{ memberID: string; alarm: number }>).map((a) => AlarmMember.fromPartial({ memberID: BigInt(a.memberID), alarm: a.alarm })) : []);

  // The MVCC store hands every write's events to its watchable layer (mvcc/watchable-store.ts).
  const watchable = WatchableStore.open({ backend, log });
  const store = watchable.kv;
  const quotaBytes = config.quotaBackendBytes > 0 ? config.quotaBackendBytes : defaultQuotaBackendBytes;
  if (config.quotaBackendBytes === 0) {
    log.info('enabled backend quota with default value', { 'quota-name': 'v3-applier', 'quota-size-bytes': quotaBytes, 'quota-size': '2.1 GB' });
  } else {
    log.info('enabled backend quota', { 'quota-name': 'v3-applier', 'quota-size-bytes': quotaBytes });
  }

  const server = new EtcdServer({
    config, log, memberId, membership, store, alarms, quotaBytes,
    persistAlarms: (a) => backend.put('alarm', alarmsKey, Buffer.from(JSON.stringify(a.get(0).map((x) => ({ memberID: x.memberID.toString(), alarm: x.alarm }))))),
    persistMembership: (m) => backend.put('members', membersKey, Buffer.from(m.toJson())),
    persistClusterVersion: (v) => backend.put('cluster', clusterVersionKey, Buffer.from(v)),
    clusterVersion: backend.get('cluster', clusterVersionKey)?.toString('utf8'),
  });

  server.watch = {
    watchable,
    hasLeader: () => server.leader !== 0n,
    progressNotifyIntervalMs: config.watchProgressNotifyIntervalMs ?? defaultWatchProgressNotifyIntervalMs,
    electionTimeoutMs: config.electionTimeoutMs,
  };

  const electionTick = Math.max(1, Math.round(config.electionTimeoutMs / config.heartbeatIntervalMs));
  const raw = new RawNode({
    id: memberId,
    electionTick,
    heartbeatTick: 1,
    storage,
    applied: snapshot?.metadata.index ?? 0,
    maxSizePerMsg: 1024 * 1024,
    maxInflightMsgs: 4096 / 8,
    checkQuorum: true,
    preVote: true,
    random: Math.random,
  });
  log.info('starting local member', { 'local-member-id': idToHex(memberId), 'cluster-id': idToHex(clusterId) });

  const snapshots = new SnapshotPolicy({
    snapshotCount: config.snapshotCount, log, store, storage, wal, snapshotter, membership,
    appliedIndex: snapshot?.metadata.index ?? 0,
    snapDir, maxSnapshots: config.maxSnapshots ?? 5,
  });
  let raft: RaftNode;
  raft = new RaftNode({
    raw, storage, wal, snapshotter, log,
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    hooks: {
      apply: (ents) => server.apply(ents),
      readState: (ctx, index) => server.onReadState(ctx, index),
      softState: (lead, isLeader) => server.onSoftState(lead, isLeader),
      send: () => undefined, // one member: no peers yet (transport issue)
      idle: () => snapshots.maybeSnapshot(server.appliedIndex, () => raw.status().config),
    },
  });
  server.attachRaft(raft, Math.max(snapshot?.metadata.index ?? 0, 0));
  log.info('starting etcd server', { 'local-member-id': idToHex(memberId), 'local-server-version': serverVersion, 'cluster-version': 'to_be_decided' });

  // A lone voter need not wait a whole election timeout: etcd fast-forwards its ticks. Raft
  // learns its voters from the conf changes replayed in the first Readies, so let the loop
  // drain those first (otherwise the ticks would fall on a node that cannot campaign yet).
  raft.start();
  await raft.exclusive(async () => undefined); // the loop is running
  await raft.drained();
  const voters = raw.status().config.voters;
  if (voters.length === 1 && voters[0] === memberId && electionTick > 1) {
    log.info('started as single-node; fast-forwarding election ticks', {
      'local-member-id': idToHex(memberId), 'forward-ticks': electionTick - 1,
      'forward-duration': formatDuration((electionTick - 1) * config.heartbeatIntervalMs),
      'election-ticks': electionTick, 'election-timeout': formatDuration(config.electionTimeoutMs),
    });
    for (let i = 0; i < electionTick - 1; i++) raw.tick();
    // etcd then still waits out the rest of its randomized timeout (up to another election
    // timeout). A lone voter has nobody to disrupt: it campaigns at once.
    raw.campaign();
    raft.kick();
  }

  if (process.env.CONCORD_DEBUG_LOOP) {
    // Tuning aid: the Ready loop's batch sizes and WAL save latency, every second.
    let last = { ...raft.stats };
    setInterval(() => {
      const s = raft.stats;
      const saves = s.walSaves - last.walSaves;
      log.info('raft loop', {
        readies: s.readies - last.readies, 'wal-saves': saves,
        'entries-per-save': saves ? +((s.entriesSaved - last.entriesSaved) / saves).toFixed(1) : 0,
        'wal-save-ms': saves ? +((s.walSaveMs - last.walSaveMs) / saves).toFixed(3) : 0,
      });
      last = { ...s };
    }, 1000).unref();
  }

  const api = await startApi({ service: server, listen: config.listenClientUrls, log });
  const stopCompactor = startAutoCompaction({ config, log, server, store });

  let stopping = false;
  // Publish attributes through raft; the member is ready once that applies.
  const clientURLs = config.advertiseClientUrls.map(urlString);
  const published = (async () => {
    for (;;) {
      try {
        await waitForLeader(server);
        if (server.leader === server.memberId && server.clusterVersion === undefined) await server.setClusterVersion(clusterVersion);
        await server.publish(config.name, clientURLs);
        return;
      } catch {
        if (stopping) return;
        await new Promise((r) => setTimeout(r, config.heartbeatIntervalMs));
      }
    }
  })();
  await published;
  log.info('published local member to cluster through raft', {
    'local-member-id': idToHex(memberId),
    'local-member-attributes': `{Name:${config.name} ClientURLs:[${clientURLs.join(' ')}]}`,
    'request-path': `/0/members/${idToHex(memberId)}/attributes`,
    'cluster-id': idToHex(clusterId),
    'publish-timeout': '7s',
  });
  for (const a of api.addresses) log.info('serving client traffic insecurely; this is strongly discouraged!', { address: a });
  log.info('ready to serve client requests', {});

  return {
    server,
    clientAddresses: api.addresses,
    async stop() {
      stopping = true;
      log.info('closing etcd server', {
        name: config.name, 'data-dir': config.dataDir,
        'advertise-client-urls': config.advertiseClientUrls.map((u) => u.toString()),
      });
      stopCompactor();
      await api.close();
      server.stop();
      await raft.stop();
      await store.close();
      await wal.close();
      log.info('closed etcd server', { name: config.name, 'data-dir': config.dataDir });
    },
  };
}

function waitForLeader(server: EtcdServer): Promise<void> {
  return new Promise((resolve) => {
    const check = () => (server.leader !== 0n ? resolve() : setTimeout(check, 5));
    check();
  });
}
