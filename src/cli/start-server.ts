/**
 * The composition root: config → member (storage, mvcc, applier, raft loop: server/) →
 * client API listeners (api/) → auto-compaction → publish. The only place that knows both
 * server/ and api/, so neither imports the other's wiring (api/ sees server/'s EtcdService
 * interface only).
 */
import { startApi } from '../api/index.js';
import { clientTlsOptions } from './tls-check.js';
import { peerTlsSetup } from './peer-tls.js';
import { allowYoungGenerationGrowth } from './small-heap.js';
import { collectWhenIdle, defaultIdleGcOptions, heapFootprintBytes } from './idle-gc.js';
import { enableHandlingTimeHistogram, registerEventLoopMetrics, registry } from '../metrics/index.js';
import type { Logger } from '../log/index.js';
import { isEtcdError } from '../errors/index.js';
import {
  startMember, startAutoCompaction, clusterVersion, idToHex, urlString,
  type EtcdServer, type ServerConfig,
} from '../server/index.js';

export interface RunningServer {
  readonly server: EtcdServer;
  readonly clientAddresses: string[];
  /** Resolves once this member was removed from the cluster (cli/concord.ts then stops it). */
  readonly removed: Promise<Error>;
  stop(): Promise<void>;
}

export async function startServer(config: ServerConfig, log: Logger): Promise<RunningServer> {
  const footprintBeforeStart = heapFootprintBytes(); // the replay's garbage counts as growth (cli/idle-gc.ts)
  registerEventLoopMetrics(registry); // from the start: recovery's pauses count too
  const peerTls = peerTlsSetup(config, log);
  const member = await startMember(config, log, peerTls ? { peerTls } : {});
  const { server, store } = member;
  if (config.metrics === 'extensive') enableHandlingTimeHistogram(); // before any method is registered
  const api = await startApi({
    service: server, listen: config.listenClientUrls, log, thread: config.apiThread ?? false, h2Server: config.h2Server ?? 'own', tls: clientTlsOptions(config),
    ...(config.grpcKeepalive ? { keepalive: config.grpcKeepalive } : {}),
    listenMetrics: config.listenMetricsUrls ?? [], enableGrpcGateway: config.enableGrpcGateway ?? true,
    access: { cors: config.cors ?? ['*'], hostWhitelist: config.hostWhitelist ?? ['*'] },
    ...(config.maxConcurrentStreams === undefined ? {} : { maxConcurrentStreams: config.maxConcurrentStreams }),
  });
  const stopCompactor = startAutoCompaction({ config, log, server, store });
  const stopIdleGc = collectWhenIdle(log, defaultIdleGcOptions, footprintBeforeStart);

  const stopping = { value: false };
  const clientURLs = config.advertiseClientUrls.map(urlString);
  // A member removed while it was down learns it from its peers (410) before any leader is
  // known to it: it never publishes; cli/concord.ts stops it once `removed` resolves.
  const removedFirst = await Promise.race([
    publishAttributes(server, config, clientURLs, stopping).then(() => false),
    server.removed.then(() => true),
  ]);
  if (removedFirst) stopping.value = true;
  else announceReady(server, config, clientURLs, api, log);

  return {
    server,
    clientAddresses: api.addresses,
    removed: server.removed,
    async stop() {
      stopping.value = true;
      log.info('closing etcd server', {
        name: config.name, 'data-dir': config.dataDir,
        'advertise-client-urls': config.advertiseClientUrls.map((u) => u.toString()),
      });
      stopCompactor();
      stopIdleGc();
      await api.close();
      await member.stop();
      log.info('closed etcd server', { name: config.name, 'data-dir': config.dataDir });
    },
  };
}

/** The published and serving lines etcd logs once the member's attributes applied. */
function announceReady(server: EtcdServer, config: ServerConfig, clientURLs: string[], api: { addresses: string[]; metricsAddresses: string[] }, log: Logger): void {
  log.info('published local member to cluster through raft', {
    'local-member-id': idToHex(server.memberId),
    'local-member-attributes': `{Name:${config.name} ClientURLs:[${clientURLs.join(' ')}]}`,
    'request-path': `/0/members/${idToHex(server.memberId)}/attributes`,
    'cluster-id': idToHex(server.membership.clusterId),
    'publish-timeout': '7s',
  });
  for (const a of api.addresses) {
    if (a.startsWith('https:')) log.info('serving client traffic securely', { address: a.replace(/^https:\/\//, '') });
    else log.info('serving client traffic insecurely; this is strongly discouraged!', { address: a });
  }
  for (const a of api.metricsAddresses) log.info('serving metrics', { address: a });
  log.info('ready to serve client requests', {});
  allowYoungGenerationGrowth();
}

/**
 * Once a leader is known: as leader, the cluster version first (etcd's first entry after
 * election), then this member's attributes, through raft, as etcd 3.4 does. A publish that
 * fails with an etcd error (leader lost meanwhile) is retried every heartbeat until it
 * applies or the server stops.
 */
async function publishAttributes(server: EtcdServer, config: ServerConfig, clientURLs: string[], stopping: { value: boolean }): Promise<void> {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  for (;;) {
    try {
      while (server.leader === 0n) {
        if (stopping.value) return;
        await sleep(leaderPollMs);
      }
      if (server.leader === server.memberId && server.clusterVersion === undefined) await server.setClusterVersion(clusterVersion);
      await server.publish(config.name, clientURLs);
      return;
    } catch (e) {
      if (!isEtcdError(e)) throw e;
      if (stopping.value) return;
      await sleep(config.heartbeatIntervalMs);
    }
  }
}

/** How often start-up looks for a leader (a lone member elects itself within a few ms). */
const leaderPollMs = 5;
