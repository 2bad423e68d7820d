import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConcordArgs, parseCompactionRetention, type ParseResult } from './concord-flags.js';
import type { ServerConfig } from '../server/index.js';

const haveEtcd = spawnSync('etcd', ['--version']).status === 0;
const noWal = { walExists: () => false };

function run(argv: string[], env: Record<string, string> = {}, files: Record<string, string> = {}): ParseResult {
  return parseConcordArgs(argv, env, {
    ...noWal,
    readFile: (p) => {
      if (p in files) return files[p]!;
      throw Object.assign(new Error('nope'), { code: 'ENOENT' });
    },
  });
}

function config(argv: string[], env: Record<string, string> = {}, files: Record<string, string> = {}): ServerConfig {
  const r = run(argv, env, files);
  assert.equal(r.kind, 'run', JSON.stringify(r));
  return (r as ParseResult & { kind: 'run' }).config;
}

const hrefs = (us: URL[]) => us.map((x) => x.href);
const verifyError = (r: ParseResult) =>
  r.kind === 'exit' ? r.logs?.find((l) => l.msg === 'failed to verify flags' || l.msg === 'failed to start etcd')?.fields?.error : undefined;

test('no flags gives etcd\'s defaults', () => {
  const c = config([]);
  assert.equal(c.name, 'default');
  assert.equal(c.dataDir, 'default.etcd');
  assert.equal(c.walDir, undefined);
  assert.deepEqual(hrefs(c.listenClientUrls), ['http://localhost:2379/']);
  assert.deepEqual(hrefs(c.advertiseClientUrls), ['http://localhost:2379/']);
  assert.deepEqual(hrefs(c.listenPeerUrls), ['http://localhost:2380/']);
  assert.deepEqual(hrefs(c.initialAdvertisePeerUrls), ['http://localhost:2380/']);
  assert.deepEqual([...c.initialCluster.keys()], ['default']);
  assert.deepEqual(hrefs(c.initialCluster.get('default')!), ['http://localhost:2380/']);
  assert.equal(c.initialClusterState, 'new');
  assert.equal(c.initialClusterToken, 'etcd-cluster');
  assert.equal(c.snapshotCount, 100000);
  assert.equal(c.heartbeatIntervalMs, 100);
  assert.equal(c.electionTimeoutMs, 1000);
  assert.equal(c.quotaBackendBytes, 0);
  assert.equal(c.maxTxnOps, 128);
  assert.equal(c.maxRequestBytes, 1572864);
  assert.equal(c.autoCompactionMode, 'periodic');
  assert.equal(c.autoCompactionRetention, 0);
  assert.equal(c.logLevel, 'info');
  assert.deepEqual(c.logOutputs, ['default']);
  assert.equal(c.tls.peerAutoTls, false);
  const r = run([]) as ParseResult & { kind: 'run' };
  assert.deepEqual(r.logs, [{ level: 'warn', msg: "'data-dir' was empty; using default", fields: { 'data-dir': 'default.etcd' } }]);
});

test('Go flag syntax: -flag, --flag, --flag=value, --flag value, bare and =false booleans', () => {
  const c = config(['-name', 'n1', '--data-dir=/d', '--snapshot-count', '5', '-heartbeat-interval=50',
    '--peer-auto-tls', '--client-cert-auth=false', '--auto-tls=true', '--max-txn-ops', '0x10']);
  assert.equal(c.name, 'n1');
  assert.equal(c.dataDir, '/d');
  assert.equal(c.snapshotCount, 5);
  assert.equal(c.heartbeatIntervalMs, 50);
  assert.equal(c.tls.peerAutoTls, true);
  assert.equal(c.tls.clientCertAuth, false);
  assert.equal(c.tls.autoTls, true);
  assert.equal(c.maxTxnOps, 16); // strconv base 0, as Go's flag package
});

test('every flag the issue names is accepted', () => {
  const c = config([
    '--name', 'm', '--data-dir', '/d', '--wal-dir', '/w',
    '--listen-client-urls', 'http://127.0.0.1:2379,https://10.0.0.1:2379', '--advertise-client-urls', 'http://10.0.0.1:2379',
    '--listen-peer-urls', 'https://127.0.0.1:2380', '--initial-advertise-peer-urls', 'https://10.0.0.1:2380',
    '--initial-cluster', 'm=https://10.0.0.1:2380,o=https://10.0.0.2:2380', '--initial-cluster-state', 'existing',
    '--initial-cluster-token', 'tok', '--snapshot-count', '10', '--heartbeat-interval', '10', '--election-timeout', '50',
    '--quota-backend-bytes', '1024', '--max-txn-ops', '3', '--max-request-bytes', '100',
    '--auto-compaction-mode', 'revision', '--auto-compaction-retention', '1000', '--logger', 'zap',
    '--log-level', 'warn', '--log-outputs', 'stdout', '--enable-v2', '--cert-file', 'c', '--key-file', 'k',
    '--client-cert-auth', '--trusted-ca-file', 'ca', '--auto-tls', '--peer-cert-file', 'pc', '--peer-key-file', 'pk',
    '--peer-client-cert-auth', '--peer-trusted-ca-file', 'pca', '--peer-auto-tls',
    '--peer-crl-file', 'pcrl', '--peer-cert-allowed-cn', 'peer-cn', '--peer-cert-allowed-hostname', 'peer.example',
  ]);
  assert.equal(c.walDir, '/w');
  assert.deepEqual(hrefs(c.listenClientUrls), ['http://127.0.0.1:2379/', 'https://10.0.0.1:2379/']);
  assert.deepEqual([...c.initialCluster.keys()].sort(), ['m', 'o']);
  assert.equal(c.initialClusterState, 'existing');
  assert.equal(c.autoCompactionMode, 'revision');
  assert.equal(c.autoCompactionRetention, 1000);
  assert.equal(c.logLevel, 'warn');
  assert.deepEqual(c.logOutputs, ['stdout']);
  assert.equal(c.enableV2, true);
  assert.deepEqual(c.tls, {
    clientCertAuth: true, trustedCaFile: 'ca', certFile: 'c', keyFile: 'k', autoTls: true,
    crlFile: '', allowedHostname: '', cipherSuites: [], minVersion: 'TLS1.2', maxVersion: '',
    peerClientCertAuth: true, peerTrustedCaFile: 'pca', peerCertFile: 'pc', peerKeyFile: 'pk', peerAutoTls: true,
    peerCrlFile: 'pcrl', peerAllowedCn: 'peer-cn', peerAllowedHostname: 'peer.example',
  });
});

test('--name alone makes the initial cluster that name at the advertised peer URLs', () => {
  const c = config(['--name', 'n1', '--initial-advertise-peer-urls', 'http://127.0.0.1:32380']);
  assert.deepEqual([...c.initialCluster.keys()], ['n1']);
  assert.deepEqual(hrefs(c.initialCluster.get('n1')!), ['http://127.0.0.1:32380/']);
  assert.equal(c.dataDir, 'n1.etcd');
});

test('auto-compaction-retention: bare number is hours (periodic) or revisions; durations like 30m', () => {
  assert.equal(config(['--auto-compaction-retention', '1']).autoCompactionRetention, 3_600_000);
  assert.equal(config(['--auto-compaction-retention', '30m']).autoCompactionRetention, 1_800_000);
  assert.equal(config(['--auto-compaction-retention', '1h30m']).autoCompactionRetention, 5_400_000);
  assert.equal(config(['--auto-compaction-mode', 'revision', '--auto-compaction-retention', '100']).autoCompactionRetention, 100);
  assert.equal(parseCompactionRetention('periodic', '0'), 0);
  assert.throws(() => parseCompactionRetention('periodic', 'abc'), /error parsing CompactionRetention: time: invalid duration "abc"/);
  assert.throws(() => parseCompactionRetention('periodic', '5'.concat('x')), /time: unknown unit "x" in duration "5x"/);
});

test('ETCD_* environment variables fill flags not given, and each one used is logged', () => {
  const r = run(['--data-dir', '/d'], { ETCD_NAME: 'envname', ETCD_SNAPSHOT_COUNT: '7', ETCD_PEER_AUTO_TLS: 'true', ETCD_BOGUS: '1', PATH: '/bin' });
  assert.equal(r.kind, 'run');
  const { config: c, logs } = r as ParseResult & { kind: 'run' };
  assert.equal(c.name, 'envname');
  assert.equal(c.snapshotCount, 7);
  assert.equal(c.tls.peerAutoTls, true);
  assert.deepEqual(logs.filter((l) => l.msg === 'recognized and used environment variable').map((l) => l.fields!['variable-name']),
    ['ETCD_NAME', 'ETCD_PEER_AUTO_TLS', 'ETCD_SNAPSHOT_COUNT']);
  assert.deepEqual(logs.filter((l) => l.msg === 'unrecognized environment variable').map((l) => l.fields!['environment-variable']), ['ETCD_BOGUS=1']);
});

test('a flag given both on the command line and in ETCD_* is fatal, as in etcd 3.4', () => {
  const r = run(['--name', 'flag'], { ETCD_NAME: 'env' });
  assert.equal(r.kind, 'exit');
  assert.equal((r as { code: number }).code, 1);
  assert.equal(r.kind === 'exit' && r.logs?.at(-1)?.level, 'fatal');
  assert.equal(r.kind === 'exit' && r.logs?.at(-1)?.fields?.['environment-variable'], 'ETCD_NAME');
});

test('--config-file reads etcd\'s YAML keys and ignores other flags and env', () => {
  const yml = [
    'name: fromfile', 'data-dir: /var/lib/x', 'listen-client-urls: http://127.0.0.1:2379,http://127.0.0.1:22379',
    'advertise-client-urls: http://127.0.0.1:2379', 'initial-cluster: fromfile=http://127.0.0.1:2380',
    'initial-advertise-peer-urls: http://127.0.0.1:2380', 'listen-peer-urls: http://127.0.0.1:2380',
    'snapshot-count: 42', 'heartbeat-interval: 20', 'election-timeout: 200', 'quota-backend-bytes: 4096',
    'max-txn-ops: 9', 'max-request-bytes: 99', 'auto-compaction-mode: periodic', "auto-compaction-retention: '2'",
    'log-level: debug', 'log-outputs: [stderr]', 'enable-v2: yes',
    'peer-transport-security:', '  auto-tls: true', '  cert-file: /p.crt',
  ].join('\n');
  const r = run(['--config-file', '/c.yml', '--name', 'ignored'], { ETCD_SNAPSHOT_COUNT: '1' }, { '/c.yml': yml });
  assert.equal(r.kind, 'run', JSON.stringify(r));
  const { config: c, logs } = r as ParseResult & { kind: 'run' };
  assert.equal(c.name, 'fromfile');
  assert.equal(c.dataDir, '/var/lib/x');
  assert.deepEqual(hrefs(c.listenClientUrls), ['http://127.0.0.1:22379/', 'http://127.0.0.1:2379/']);
  assert.equal(c.snapshotCount, 42);
  assert.equal(c.heartbeatIntervalMs, 20);
  assert.equal(c.electionTimeoutMs, 200);
  assert.equal(c.quotaBackendBytes, 4096);
  assert.equal(c.maxTxnOps, 9);
  assert.equal(c.maxRequestBytes, 99);
  assert.equal(c.autoCompactionRetention, 7_200_000);
  assert.equal(c.logLevel, 'debug');
  assert.deepEqual(c.logOutputs, ['stderr']);
  assert.equal(c.enableV2, true); // YAML 1.1 "yes", as go-yaml reads it
  assert.equal(c.tls.peerAutoTls, true);
  assert.equal(c.tls.peerCertFile, '/p.crt');
  assert.equal(logs[0]!.msg, 'loaded server configuration, other configuration command line flags and environment variables will be ignored if provided');
  // ETCD_CONFIG_FILE works too.
  assert.equal(config([], { ETCD_CONFIG_FILE: '/c.yml' }, { '/c.yml': yml }).name, 'fromfile');
});

test('config file type errors are Go\'s json errors', () => {
  const bad = (yml: string) => verifyError(run(['--config-file', '/c.yml'], {}, { '/c.yml': yml }));
  assert.equal(bad('snapshot-count: abc'), 'error unmarshaling JSON: while decoding JSON: json: cannot unmarshal string into Go struct field configYAML.snapshot-count of type uint64');
  assert.equal(bad('auto-compaction-retention: 1'), 'error unmarshaling JSON: while decoding JSON: json: cannot unmarshal number into Go struct field configYAML.auto-compaction-retention of type string');
  assert.equal(bad('heartbeat-interval: -5'), 'error unmarshaling JSON: while decoding JSON: json: cannot unmarshal number -5 into Go struct field configYAML.heartbeat-interval of type uint');
  assert.equal(verifyError(run(['--config-file', '/missing.yml'])), 'open /missing.yml: no such file or directory');
  const r = run(['--config-file', '/c.yml'], {}, { '/c.yml': 'listen-client-urls: foo' });
  assert.deepEqual(r.kind === 'exit' && [r.code, r.stderr], [1, 'unexpected error setting up listen-client-urls: URL scheme must be http, https, unix, or unixs: foo\n']);
});

test('an initialized data dir ignores the bootstrap flags (a bad --initial-cluster is not an error)', () => {
  const r = parseConcordArgs(['--data-dir', '/d', '--initial-cluster', 'foo'], {}, { walExists: (d) => d === '/d/member/wal' });
  assert.equal(r.kind, 'run');
  assert.equal(verifyError(run(['--data-dir', '/d', '--initial-cluster', 'foo'])),
    'error setting up initial cluster: URL scheme must be http, https, unix, or unixs: ');
});

test('--version prints etcd\'s four lines first, then Concord\'s', () => {
  const r = run(['--version']);
  assert.equal(r.kind, 'exit');
  const out = (r as { stdout: string }).stdout.split('\n');
  assert.match(out[0]!, /^etcd Version: 3\.4\.\d+$/);
  assert.match(out[1]!, /^Git SHA: /);
  assert.match(out[2]!, /^Go Version: /);
  assert.match(out[3]!, /^Go OS\/Arch: \w+\/\w+$/);
  assert.match(out[4]!, /^Concord Version: /);
  assert.equal((r as { code: number }).code, 0);
});

test('--help and -h print the usage to stderr and the flags to stdout, exit 0', () => {
  for (const h of ['--help', '-h', '-help']) {
    const r = run([h]);
    assert.equal(r.kind === 'exit' && r.code, 0);
    assert.match((r as { stderr: string }).stderr, /^Usage:\n\n {2}concord \[flags\]/);
    assert.match((r as { stdout: string }).stdout, /\n {2}--initial-cluster-token 'etcd-cluster'\n/);
  }
});

test('a flag Concord accepts but does not act on is reported, not refused', () => {
  const r = run(['--enable-pprof', '--metrics', 'extensive', '--name', 'x']);
  assert.deepEqual(r.kind === 'run' && r.unsupported, ['enable-pprof']);
  assert.equal(r.kind === 'run' && r.config.metrics, 'extensive'); // --metrics is served (grpc_server_handling_seconds)
});

test('the lease checkpoint flags reach the member (off by default, as etcd)', () => {
  const off = run(['--name', 'x']);
  assert.ok(off.kind === 'run' && off.config.leaseCheckpoint === false && off.config.leaseCheckpointPersist === false);
  const on = run(['--experimental-enable-lease-checkpoint', '--experimental-enable-lease-checkpoint-persist']);
  assert.ok(on.kind === 'run' && on.config.leaseCheckpoint === true && on.config.leaseCheckpointPersist === true);
  assert.deepEqual(on.kind === 'run' && on.unsupported, []);
});

// ---- the same bad input to real etcd 3.4 and to Concord: same exit code and message ----

/** etcd's message for a failed run: the flag error line, or the error in its log line. */
function etcdMessage(stderr: string): string {
  // Skip banners and informational lines ("Loading server configuration ...").
  const first = stderr.split('\n').find((l) => l.trim() !== '' && !l.startsWith('[WARNING]') && !/ I \| |"level":"info"/.test(l)) ?? '';
  if (first.startsWith('{')) {
    const o = JSON.parse(first) as { error?: string; msg: string };
    return o.error ?? o.msg;
  }
  const plog = /error verifying flags, (.*)\. See 'etcd --help'\.$/.exec(first);
  return plog ? plog[1]! : first;
}

function concordMessage(r: ParseResult): string {
  if (r.kind !== 'exit') return 'RUN';
  if (r.code === 2 && r.stderr) return r.stderr.split('\n')[0]!;
  return (verifyError(r) as string | undefined) ?? r.stderr?.split('\n')[0] ?? '';
}

const differentialCases: { args: string[]; env?: Record<string, string>; file?: string }[] = [
  { args: ['--bogus-flag'] },
  { args: ['-bogus'] },
  { args: ['--snapshot-count', 'abc'] },
  { args: ['--snapshot-count=-1'] },
  { args: ['--max-txn-ops', '-1'] },
  { args: ['--quota-backend-bytes', 'abc'] },
  { args: ['--heartbeat-interval', '99999999999999999999999'] },
  { args: ['--listen-client-urls', 'foo'] },
  { args: ['--listen-client-urls', 'http://127.0.0.1'] },
  { args: ['--listen-peer-urls', 'http://127.0.0.1:1/path'] },
  { args: ['--debug=maybe'] },
  { args: ['--initial-cluster-state', 'bad'] },
  { args: ['--name'] },
  { args: ['---x'] },
  { args: ['extra'] },
  { args: ['--logger', 'zap', '--heartbeat-interval', '100', '--election-timeout', '200'] },
  { args: ['--logger', 'zap', '--heartbeat-interval', '0'] },
  { args: ['--logger', 'zap', '--election-timeout', '60000'] },
  { args: ['--logger', 'zap', '--auto-compaction-mode', 'foo'] },
  { args: ['--logger', 'zap', '--listen-client-urls', 'http://127.0.0.1:23790'] },
  { args: ['--logger', 'zap', '--listen-peer-urls', 'http://example.com:2380'] },
  { args: ['--logger', 'bogus'] },
  { args: ['--logger', 'zap'], env: { ETCD_SNAPSHOT_COUNT: 'abc' } },
  { args: ['--logger', 'zap', '--name', 'x'], env: { ETCD_NAME: 'y' } },
  { args: [], file: 'snapshot-count: abc\n' },
  { args: [], file: 'heartbeat-interval: -5\n' },
  { args: [], file: 'auto-compaction-retention: 1\n' },
  { args: [], file: 'listen-client-urls: foo\n' },
];

test('bad flags: same exit code and message as real etcd 3.4', { skip: !haveEtcd }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'concord-flags-'));
  try {
    for (const c of differentialCases) {
      const args = [...c.args];
      const file = join(dir, 'c.yml');
      if (c.file !== undefined) { writeFileSync(file, c.file); args.unshift('--config-file', file); }
      // The data dir goes first so that a flag missing its value cannot swallow it.
      const full = ['--data-dir', join(dir, 'data'), ...args];
      const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', ...c.env };
      const etcd = spawnSync('etcd', full, { env, encoding: 'utf8', timeout: 5000 });
      const ours = parseConcordArgs(full, env, noWal);
      const label = JSON.stringify({ args: c.args, env: c.env, file: c.file });
      assert.equal(ours.kind, 'exit', `${label} should fail`);
      assert.equal((ours as { code: number }).code, etcd.status, `${label}: exit code (etcd said ${etcd.stderr.slice(0, 300)})`);
      if (c.env?.ETCD_NAME) continue; // etcd 3.4 words this one through capnslog; ours is zap's record
      assert.equal(concordMessage(ours), etcdMessage(etcd.stderr), label);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--experimental-watch-progress-notify-interval: a Go duration, flag, env or config file; 0 or unset is 10 minutes', () => {
  assert.equal(config([]).watchProgressNotifyIntervalMs, 10 * 60 * 1000);
  assert.equal(config(['--experimental-watch-progress-notify-interval', '0']).watchProgressNotifyIntervalMs, 10 * 60 * 1000);
  assert.equal(config(['--experimental-watch-progress-notify-interval=1.5s']).watchProgressNotifyIntervalMs, 1500);
  assert.equal(config([], { ETCD_EXPERIMENTAL_WATCH_PROGRESS_NOTIFY_INTERVAL: '200ms' }).watchProgressNotifyIntervalMs, 200);
  assert.equal(config(['--config-file', '/c.yml'], {}, { '/c.yml': 'experimental-watch-progress-notify-interval: 3000000000\n' }).watchProgressNotifyIntervalMs, 3000);
});
