/**
 * The `concord` program: etcd 3.4's server command line (flags, ETCD_* environment,
 * --config-file), etcd's start-up log lines, then one member started by server/.
 *
 * Signals: the first SIGTERM/SIGINT stops the member gracefully (stop accepting, finish what
 * is in flight, sync) and exits 0; a second one exits at once with 128+signal. (etcd 3.4 exits
 * 143 on SIGTERM after stopping; Concord exits 0, as its issue asks, so supervisors see a clean
 * stop.) An uncaught error is logged and exits 1.
 */
import { readdirSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { parseConcordArgs, type ParseResult } from './concord-flags.js';
import { createLogger, formatDuration, type Logger } from '../log/index.js';
import { etcdVersion, concordVersion, goArch } from './version.js';
import type { ServerConfig } from '../server/index.js';

/** server/'s entry module, loaded once a server is to run (flag errors and --help stay fast). */
type ServerModule = typeof import('../server/index.js');
import { checkDataDir, checkListeners } from './preflight.js';
import { holdThreadNice, threadNiceFromEnv } from './thread-priority.js';

/** What startServer returns; only stop() is needed here. */
interface Stoppable {
  stop(): Promise<void>;
  /** Resolves when the member was removed from the cluster: it then stops and exits 0, as etcd does. */
  readonly removed?: Promise<Error>;
}
export type StartServer = (config: ServerConfig, log: Logger) => Promise<Stoppable>;

const signalNumbers: Record<string, number> = { SIGINT: 2, SIGTERM: 15 };
/** Go's os.Signal String() for the two signals etcd handles ("received signal; shutting down"). */
const goSignalNames: Record<string, string> = { SIGINT: 'interrupt', SIGTERM: 'terminated' };

function writeExit(r: ParseResult & { kind: 'exit' }): void {
  if (r.stdout) process.stdout.write(r.stdout);
  if (r.stderr) process.stderr.write(r.stderr);
  if (r.logs && r.logs.length > 0) {
    const log = createLogger({ level: 'debug' });
    for (const rec of r.logs) log.log(rec.level, rec.msg, rec.fields);
    log.flush();
  }
}

/** etcd's "starting an etcd server" line (embed/etcd.go), with Concord's values. */
function logStarting(log: Logger, config: ServerConfig, memberInitialized: boolean, gitSha: string | undefined,
  { urlString, defaultQuotaBackendBytes }: ServerModule): void {
  const urls = (xs: URL[] | undefined) => (xs ?? []).map(urlString);
  const initialCluster = memberInitialized ? '' : [...config.initialCluster]
    .flatMap(([name, us]) => us.map((x) => `${name}=${urlString(x)}`)).sort().join(',');
  const retention = config.autoCompactionMode === 'revision'
    ? formatDuration(config.autoCompactionRetention / 1e6) // etcd prints the count as a Duration
    : formatDuration(config.autoCompactionRetention);
  const cpuCount = typeof availableParallelism === 'function' ? availableParallelism() : cpus().length;
  log.info('starting an etcd server', {
    'etcd-version': etcdVersion,
    'concord-version': concordVersion(),
    'git-sha': gitSha ?? 'Not provided',
    'go-version': `node ${process.version}`,
    'go-os': process.platform,
    'go-arch': goArch(),
    'max-cpu-set': cpuCount,
    'max-cpu-available': cpus().length,
    'member-initialized': memberInitialized,
    name: config.name,
    'data-dir': config.dataDir,
    'wal-dir': config.walDir ?? '',
    'wal-dir-dedicated': config.walDir ?? '',
    'member-dir': join(config.dataDir, 'member'),
    'force-new-cluster': config.forceNewCluster ?? false,
    'heartbeat-interval': formatDuration(config.heartbeatIntervalMs),
    'election-timeout': formatDuration(Math.floor(config.electionTimeoutMs / config.heartbeatIntervalMs) * config.heartbeatIntervalMs),
    'initial-election-tick-advance': config.initialElectionTickAdvance ?? true,
    'snapshot-count': config.snapshotCount,
    'max-wals': config.maxWals ?? 5,
    'max-snapshots': config.maxSnapshots ?? 5,
    'snapshot-catchup-entries': 5000,
    'initial-advertise-peer-urls': urls(config.initialAdvertisePeerUrls),
    'listen-peer-urls': urls(config.listenPeerUrls),
    'advertise-client-urls': urls(config.advertiseClientUrls),
    'listen-client-urls': urls(config.listenClientUrls),
    'listen-metrics-urls': urls(config.listenMetricsUrls),
    cors: [...(config.cors ?? ['*'])].sort(),
    'host-whitelist': [...(config.hostWhitelist ?? ['*'])].sort(),
    'initial-cluster': initialCluster,
    'initial-cluster-state': config.initialClusterState,
    'initial-cluster-token': memberInitialized ? '' : config.initialClusterToken,
    'quota-backend-bytes': config.quotaBackendBytes === 0 ? defaultQuotaBackendBytes : config.quotaBackendBytes,
    'max-request-bytes': config.maxRequestBytes,
    'max-concurrent-streams': config.maxConcurrentStreams ?? 4294967295,
    'pre-vote': config.preVote ?? false,
    'initial-corrupt-check': config.initialCorruptCheck ?? false,
    'corrupt-check-time-interval': formatDuration(config.corruptCheckTimeMs ?? 0),
    'auto-compaction-mode': config.autoCompactionMode,
    'auto-compaction-retention': retention,
    'auto-compaction-interval': retention,
    'discovery-url': '',
    'discovery-proxy': '',
  });
}

/** The composition root, loaded only once a server is to run (flag errors stay fast). */
async function loadStartServer(): Promise<StartServer> {
  return (await import('./start-server.js')).startServer;
}

export interface RunOptions {
  /** Starts the member (default: the composition root's startServer, loaded when needed). */
  startServer?: StartServer;
  /** Whether the WAL dir already holds a WAL (default: looks on disk). */
  walExists?: (walDir: string) => boolean;
}

/**
 * Runs concord with `argv` (arguments after the program name). Resolves with the exit code
 * for the 'exit' outcomes; once a server runs, exit happens from the signal handlers.
 */
export async function runConcord(argv: readonly string[], env: Readonly<Record<string, string | undefined>>,
  opts: RunOptions = {}): Promise<number | undefined> {
  // etcdmain: `etcd gateway ...` is a cobra command of its own (the L4 proxy), not the server.
  if (argv[0] === 'gateway') {
    const { runGateway } = await import('./concord-gateway.js');
    return runGateway(argv.slice(1), { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t) });
  }
  const parsed = parseConcordArgs(argv, env, opts.walExists ? { walExists: opts.walExists } : {});
  if (parsed.kind === 'exit') {
    writeExit(parsed);
    return parsed.code;
  }
  if (parsed.stderr) process.stderr.write(parsed.stderr);
  // Concord's own environment settings join the config here; nothing deeper reads the environment.
  const config: ServerConfig = {
    ...parsed.config,
    debugRaftLoop: Boolean(env.CONCORD_DEBUG_LOOP),
    apiThread: env.CONCORD_API_THREAD === '1',
    h2Server: env.CONCORD_H2 === 'node' ? 'node' : 'own',
  };
  const log = createLogger({ level: config.logLevel, outputs: config.logOutputs });
  const threadNice = threadNiceFromEnv(env);
  if (typeof threadNice === 'string') return exitFatal(log, threadNice, {});

  process.on('uncaughtException', (err) => {
    log.log('fatal', 'uncaught error; exiting', { error: err, stacktrace: err.stack ?? '' });
    log.flush();
    process.exit(1);
  });
  process.on('unhandledRejection', (reason) => {
    const err = reason instanceof Error ? reason : new Error(String(reason));
    log.log('fatal', 'unhandled promise rejection; exiting', { error: err, stacktrace: err.stack ?? '' });
    log.flush();
    process.exit(1);
  });

  for (const rec of parsed.logs) log.log(rec.level, rec.msg, rec.fields);
  for (const name of parsed.unsupported) {
    log.warn('flag is accepted for etcd compatibility but not supported by concord; ignoring', { flag: name });
  }

  // etcd's checks before anything is written (cli/preflight.ts).
  const badDataDir = checkDataDir(config.dataDir);
  if (badDataDir) return exitFatal(log, badDataDir.msg, badDataDir.fields);
  const walDir = config.walDir ?? join(config.dataDir, 'member', 'wal');
  const initialized = (opts.walExists ?? defaultWalExists)(walDir);
  if (initialized) {
    log.info('server has been already initialized', { 'data-dir': config.dataDir, 'dir-type': 'member' });
  }
  const server = await import('../server/index.js');
  const { urlString } = server;
  log.info('configuring peer listeners', { 'listen-peer-urls': config.listenPeerUrls.map(urlString) });
  log.info('configuring client listeners', { 'listen-client-urls': config.listenClientUrls.map(urlString) });
  const { checkClientTls } = await import('./tls-check.js');
  const listenError = checkClientTls(config, log) ?? await checkListeners(config.listenClientUrls);
  if (listenError) {
    log.warn('failed to start etcd', { error: listenError });
    return exitFatal(log, 'discovery failed', { error: listenError });
  }
  logStarting(log, config, initialized, env.CONCORD_GIT_SHA, server);

  // Signals are handled from here on, so a signal during start-up still stops cleanly.
  let running: Stoppable | undefined;
  let stopping: Promise<void> | undefined;
  let starting = true;
  const shutdown = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn('received second signal; exiting immediately', { signal: goSignalNames[signal] ?? signal });
      log.flush();
      process.exit(128 + (signalNumbers[signal] ?? 0));
    }
    log.info('received signal; shutting down', { signal: goSignalNames[signal] ?? signal });
    stopAndExit();
  };
  const stopAndExit = () => {
    stopping = (async () => {
      // If the member is still starting, let it finish first; then stop it.
      while (starting) await new Promise((r) => setTimeout(r, 10));
      if (running) await running.stop();
    })().then(
      () => { log.flush(); process.exit(0); },
      (err: unknown) => {
        log.error('failed to stop cleanly', { error: err instanceof Error ? err : String(err) });
        log.flush();
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);

  holdThreadNice(threadNice, log);
  try {
    const start = opts.startServer ?? (await loadStartServer());
    running = await start(config, log);
  } catch (err) {
    starting = false;
    log.warn('failed to start etcd', { error: err instanceof Error ? err : String(err) });
    if (stopping) {
      log.flush();
      return undefined; // the signal handler exits
    }
    // etcdmain then ends with a fatal "discovery failed" (but for its --initial-cluster hints).
    const text = err instanceof Error ? err.message : String(err);
    if (!(text.includes('include') && text.includes('--initial-cluster'))) return exitFatal(log, 'discovery failed', { error: text });
    log.flush();
    return 1;
  }
  starting = false;
  void running.removed?.then(() => { if (!stopping) stopAndExit(); });
  return undefined;
}

/** Logs etcd's fatal line and gives the exit code (etcd exits 1 after a zap Fatal). */
function exitFatal(log: Logger, msg: string, fields: Record<string, string>): number {
  log.log('fatal', msg, fields);
  log.flush();
  return 1;
}

/** etcd's wal.Exist: the WAL dir holds a WAL file (the test parseConcordArgs makes too). */
function defaultWalExists(dir: string): boolean {
  try {
    return readdirSync(dir).some((n) => n.endsWith('.wal'));
  } catch {
    return false;
  }
}

/**
 * The program: bin/concord.js calls this. The module itself runs nothing on import (tests
 * import runConcord), so no guess from process.argv[1] about how it was started is needed:
 * npx, node_modules/.bin symlinks and global installs all go through the bin file.
 */
export async function main(): Promise<void> {
  // Stack traces (and log callers) name the TypeScript sources.
  process.setSourceMapsEnabled(true);
  const code = await runConcord(process.argv.slice(2), process.env);
  if (code !== undefined) process.exit(code);
}
