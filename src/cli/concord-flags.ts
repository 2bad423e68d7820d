/**
 * `concord`'s command line: etcd 3.4's flags, their ETCD_* environment variables and
 * --config-file, parsed and validated as etcd does (etcdmain/config.go, embed/config.go
 * Validate, pkg/flags), with etcd's exit codes and error texts, into a ServerConfig.
 *
 * Pure apart from reading the config file and asking whether the WAL dir holds a WAL (both
 * injectable): parseConcordArgs returns what to print and log, and the caller does it.
 *
 * Where Concord departs from etcd 3.4, on purpose:
 * - logs are always zap-style JSON; `--logger capnslog` (etcd's default) is accepted and
 *   treated as zap, without etcd's deprecation banner.
 * - `--debug` sets the log level to debug (etcd 3.4 does so only under capnslog).
 * - messages etcd prints through capnslog (env vars used, config file loaded, errors) become
 *   JSON log records with etcd 3.5's zap wording for the same events.
 * - discovery (--discovery, --discovery-srv) and the v2 proxy are refused / ignored.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { AuthTokenFlagError, parseAuthTokenFlag, type AuthTokenFlag } from './auth-token-flag.js';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { defaultWatchProgressNotifyIntervalMs, type ServerConfig } from '../server/config.js';
import type { LogRecord } from '../log/index.js';
import { logLevels } from '../log/index.js';
import {
  type FlagDef, type GoUrl, FlagError, HelpRequested, parseGoFlags, goQuote,
  stringValue, boolValue, uintValue, intValue, uint32Value, durationValue, selectValue,
  uniqueStringsValue, stringsValue, ignoredValue, urlsValue, parseEtcdUrls, parseUrlsMap,
  parseGoInt, parseGoDuration, splitHostPort,
} from './go-flags.js';
import { usageLine, flagsLine } from './help.js';
import { versionText } from './version.js';

/** `yaml` is read only for --config-file: loaded (it is CommonJS) when a config file is parsed. */
const loadYaml = (): typeof import('yaml') => createRequire(import.meta.url)('yaml');

export type ParseResult =
  | {
    kind: 'run';
    config: ServerConfig;
    /** Records to log, in order (env vars used, config file loaded, defaults applied...). */
    logs: LogRecord[];
    /** Raw text etcd prints to stderr before its logger exists (deprecation banners). */
    stderr?: string;
    /** Flags (or config-file keys) given that Concord accepts but does not act on. */
    unsupported: string[];
  }
  | { kind: 'exit'; code: number; stdout?: string; stderr?: string; logs?: LogRecord[] };

export interface ParseIo {
  readFile(path: string): string;
  /** Whether `walDir` holds WAL files (etcd's wal.Exist: the member is initialized). */
  walExists(walDir: string): boolean;
}

const defaultIo: ParseIo = {
  readFile: (p) => readFileSync(p, 'utf8'),
  walExists(dir) {
    try { return readdirSync(dir).some((n) => n.endsWith('.wal')); } catch { return false; }
  },
};

const defaultListenPeerUrls = 'http://localhost:2380';
const defaultListenClientUrls = 'http://localhost:2379';
const defaultName = 'default';
const defaultInitialCluster = `${defaultName}=${defaultListenPeerUrls}`;
const maxElectionMs = 50000;

// ---- the flag set (etcdmain/config.go newConfig), every flag etcd 3.4 defines -------------

const u = (s: string): GoUrl[] => parseEtcdUrls(s.split(','));
const flag = <T>(name: string, value: FlagDef<T>['value'], def: T): FlagDef => ({ name, value, default: def }) as FlagDef;

const ignoredFlags = [
  'cluster-active-size', 'cluster-remove-delay', 'cluster-sync-interval', 'config', 'force',
  'max-result-buffer', 'max-retry-attempts', 'peer-heartbeat-interval', 'peer-election-timeout',
  'retry-interval', 'snapshot', 'v', 'vv', 'test.coverprofile', 'test.outputdir',
];

export const etcdFlags: readonly FlagDef[] = [
  flag('config-file', stringValue, ''),
  flag('data-dir', stringValue, ''),
  flag('wal-dir', stringValue, ''),
  flag('listen-peer-urls', urlsValue(['']), u(defaultListenPeerUrls)),
  flag('listen-client-urls', urlsValue(['']), u(defaultListenClientUrls)),
  flag('listen-metrics-urls', urlsValue(['']), [] as GoUrl[]),
  flag('max-snapshots', uintValue, 5),
  flag('max-wals', uintValue, 5),
  flag('name', stringValue, defaultName),
  flag('snapshot-count', uintValue, 100000),
  flag('heartbeat-interval', uintValue, 100),
  flag('election-timeout', uintValue, 1000),
  flag('initial-election-tick-advance', boolValue, true),
  flag('quota-backend-bytes', intValue, 0),
  flag('backend-batch-interval', durationValue, 0),
  flag('backend-batch-limit', intValue, 0),
  flag('max-txn-ops', uintValue, 128),
  flag('max-request-bytes', uintValue, 1572864),
  flag('grpc-keepalive-min-time', durationValue, 5000),
  flag('grpc-keepalive-interval', durationValue, 7_200_000),
  flag('grpc-keepalive-timeout', durationValue, 20000),
  flag('max-concurrent-streams', uint32Value, 4294967295),
  flag('initial-advertise-peer-urls', urlsValue(['']), u(defaultListenPeerUrls)),
  flag('advertise-client-urls', urlsValue(['']), u(defaultListenClientUrls)),
  flag('discovery', stringValue, ''),
  flag('discovery-fallback', selectValue(['proxy', 'exit']), 'proxy'),
  flag('discovery-proxy', stringValue, ''),
  flag('discovery-srv', stringValue, ''),
  flag('discovery-srv-name', stringValue, ''),
  flag('initial-cluster', stringValue, defaultInitialCluster),
  flag('initial-cluster-token', stringValue, 'etcd-cluster'),
  flag('initial-cluster-state', selectValue(['new', 'existing']), 'new'),
  flag('strict-reconfig-check', boolValue, true),
  flag('auto-promote-learners', boolValue, false), // Concord's: etcd promised it and never shipped it
  flag('enable-v2', boolValue, false),
  flag('pre-vote', boolValue, false),
  flag('proxy', selectValue(['off', 'readonly', 'on']), 'off'),
  flag('proxy-failure-wait', uintValue, 5000),
  flag('proxy-refresh-interval', uintValue, 30000),
  flag('proxy-dial-timeout', uintValue, 1000),
  flag('proxy-write-timeout', uintValue, 5000),
  flag('proxy-read-timeout', uintValue, 0),
  flag('cert-file', stringValue, ''),
  flag('key-file', stringValue, ''),
  flag('client-cert-auth', boolValue, false),
  flag('client-crl-file', stringValue, ''),
  flag('client-cert-allowed-hostname', stringValue, ''),
  flag('trusted-ca-file', stringValue, ''),
  flag('auto-tls', boolValue, false),
  flag('peer-cert-file', stringValue, ''),
  flag('peer-key-file', stringValue, ''),
  flag('peer-client-cert-auth', boolValue, false),
  flag('peer-trusted-ca-file', stringValue, ''),
  flag('peer-auto-tls', boolValue, false),
  flag('peer-crl-file', stringValue, ''),
  flag('peer-cert-allowed-cn', stringValue, ''),
  flag('peer-cert-allowed-hostname', stringValue, ''),
  flag('cipher-suites', stringsValue, [] as string[]),
  flag('tls-min-version', stringValue, 'TLS1.2'),
  flag('tls-max-version', stringValue, ''),
  flag('experimental-peer-skip-client-san-verification', boolValue, false),
  flag('cors', urlsValue(['*']), [] as GoUrl[]),
  flag('host-whitelist', uniqueStringsValue, ['*']),
  flag('logger', stringValue, 'capnslog'),
  flag('log-output', uniqueStringsValue, ['default']),
  flag('log-outputs', uniqueStringsValue, ['default']),
  flag('debug', boolValue, false),
  flag('log-level', stringValue, 'info'),
  flag('log-package-levels', stringValue, ''),
  flag('version', boolValue, false),
  flag('auto-compaction-retention', stringValue, '0'),
  flag('auto-compaction-mode', stringValue, 'periodic'),
  flag('enable-pprof', boolValue, false),
  flag('metrics', stringValue, 'basic'),
  flag('auth-token', stringValue, 'simple'),
  flag('bcrypt-cost', uintValue, 10),
  flag('auth-token-ttl', uintValue, 300),
  flag('enable-grpc-gateway', boolValue, true),
  flag('experimental-initial-corrupt-check', boolValue, false),
  flag('experimental-corrupt-check-time', durationValue, 0),
  flag('experimental-enable-v2v3', stringValue, ''),
  flag('experimental-backend-bbolt-freelist-type', stringValue, ''),
  flag('experimental-enable-lease-checkpoint', boolValue, false),
  flag('experimental-enable-lease-checkpoint-persist', boolValue, false),
  flag('experimental-compaction-batch-limit', intValue, 0),
  flag('experimental-watch-progress-notify-interval', durationValue, 0),
  flag('experimental-warning-apply-duration', durationValue, 100),
  flag('unsafe-no-fsync', boolValue, false),
  flag('force-new-cluster', boolValue, false),
  ...ignoredFlags.map((n) => flag(n, ignoredValue, false)),
];

/** Flags (and config-file keys) whose value reaches ServerConfig or this parser's checks. */
const supported = new Set([
  'config-file', 'data-dir', 'wal-dir', 'listen-peer-urls', 'listen-client-urls', 'listen-metrics-urls',
  'max-snapshots', 'max-wals', 'name', 'snapshot-count', 'heartbeat-interval', 'election-timeout',
  'initial-election-tick-advance', 'quota-backend-bytes', 'max-txn-ops', 'max-request-bytes', 'backend-batch-interval', 'backend-batch-limit',
  'initial-advertise-peer-urls', 'advertise-client-urls', 'initial-cluster', 'initial-cluster-token',
  'initial-cluster-state', 'strict-reconfig-check', 'auto-promote-learners', 'enable-v2', 'pre-vote', 'cert-file', 'key-file',
  'enable-grpc-gateway', 'metrics',
  'client-cert-auth', 'trusted-ca-file', 'auto-tls', 'client-crl-file', 'client-cert-allowed-hostname',
  'cipher-suites', 'tls-min-version', 'tls-max-version', 'peer-cert-file', 'peer-key-file',
  'peer-client-cert-auth', 'peer-trusted-ca-file', 'peer-auto-tls', 'peer-crl-file', 'peer-cert-allowed-cn', 'peer-cert-allowed-hostname', 'logger', 'log-output', 'log-outputs',
  'debug', 'log-level', 'version', 'auto-compaction-retention', 'auto-compaction-mode',
  'unsafe-no-fsync', 'force-new-cluster', 'experimental-initial-corrupt-check', 'experimental-corrupt-check-time', 'client-transport-security', 'peer-transport-security',
  'proxy', // 'off' is the only value Concord runs with; checked below
  'experimental-watch-progress-notify-interval',
  'grpc-keepalive-min-time', 'grpc-keepalive-interval', 'grpc-keepalive-timeout',
  'experimental-enable-lease-checkpoint', 'experimental-enable-lease-checkpoint-persist',
  'auth-token', 'bcrypt-cost', 'auth-token-ttl',
  'cors', 'host-whitelist', 'max-concurrent-streams',
]);

/** etcd's flags.FlagToEnv: some-flag -> ETCD_SOME_FLAG. */
export function flagToEnv(name: string): string {
  return 'ETCD_' + name.replace(/-/g, '_').toUpperCase();
}

// ---- the embed.Config equivalent ---------------------------------------------------------

interface TlsInfo { certFile: string; keyFile: string; clientCertAuth: boolean; trustedCaFile: string }

/** etcd's embed.Config, the fields Concord reads. URL lists are `null` when unset (Go nil). */
interface EtcdConfig {
  name: string; dir: string; walDir: string;
  lpUrls: GoUrl[]; lcUrls: GoUrl[]; apUrls: GoUrl[]; acUrls: GoUrl[] | null; metricsUrls: GoUrl[];
  maxSnapFiles: number; maxWalFiles: number; snapshotCount: number; tickMs: number; electionMs: number;
  initialElectionTickAdvance: boolean; quotaBackendBytes: number; maxTxnOps: number; maxRequestBytes: number;
  /** --backend-batch-interval (ms) and --backend-batch-limit; 0: the backend's defaults. */
  backendBatchIntervalMs: number; backendBatchLimit: number;
  clusterState: string; initialCluster: string; initialClusterToken: string; durl: string; dnsCluster: string;
  strictReconfigCheck: boolean; autoPromoteLearners: boolean; enableV2: boolean; preVote: boolean; enableGrpcGateway: boolean; metrics: string;
  autoCompactionMode: string; autoCompactionRetention: string;
  logger: string; logLevel: string; logOutputs: string[]; deprecatedLogOutput: string[]; debug: boolean; logPkgLevels: string;
  clientTls: TlsInfo; peerTls: TlsInfo; clientAutoTls: boolean; peerAutoTls: boolean;
  grpcKeepaliveMinTimeMs: number; grpcKeepaliveIntervalMs: number; grpcKeepaliveTimeoutMs: number;
  clientCrlFile: string; clientAllowedHostname: string;
  peerCrlFile: string; peerAllowedCn: string; peerAllowedHostname: string; cipherSuites: string[]; tlsMinVersion: string; tlsMaxVersion: string;
  unsafeNoFsync: boolean; forceNewCluster: boolean; proxy: string;
  /** --experimental-initial-corrupt-check; --experimental-corrupt-check-time (ms, 0 = off). */
  initialCorruptCheck: boolean; corruptCheckTimeMs: number;
  leaseCheckpoint: boolean; leaseCheckpointPersist: boolean;
  /** ms; 0 = etcd's default (10 minutes). */
  watchProgressNotifyIntervalMs: number;
  authToken: string; bcryptCost: number; authTokenTtl: number;
  /** --cors ("*": any origin), --host-whitelist ("*": any host), --max-concurrent-streams. */
  cors: string[]; hostWhitelist: string[]; maxConcurrentStreams: number;
}

function newEtcdConfig(): EtcdConfig {
  return {
    name: defaultName, dir: '', walDir: '',
    lpUrls: u(defaultListenPeerUrls), lcUrls: u(defaultListenClientUrls),
    apUrls: u(defaultListenPeerUrls), acUrls: u(defaultListenClientUrls), metricsUrls: [],
    maxSnapFiles: 5, maxWalFiles: 5, snapshotCount: 100000, tickMs: 100, electionMs: 1000,
    initialElectionTickAdvance: true, quotaBackendBytes: 0, maxTxnOps: 128, maxRequestBytes: 1572864,
    backendBatchIntervalMs: 0, backendBatchLimit: 0,
    clusterState: 'new', initialCluster: defaultInitialCluster, initialClusterToken: 'etcd-cluster', durl: '', dnsCluster: '',
    strictReconfigCheck: true, autoPromoteLearners: false, enableV2: false, preVote: false, enableGrpcGateway: true, metrics: 'basic',
    autoCompactionMode: '', autoCompactionRetention: '',
    logger: 'capnslog', logLevel: 'info', logOutputs: ['default'], deprecatedLogOutput: ['default'], debug: false, logPkgLevels: '',
    clientTls: { certFile: '', keyFile: '', clientCertAuth: false, trustedCaFile: '' },
    peerTls: { certFile: '', keyFile: '', clientCertAuth: false, trustedCaFile: '' },
    clientAutoTls: false, peerAutoTls: false, grpcKeepaliveMinTimeMs: 5000, grpcKeepaliveIntervalMs: 7_200_000,
    grpcKeepaliveTimeoutMs: 20_000, clientCrlFile: '', clientAllowedHostname: '', peerCrlFile: '', peerAllowedCn: '', peerAllowedHostname: '', cipherSuites: [],
    tlsMinVersion: 'TLS1.2', tlsMaxVersion: '', unsafeNoFsync: false, forceNewCluster: false, proxy: 'off',
    initialCorruptCheck: false, corruptCheckTimeMs: 0,
    leaseCheckpoint: false, leaseCheckpointPersist: false, watchProgressNotifyIntervalMs: 0,
    authToken: 'simple', bcryptCost: 10, authTokenTtl: 300,
    cors: ['*'], hostWhitelist: ['*'], maxConcurrentStreams: 4294967295,
  };
}

/** An error etcd reports and exits 1 on; `logs` are what it logs (with zap) when it does. */
class ExitError extends Error {
  constructor(readonly result: ParseResult & { kind: 'exit' }) { super('exit'); }
}

const verifyFailed = (error: string, logs: LogRecord[] = []): ExitError =>
  new ExitError({ kind: 'exit', code: 1, logs: [...logs, { level: 'warn', msg: 'failed to verify flags', fields: { error } }] });

// ---- command line + environment (configFromCmdLine) --------------------------------------

function configFromCmdLine(values: Map<string, unknown>, set: Set<string>, env: Readonly<Record<string, string | undefined>>,
  logs: LogRecord[]): EtcdConfig {
  // pkg/flags SetFlagsFromEnv: env fills flags not given on the command line; a flag given
  // both ways is a fatal conflict; unknown ETCD_* variables are warned about.
  const cmdline = new Set(set);
  const used = new Set<string>();
  let envError: string | undefined;
  for (const def of [...etcdFlags].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const key = flagToEnv(def.name);
    if (cmdline.has(def.name)) continue;
    const val = env[key];
    if (val === undefined || val === '') continue;
    used.add(key);
    try {
      values.set(def.name, def.value.parse(val, values.get(def.name)));
      set.add(def.name);
    } catch (e) {
      envError = `invalid value ${goQuote(val)} for ${key}: ${(e as Error).message}`;
      continue;
    }
    logs.push({ level: 'info', msg: 'recognized and used environment variable', fields: { 'variable-name': key, 'variable-value': val } });
  }
  for (const [key, val] of Object.entries(env)) {
    if (val === undefined || used.has(key)) continue;
    const shadowed = etcdFlags.find((d) => cmdline.has(d.name) && flagToEnv(d.name) === key);
    if (shadowed) {
      throw new ExitError({
        kind: 'exit', code: 1, logs: [...logs, {
          level: 'fatal',
          msg: 'conflicting environment variable is shadowed by corresponding command-line flag (either unset environment variable or disable flag)',
          fields: { 'environment-variable': key },
        }],
      });
    }
    if (key.startsWith('ETCD_')) logs.push({ level: 'warn', msg: 'unrecognized environment variable', fields: { 'environment-variable': `${key}=${val}` } });
  }
  if (envError !== undefined) throw verifyFailed(envError, logs);

  for (const name of ignoredFlags) {
    if (set.has(name)) logs.push({ level: 'warn', msg: `flag "-${name}" is no longer supported - ignoring.` });
  }

  const v = <T>(name: string) => values.get(name) as T;
  const ec = newEtcdConfig();
  ec.name = v('name'); ec.dir = v('data-dir'); ec.walDir = v('wal-dir');
  ec.lpUrls = v('listen-peer-urls'); ec.lcUrls = v('listen-client-urls');
  ec.apUrls = v('initial-advertise-peer-urls'); ec.acUrls = v('advertise-client-urls');
  ec.metricsUrls = v('listen-metrics-urls');
  ec.maxSnapFiles = v('max-snapshots'); ec.maxWalFiles = v('max-wals');
  ec.snapshotCount = v('snapshot-count'); ec.tickMs = v('heartbeat-interval'); ec.electionMs = v('election-timeout');
  ec.initialElectionTickAdvance = v('initial-election-tick-advance');
  ec.backendBatchIntervalMs = v('backend-batch-interval'); ec.backendBatchLimit = v('backend-batch-limit');
  ec.quotaBackendBytes = v('quota-backend-bytes'); ec.maxTxnOps = v('max-txn-ops'); ec.maxRequestBytes = v('max-request-bytes');
  ec.clusterState = v('initial-cluster-state'); ec.initialCluster = v('initial-cluster');
  ec.initialClusterToken = v('initial-cluster-token'); ec.durl = v('discovery'); ec.dnsCluster = v('discovery-srv');
  ec.strictReconfigCheck = v('strict-reconfig-check'); ec.autoPromoteLearners = v('auto-promote-learners'); ec.enableV2 = v('enable-v2'); ec.preVote = v('pre-vote');
  ec.enableGrpcGateway = v('enable-grpc-gateway'); ec.metrics = v('metrics');
  ec.autoCompactionMode = v('auto-compaction-mode'); ec.autoCompactionRetention = v('auto-compaction-retention');
  ec.logger = v('logger'); ec.logLevel = v('log-level'); ec.logOutputs = v('log-outputs');
  ec.deprecatedLogOutput = v('log-output'); ec.debug = v('debug'); ec.logPkgLevels = v('log-package-levels');
  ec.clientTls = { certFile: v('cert-file'), keyFile: v('key-file'), clientCertAuth: v('client-cert-auth'), trustedCaFile: v('trusted-ca-file') };
  ec.peerTls = { certFile: v('peer-cert-file'), keyFile: v('peer-key-file'), clientCertAuth: v('peer-client-cert-auth'), trustedCaFile: v('peer-trusted-ca-file') };
  ec.clientAutoTls = v('auto-tls'); ec.peerAutoTls = v('peer-auto-tls');
  ec.grpcKeepaliveMinTimeMs = v('grpc-keepalive-min-time'); ec.grpcKeepaliveIntervalMs = v('grpc-keepalive-interval');
  ec.grpcKeepaliveTimeoutMs = v('grpc-keepalive-timeout');
  ec.clientCrlFile = v('client-crl-file'); ec.clientAllowedHostname = v('client-cert-allowed-hostname');
  ec.peerCrlFile = v('peer-crl-file'); ec.peerAllowedCn = v('peer-cert-allowed-cn'); ec.peerAllowedHostname = v('peer-cert-allowed-hostname');
  ec.cipherSuites = v('cipher-suites'); ec.tlsMinVersion = v('tls-min-version'); ec.tlsMaxVersion = v('tls-max-version');
  ec.unsafeNoFsync = v('unsafe-no-fsync'); ec.forceNewCluster = v('force-new-cluster'); ec.proxy = v('proxy');
  ec.leaseCheckpoint = v('experimental-enable-lease-checkpoint');
  ec.initialCorruptCheck = v('experimental-initial-corrupt-check'); ec.corruptCheckTimeMs = v('experimental-corrupt-check-time');
  ec.leaseCheckpointPersist = v('experimental-enable-lease-checkpoint-persist');
  ec.watchProgressNotifyIntervalMs = v('experimental-watch-progress-notify-interval');
  ec.authToken = v('auth-token'); ec.bcryptCost = v('bcrypt-cost'); ec.authTokenTtl = v('auth-token-ttl');
  const corsUrls = v<GoUrl[]>('cors'); // empty: the flag's "*" (etcd's default)
  if (corsUrls.length > 0) ec.cors = corsUrls.map((x) => x.text);
  ec.hostWhitelist = v('host-whitelist'); ec.maxConcurrentStreams = v('max-concurrent-streams');

  // Listening on chosen client URLs without saying what to advertise is an error (below).
  if (set.has('listen-client-urls') && !set.has('advertise-client-urls')) ec.acUrls = null;
  // Discovery replaces the default initial cluster.
  if ((ec.durl !== '' || ec.dnsCluster !== '' || values.get('discovery-srv-name') !== '') && !set.has('initial-cluster')) ec.initialCluster = '';
  return ec;
}

// ---- config file (embed.ConfigFromFile) ----------------------------------------------------

type GoType = 'string' | 'bool' | 'uint64' | 'uint' | 'int64' | 'int' | 'uint32' | 'time.Duration' | '[]string';

/** configYAML's fields: yaml key -> Go type (embed/config.go json tags). */
const yamlFields: Record<string, GoType> = {
  'name': 'string', 'data-dir': 'string', 'wal-dir': 'string', 'snapshot-count': 'uint64',
  'max-snapshots': 'uint', 'max-wals': 'uint', 'heartbeat-interval': 'uint', 'election-timeout': 'uint',
  'initial-election-tick-advance': 'bool', 'backend-batch-interval': 'time.Duration', 'backend-batch-limit': 'int',
  'quota-backend-bytes': 'int64', 'max-txn-ops': 'uint', 'max-request-bytes': 'uint', 'max-concurrent-streams': 'uint32',
  'cipher-suites': '[]string', 'initial-cluster-state': 'string', 'discovery-srv': 'string', 'discovery-srv-name': 'string',
  'discovery-proxy': 'string', 'discovery': 'string', 'initial-cluster': 'string', 'initial-cluster-token': 'string',
  'strict-reconfig-check': 'bool', 'auto-promote-learners': 'bool', 'enable-v2': 'bool', 'auto-compaction-mode': 'string', 'auto-compaction-retention': 'string',
  'grpc-keepalive-min-time': 'time.Duration', 'grpc-keepalive-interval': 'time.Duration', 'grpc-keepalive-timeout': 'time.Duration',
  'pre-vote': 'bool', 'auth-token': 'string', 'bcrypt-cost': 'uint', 'auth-token-ttl': 'uint',
  'experimental-initial-corrupt-check': 'bool', 'experimental-corrupt-check-time': 'time.Duration',
  'experimental-enable-v2v3': 'string', 'experimental-backend-bbolt-freelist-type': 'string',
  'experimental-enable-lease-checkpoint': 'bool', 'experimental-enable-lease-checkpoint-persist': 'bool',
  'experimental-compaction-batch-limit': 'int', 'experimental-watch-progress-notify-interval': 'time.Duration',
  'experimental-warning-apply-duration': 'time.Duration', 'force-new-cluster': 'bool', 'enable-pprof': 'bool',
  'metrics': 'string', 'listen-metrics-urls': 'string', 'logger': 'string', 'log-level': 'string',
  'log-outputs': '[]string', 'enable-grpc-gateway': 'bool', 'log-output': '[]string', 'debug': 'bool',
  'log-package-levels': 'string', 'unsafe-no-fsync': 'bool', 'listen-peer-urls': 'string',
  'listen-client-urls': 'string', 'initial-advertise-peer-urls': 'string', 'advertise-client-urls': 'string',
  'cors': 'string', 'host-whitelist': 'string',
};
const securityFields: Record<string, GoType> = {
  'cert-file': 'string', 'key-file': 'string', 'client-cert-auth': 'bool', 'trusted-ca-file': 'string', 'auto-tls': 'bool',
};

function jsonKind(v: unknown): string {
  if (typeof v === 'string') return 'string';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return 'number';
  if (Array.isArray(v)) return 'array';
  return 'object';
}

/** encoding/json's decoding of one value into a Go type; throws its error text. */
function decodeGo(v: unknown, type: GoType, struct: string, key: string): unknown {
  const fail = (what: string) => new Error(
    `error unmarshaling JSON: while decoding JSON: json: cannot unmarshal ${what} into Go struct field ${struct}.${key} of type ${type}`);
  switch (type) {
    case 'string': if (typeof v !== 'string') throw fail(jsonKind(v)); return v;
    case 'bool': if (typeof v !== 'boolean') throw fail(jsonKind(v)); return v;
    case '[]string':
      if (!Array.isArray(v)) throw fail(jsonKind(v));
      return v.map((x) => { if (typeof x !== 'string') throw fail(jsonKind(x)); return x; });
    default: {
      if (typeof v !== 'number') throw fail(jsonKind(v));
      const signed = !type.startsWith('uint');
      const bits = type === 'uint32' ? 32 : 64;
      if (!Number.isInteger(v) || (!signed && v < 0) || parseGoInt(String(BigInt(v)), { signed, bits }).error) {
        throw fail(`number ${String(v)}`);
      }
      return type === 'time.Duration' ? v / 1e6 : v; // Durations are nanoseconds in JSON
    }
  }
}

function configFromFile(path: string, io: ParseIo, logs: LogRecord[]): { ec: EtcdConfig; keys: string[] } {
  let text: string;
  try { text = io.readFile(path); } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ENOENT' ? 'no such file or directory' : err.code === 'EACCES' ? 'permission denied'
      : err.code === 'EISDIR' ? 'is a directory' : err.message;
    throw verifyFailed(`open ${path}: ${why}`, logs);
  }
  let doc: unknown;
  try {
    // go-yaml v2 (what sigs.k8s.io/yaml uses) reads YAML 1.1: yes/no/on/off are booleans.
    doc = loadYaml().parse(text, { version: '1.1', intAsBigInt: false, uniqueKeys: false });
  } catch (e) {
    const msg = e instanceof loadYaml().YAMLParseError ? e.message.split('\n')[0]! : (e as Error).message;
    throw verifyFailed(`error converting YAML to JSON: yaml: ${msg}`, logs);
  }
  const obj: Record<string, unknown> = doc === null || doc === undefined ? {} : (doc as Record<string, unknown>);
  if (typeof obj !== 'object' || Array.isArray(obj)) {
    throw verifyFailed(`error unmarshaling JSON: while decoding JSON: json: cannot unmarshal ${jsonKind(obj)} into Go value of type embed.configYAML`, logs);
  }
  const ec = newEtcdConfig();
  const got: Record<string, unknown> = {};
  const keys: string[] = [];
  try {
    for (const [key, raw] of Object.entries(obj)) {
      keys.push(key);
      if (raw === null) continue;
      if (key === 'client-transport-security' || key === 'peer-transport-security') {
        if (typeof raw !== 'object' || Array.isArray(raw)) {
          throw new Error(`error unmarshaling JSON: while decoding JSON: json: cannot unmarshal ${jsonKind(raw)} into Go struct field configYAML.${key} of type embed.securityConfig`);
        }
        const sec: Record<string, unknown> = {};
        for (const [k, x] of Object.entries(raw as Record<string, unknown>)) {
          if (x !== null && securityFields[k]) sec[k] = decodeGo(x, securityFields[k]!, 'securityConfig', k);
        }
        got[key] = sec;
        continue;
      }
      const type = yamlFields[key];
      if (type) got[key] = decodeGo(raw, type, 'configYAML', key);
    }
  } catch (e) {
    throw verifyFailed((e as Error).message, logs);
  }
  const g = <T>(k: string, d: T): T => (k in got ? (got[k] as T) : d);
  ec.name = g('name', ec.name); ec.dir = g('data-dir', ec.dir); ec.walDir = g('wal-dir', ec.walDir);
  ec.snapshotCount = g('snapshot-count', ec.snapshotCount); ec.maxSnapFiles = g('max-snapshots', ec.maxSnapFiles);
  ec.maxWalFiles = g('max-wals', ec.maxWalFiles); ec.tickMs = g('heartbeat-interval', ec.tickMs);
  ec.electionMs = g('election-timeout', ec.electionMs);
  ec.initialElectionTickAdvance = g('initial-election-tick-advance', ec.initialElectionTickAdvance);
  ec.quotaBackendBytes = g('quota-backend-bytes', ec.quotaBackendBytes); ec.maxTxnOps = g('max-txn-ops', ec.maxTxnOps);
  ec.maxRequestBytes = g('max-request-bytes', ec.maxRequestBytes);
  ec.backendBatchIntervalMs = g('backend-batch-interval', ec.backendBatchIntervalMs); ec.backendBatchLimit = g('backend-batch-limit', ec.backendBatchLimit);
  ec.clusterState = g('initial-cluster-state', ec.clusterState); ec.initialCluster = g('initial-cluster', ec.initialCluster);
  ec.initialClusterToken = g('initial-cluster-token', ec.initialClusterToken);
  ec.durl = g('discovery', ec.durl); ec.dnsCluster = g('discovery-srv', ec.dnsCluster);
  ec.strictReconfigCheck = g('strict-reconfig-check', ec.strictReconfigCheck); ec.autoPromoteLearners = g('auto-promote-learners', ec.autoPromoteLearners); ec.enableV2 = g('enable-v2', ec.enableV2);
  ec.preVote = g('pre-vote', ec.preVote);
  ec.enableGrpcGateway = g('enable-grpc-gateway', ec.enableGrpcGateway); ec.metrics = g('metrics', ec.metrics);
  ec.autoCompactionMode = g('auto-compaction-mode', ec.autoCompactionMode);
  ec.autoCompactionRetention = g('auto-compaction-retention', ec.autoCompactionRetention);
  ec.logger = g('logger', ec.logger); ec.logLevel = g('log-level', ec.logLevel);
  ec.logOutputs = g('log-outputs', ec.logOutputs); ec.deprecatedLogOutput = g('log-output', ec.deprecatedLogOutput);
  ec.debug = g('debug', ec.debug); ec.logPkgLevels = g('log-package-levels', ec.logPkgLevels);
  ec.unsafeNoFsync = g('unsafe-no-fsync', ec.unsafeNoFsync); ec.forceNewCluster = g('force-new-cluster', ec.forceNewCluster);
  ec.leaseCheckpoint = g('experimental-enable-lease-checkpoint', ec.leaseCheckpoint);
  ec.initialCorruptCheck = g('experimental-initial-corrupt-check', ec.initialCorruptCheck);
  ec.corruptCheckTimeMs = g('experimental-corrupt-check-time', ec.corruptCheckTimeMs);
  ec.leaseCheckpointPersist = g('experimental-enable-lease-checkpoint-persist', ec.leaseCheckpointPersist);
  ec.watchProgressNotifyIntervalMs = g('experimental-watch-progress-notify-interval', ec.watchProgressNotifyIntervalMs);
  ec.authToken = g('auth-token', ec.authToken); ec.bcryptCost = g('bcrypt-cost', ec.bcryptCost); ec.authTokenTtl = g('auth-token-ttl', ec.authTokenTtl);
  ec.maxConcurrentStreams = g('max-concurrent-streams', ec.maxConcurrentStreams);
  const hostWhitelist = g('host-whitelist', '');
  if (hostWhitelist !== '') ec.hostWhitelist = uniqueStringsValue.parse(hostWhitelist, ec.hostWhitelist);

  // URL lists are comma-separated strings in the file; a bad one is fatal before validation,
  // printed raw (etcd's own text, including its "advertise-peer-urls" slip for client URLs).
  const urlKeys: [string, 'lpUrls' | 'lcUrls' | 'apUrls' | 'acUrls' | 'metricsUrls', string][] = [
    ['listen-peer-urls', 'lpUrls', 'listen-peer-urls'], ['listen-client-urls', 'lcUrls', 'listen-client-urls'],
    ['initial-advertise-peer-urls', 'apUrls', 'initial-advertise-peer-urls'], ['advertise-client-urls', 'acUrls', 'advertise-peer-urls'],
    ['listen-metrics-urls', 'metricsUrls', 'listen-metrics-urls'],
  ];
  for (const [key, field, label] of urlKeys) {
    const s = got[key] as string | undefined;
    if (!s) continue;
    try { ec[field] = parseEtcdUrls(s.split(',')); } catch (e) {
      throw new ExitError({ kind: 'exit', code: 1, stderr: `unexpected error setting up ${label}: ${(e as Error).message}\n`, logs });
    }
  }
  const cors = got['cors'] as string | undefined;
  if (cors && cors !== '*') {
    // etcd builds it with NewUniqueURLsWithExceptions, which panics on a bad URL.
    try { ec.cors = parseEtcdUrls(cors.split(',')).map((x) => x.text); } catch (e) {
      throw new ExitError({ kind: 'exit', code: 2, stderr: `panic: new UniqueURLs should never fail: ${(e as Error).message}\n`, logs });
    }
  }
  if ((ec.durl !== '' || ec.dnsCluster !== '') && ec.initialCluster === defaultInitialCluster) ec.initialCluster = '';
  if (ec.clusterState === '') ec.clusterState = 'new';
  const sec = (k: string) => (got[k] ?? {}) as Record<string, unknown>;
  const tls = (s: Record<string, unknown>): TlsInfo => ({
    certFile: (s['cert-file'] as string) ?? '', keyFile: (s['key-file'] as string) ?? '',
    clientCertAuth: (s['client-cert-auth'] as boolean) ?? false, trustedCaFile: (s['trusted-ca-file'] as string) ?? '',
  });
  ec.clientTls = tls(sec('client-transport-security')); ec.peerTls = tls(sec('peer-transport-security'));
  ec.clientAutoTls = (sec('client-transport-security')['auto-tls'] as boolean) ?? false;
  ec.peerAutoTls = (sec('peer-transport-security')['auto-tls'] as boolean) ?? false;
  if (typeof obj.proxy === 'string') ec.proxy = obj.proxy;
  return { ec, keys };
}

// ---- validation (embed.Config.Validate and setupLogging) -----------------------------------

function goQuoteList(xs: readonly string[]): string {
  return `[${xs.map(goQuote).join(' ')}]`;
}

/** setupLogging's checks; returns raw stderr banners etcd prints. Throws ExitError. */
function checkLogging(ec: EtcdConfig, logs: LogRecord[]): string {
  let banner = '';
  const l1 = ec.deprecatedLogOutput.length;
  const l2 = ec.logOutputs.length;
  const same = l1 === l2 && ec.deprecatedLogOutput.every((x, i) => x === ec.logOutputs[i]);
  if (l1 !== l2) {
    if (l1 > l2) {
      banner += "'--log-output' flag has been deprecated! Please use '--log-outputs'!\n";
      ec.logOutputs = ec.deprecatedLogOutput;
    } else {
      ec.deprecatedLogOutput = [];
    }
  } else {
    if (l1 > 1) throw verifyFailed("both '--log-output' and '--log-outputs' are set; only set '--log-outputs'", logs);
    if (l1 < 1) throw verifyFailed("either '--log-output' or '--log-outputs' flag must be set", logs);
    if (same && ec.deprecatedLogOutput[0] !== 'default') {
      throw verifyFailed(`'--log-output=${goQuoteList(ec.deprecatedLogOutput)}' and '--log-outputs=${goQuoteList(ec.logOutputs)}' are incompatible; only set --log-outputs`, logs);
    }
    if (!(ec.deprecatedLogOutput.length === 1 && ec.deprecatedLogOutput[0] === 'default')) {
      banner += `[WARNING] Deprecated '--log-output' flag is set to ${goQuoteList(ec.deprecatedLogOutput)}\nPlease use '--log-outputs' flag\n`;
    }
  }
  if (ec.debug) banner += `[WARNING] Deprecated '--debug' flag is set to true (use '--log-level=debug' instead\n`;
  if (ec.debug && ec.logLevel !== 'debug') banner += `[WARNING] Deprecated '--debug' flag is set to true with inconsistent '--log-level=${ec.logLevel}' flag\n`;
  if (ec.logPkgLevels !== '') banner += `[WARNING] Deprecated '--log-package-levels=${ec.logPkgLevels}' flag is set; use '--logger=zap' flag instead\n`;
  switch (ec.logger) {
    case 'capnslog': {
      if (ec.logOutputs.length !== 1) {
        throw verifyFailed(`--logger=capnslog supports only 1 value in '--log-outputs', got ${goQuoteList(ec.logOutputs)}`, logs);
      }
      const out = ec.logOutputs[0]!;
      if (!['stderr', 'stdout', 'default'].includes(out)) {
        throw verifyFailed(`unknown log-output ${goQuote(out)} (only supports "default", "stderr", "stdout")`, logs);
      }
      break;
    }
    case 'zap':
      if (ec.logOutputs.length === 0) ec.logOutputs = ['default'];
      if (ec.logOutputs.length > 1 && ec.logOutputs.includes('default')) {
        throw verifyFailed('multi logoutput for "default" is not supported yet', logs);
      }
      if (!(logLevels as readonly string[]).includes(ec.logLevel)) {
        // etcd panics in logutil.ConvertToZapLevel: Go's panic exit code is 2.
        throw new ExitError({ kind: 'exit', code: 2, stderr: `panic: unknown level ${goQuote(ec.logLevel)}\n`, logs });
      }
      break;
    default:
      throw verifyFailed(`unknown logger option ${goQuote(ec.logger)}`, logs);
  }
  if (ec.logger === 'capnslog' && !(logLevels as readonly string[]).includes(ec.logLevel)) {
    // capnslog would fall back; Concord logs through zap's levels, so refuse as zap does.
    throw new ExitError({ kind: 'exit', code: 2, stderr: `panic: unknown level ${goQuote(ec.logLevel)}\n`, logs });
  }
  return banner;
}

function checkBindUrls(urls: readonly GoUrl[]): string | undefined {
  for (const url of urls) {
    if (url.scheme === 'unix' || url.scheme === 'unixs') continue;
    let host: string;
    try { host = splitHostPort(url.host).host; } catch (e) { return (e as Error).message; }
    if (host === 'localhost') continue;
    if (isIP(host) === 0) return `expected IP in URL for binding (${url.text})`;
  }
  return undefined;
}

function checkHostUrls(urls: readonly GoUrl[]): string | undefined {
  for (const url of urls) {
    let host: string;
    try { host = splitHostPort(url.host).host; } catch (e) { return (e as Error).message; }
    if (host === '') return `unexpected empty host (${url.text})`;
  }
  return undefined;
}

/** embed.Config.Validate (after setupLogging). Returns etcd's error text, or undefined. */
function validate(ec: EtcdConfig): string | undefined {
  const bind = checkBindUrls(ec.lpUrls) ?? checkBindUrls(ec.lcUrls) ?? checkBindUrls(ec.metricsUrls);
  if (bind) return bind;
  const ap = checkHostUrls(ec.apUrls);
  if (ap) return `--initial-advertise-peer-urls ${goQuote(ec.apUrls.map((x) => x.text).join(','))} must be "host:port" (${ap})`;
  const ac = checkHostUrls(ec.acUrls ?? []);
  if (ac) return `--advertise-client-urls ${goQuote((ec.acUrls ?? []).map((x) => x.text).join(','))} must be "host:port" (${ac})`;
  const nSet = [ec.durl !== '', ec.initialCluster !== '', ec.dnsCluster !== ''].filter(Boolean).length;
  if (ec.clusterState !== 'new' && ec.clusterState !== 'existing') return `unexpected clusterState ${goQuote(ec.clusterState)}`;
  if (nSet > 1) return 'multiple discovery or bootstrap flags are set. Choose one of "initial-cluster", "discovery" or "discovery-srv"';
  if (ec.tickMs <= 0) return `--heartbeat-interval must be >0 (set to ${ec.tickMs}ms)`;
  if (ec.electionMs <= 0) return `--election-timeout must be >0 (set to ${ec.electionMs}ms)`;
  if (5 * ec.tickMs > ec.electionMs) {
    return `--election-timeout[${ec.electionMs}ms] should be at least as 5 times as --heartbeat-interval[${ec.tickMs}ms]`;
  }
  if (ec.electionMs > maxElectionMs) return `--election-timeout[${ec.electionMs}ms] is too long, and should be set less than ${maxElectionMs}ms`;
  if (ec.acUrls === null) return unsetAdvertiseClientUrls;
  if (!['', 'periodic', 'revision'].includes(ec.autoCompactionMode)) return `unknown auto-compaction-mode ${goQuote(ec.autoCompactionMode)}`;
  if (ec.leaseCheckpointPersist && !ec.leaseCheckpoint) {
    return 'setting experimental-enable-lease-checkpoint-persist requires experimental-enable-lease-checkpoint';
  }
  return undefined;
}

const unsetAdvertiseClientUrls = '--advertise-client-urls is required when --listen-client-urls is set explicitly';

/**
 * embed's parseCompactionRetention: a bare non-negative integer is hours (periodic) or a
 * revision count (revision); anything else is a Go duration. Returns ms for periodic, a count
 * for revision (a duration given in revision mode counts its nanoseconds, as etcd does).
 */
export function parseCompactionRetention(mode: string, retention: string): number {
  const r = parseGoInt(retention, { signed: true, bits: 64 });
  // strconv.Atoi is base 10 only.
  if (/^[+-]?[0-9]+$/.test(retention) && r.value !== undefined && r.value >= 0) {
    if (mode === 'revision') return r.value;
    if (mode === 'periodic') return r.value * 3_600_000;
    return 0;
  }
  let ms: number;
  try { ms = parseGoDuration(retention); } catch (e) {
    throw new Error(`error parsing CompactionRetention: ${(e as Error).message}`);
  }
  return mode === 'revision' ? ms * 1e6 : ms;
}

function toUrl(g: GoUrl): URL {
  return new URL(g.text);
}

// ---- the whole ------------------------------------------------------------------------------

/**
 * Parses `argv` (without node and the script) and `env` as etcd 3.4 does.
 * 'exit': print stdout/stderr, log `logs`, exit with `code`. 'run': start with `config`.
 */
export function parseConcordArgs(argv: readonly string[], env: Readonly<Record<string, string | undefined>>,
  ioOverrides: Partial<ParseIo> = {}): ParseResult {
  const io: ParseIo = { ...defaultIo, ...ioOverrides };
  try {
    return parse(argv, env, io);
  } catch (e) {
    if (e instanceof ExitError) return e.result;
    throw e;
  }
}

function parse(argv: readonly string[], env: Readonly<Record<string, string | undefined>>, io: ParseIo): ParseResult {
  let parsed;
  try {
    parsed = parseGoFlags(etcdFlags, argv);
  } catch (e) {
    if (e instanceof HelpRequested) return { kind: 'exit', code: 0, stderr: usageLine + '\n', stdout: flagsLine + '\n' };
    if (e instanceof FlagError) return { kind: 'exit', code: 2, stderr: `${e.message}\n${usageLine}\n` };
    throw e;
  }
  const { values, set, rest } = parsed;
  const logs: LogRecord[] = [];
  if (rest.length > 0) throw verifyFailed(`'${rest[0]}' is not a valid flag`);
  if (values.get('version')) return { kind: 'exit', code: 0, stdout: versionText() };

  let configFile = values.get('config-file') as string;
  if (configFile === '') configFile = env[flagToEnv('config-file')] ?? '';
  let ec: EtcdConfig;
  let given: string[];
  if (configFile !== '') {
    logs.push({
      level: 'info',
      msg: 'loaded server configuration, other configuration command line flags and environment variables will be ignored if provided',
      fields: { path: configFile },
    });
    const r = configFromFile(configFile, io, logs);
    ec = r.ec;
    given = r.keys;
  } else {
    ec = configFromCmdLine(values, set, env, logs);
    given = [...set];
  }
  let stderr = checkLogging(ec, logs);
  if (ec.debug && ec.logLevel === 'info') ec.logLevel = 'debug';
  const err = validate(ec);
  if (err !== undefined) {
    const extra: LogRecord[] = err === unsetAdvertiseClientUrls
      ? [{ level: 'warn', msg: 'advertise client URLs are not set', fields: { error: err } }] : [];
    const ex = verifyFailed(err, logs);
    ex.result.logs!.push(...extra);
    if (stderr) ex.result.stderr = stderr;
    throw ex;
  }
  if (ec.proxy !== 'off') throw verifyFailed(`--proxy=${ec.proxy} is not supported by concord (the v2 proxy is not implemented)`, logs);

  // etcdmain: an explicit name with the default initial cluster bootstraps itself alone.
  if (ec.name !== defaultName && ec.initialCluster === defaultInitialCluster) {
    ec.initialCluster = ec.apUrls.map((x) => `${ec.name}=${x.text}`).join(',');
  }
  if (ec.dir === '') {
    ec.dir = `${ec.name}.etcd`;
    logs.push({ level: 'warn', msg: "'data-dir' was empty; using default", fields: { 'data-dir': ec.dir } });
  }

  const failedToStart = (error: string): ExitError =>
    new ExitError({
      kind: 'exit', code: 1, stderr: stderr || undefined,
      // etcdmain: embed.StartEtcd's error is logged, then fatal (under the name etcd gives it).
      logs: [...logs, { level: 'warn', msg: 'failed to start etcd', fields: { error } }, { level: 'fatal', msg: 'discovery failed', fields: { error } }],
    });

  // embed.StartEtcd: compaction retention, then (for a new member only) the initial cluster.
  const mode = ec.autoCompactionMode === '' ? 'periodic' : ec.autoCompactionMode;
  let retention: number;
  try { retention = parseCompactionRetention(ec.autoCompactionMode, ec.autoCompactionRetention || '0'); } catch (e) {
    throw failedToStart((e as Error).message);
  }
  const walDir = ec.walDir !== '' ? ec.walDir : join(ec.dir, 'member', 'wal');
  const initialized = io.walExists(walDir);
  const initialCluster = new Map<string, URL[]>();
  if (!initialized) {
    if (ec.durl !== '' || ec.dnsCluster !== '') {
      throw failedToStart('discovery (--discovery, --discovery-srv) is not supported by concord; use --initial-cluster');
    }
    try {
      for (const [name, urls] of parseUrlsMap(ec.initialCluster)) initialCluster.set(name, urls.map(toUrl));
    } catch (e) {
      throw failedToStart(`error setting up initial cluster: ${(e as Error).message}`);
    }
  }

  // etcd's NewTokenProvider: "simple", "jwt,<options>" or "" (no tokens).
  let authToken: AuthTokenFlag;
  try {
    authToken = parseAuthTokenFlag(ec.authToken, ec.authTokenTtl * 1000, (p) => readFileSync(p));
  } catch (e) {
    if (!(e instanceof AuthTokenFlagError)) throw e;
    logs.push(...e.logs);
    throw failedToStart(e.message);
  }
  logs.push(...authToken.logs);
  const unsupported = given.filter((n) => !supported.has(n) && !ignoredFlags.includes(n));
  const config: ServerConfig = {
    name: ec.name,
    dataDir: ec.dir,
    ...(ec.walDir !== '' ? { walDir: ec.walDir } : {}),
    listenClientUrls: ec.lcUrls.map(toUrl),
    advertiseClientUrls: (ec.acUrls ?? []).map(toUrl),
    listenPeerUrls: ec.lpUrls.map(toUrl),
    initialAdvertisePeerUrls: ec.apUrls.map(toUrl),
    initialCluster,
    initialClusterState: ec.clusterState as 'new' | 'existing',
    initialClusterToken: ec.initialClusterToken,
    snapshotCount: ec.snapshotCount,
    heartbeatIntervalMs: ec.tickMs,
    electionTimeoutMs: ec.electionMs,
    quotaBackendBytes: ec.quotaBackendBytes,
    maxTxnOps: ec.maxTxnOps,
    maxRequestBytes: ec.maxRequestBytes,
    autoCompactionMode: mode as 'periodic' | 'revision',
    autoCompactionRetention: retention,
    logLevel: ec.logLevel as ServerConfig['logLevel'],
    logOutputs: ec.logOutputs,
    tls: {
      clientCertAuth: ec.clientTls.clientCertAuth, trustedCaFile: ec.clientTls.trustedCaFile,
      certFile: ec.clientTls.certFile, keyFile: ec.clientTls.keyFile, autoTls: ec.clientAutoTls,
      crlFile: ec.clientCrlFile, allowedHostname: ec.clientAllowedHostname, cipherSuites: ec.cipherSuites,
      minVersion: ec.tlsMinVersion, maxVersion: ec.tlsMaxVersion,
      peerClientCertAuth: ec.peerTls.clientCertAuth, peerTrustedCaFile: ec.peerTls.trustedCaFile,
      peerCertFile: ec.peerTls.certFile, peerKeyFile: ec.peerTls.keyFile, peerAutoTls: ec.peerAutoTls,
      peerCrlFile: ec.peerCrlFile, peerAllowedCn: ec.peerAllowedCn, peerAllowedHostname: ec.peerAllowedHostname,
    },
    grpcKeepalive: { minTimeMs: ec.grpcKeepaliveMinTimeMs, intervalMs: ec.grpcKeepaliveIntervalMs, timeoutMs: ec.grpcKeepaliveTimeoutMs },
    initialElectionTickAdvance: ec.initialElectionTickAdvance,
    preVote: ec.preVote,
    strictReconfigCheck: ec.strictReconfigCheck,
    autoPromoteLearners: ec.autoPromoteLearners,
    maxSnapshots: ec.maxSnapFiles,
    maxWals: ec.maxWalFiles,
    forceNewCluster: ec.forceNewCluster,
    initialCorruptCheck: ec.initialCorruptCheck,
    corruptCheckTimeMs: ec.corruptCheckTimeMs,
    unsafeNoFsync: ec.unsafeNoFsync,
    // etcd applies each when != 0 (etcdserver/backend.go; its defaults otherwise). A negative
    // interval fires at once in Go's timer: here the shortest one.
    ...(ec.backendBatchIntervalMs !== 0 ? { backendBatchIntervalMs: Math.max(0, ec.backendBatchIntervalMs) } : {}),
    ...(ec.backendBatchLimit !== 0 ? { backendBatchLimit: ec.backendBatchLimit } : {}),
    enableV2: ec.enableV2,
    listenMetricsUrls: ec.metricsUrls.map(toUrl),
    enableGrpcGateway: ec.enableGrpcGateway,
    cors: ec.cors,
    hostWhitelist: ec.hostWhitelist,
    maxConcurrentStreams: ec.maxConcurrentStreams,
    metrics: ec.metrics,
    // etcd applies the flag only when > 0; otherwise v3rpc's default stands.
    watchProgressNotifyIntervalMs: ec.watchProgressNotifyIntervalMs > 0 ? ec.watchProgressNotifyIntervalMs : defaultWatchProgressNotifyIntervalMs,
    leaseCheckpoint: ec.leaseCheckpoint,
    leaseCheckpointPersist: ec.leaseCheckpointPersist,
    auth: { bcryptCost: ec.bcryptCost, tokenTtlMs: ec.authTokenTtl * 1000, token: authToken.config },
  };
  return { kind: 'run', config, logs, unsupported, ...(stderr ? { stderr } : {}) };
}
