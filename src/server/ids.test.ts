import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { memberId, clusterId, bootstrapIds, formatId, parseId, urlString } from './ids.js';

const haveEtcd = spawnSync('etcd', ['--version']).status === 0;
const haveEtcdctl = spawnSync('etcdctl', ['version'], { env: { ...process.env, ETCDCTL_API: '3' } }).status === 0;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

interface EtcdRun { proc: ChildProcess; lines: string[]; dir: string }

/** Starts real etcd (zap logs) and waits until a log line matches `until`. */
async function startEtcd(args: string[], until: RegExp): Promise<EtcdRun> {
  const dir = mkdtempSync(join(tmpdir(), 'concord-ids-'));
  const proc = spawn('etcd', ['--logger', 'zap', '--data-dir', join(dir, 'data'), ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  const lines: string[] = [];
  let buf = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`etcd did not log ${until}:\n${lines.join('\n')}`)), 15000);
    proc.stderr!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        lines.push(line);
        if (until.test(line)) { clearTimeout(timer); resolve(); }
      }
    });
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`etcd exited ${code}:\n${lines.join('\n')}`)); });
  });
  return { proc, lines, dir };
}

async function stopEtcd(run: EtcdRun): Promise<void> {
  run.proc.removeAllListeners('exit');
  if (run.proc.exitCode === null) {
    const exited = new Promise((r) => run.proc.once('exit', r));
    process.kill(run.proc.pid!, 'SIGKILL');
    await exited;
  }
  rmSync(run.dir, { recursive: true, force: true });
}

function logField(lines: string[], msg: string, field: string): string[] {
  return lines
    .filter((l) => l.includes(`"msg":"${msg}"`))
    .map((l) => (JSON.parse(l) as Record<string, string>)[field]!);
}

test('member and cluster id of a known bootstrap equal the ones etcd 3.4 gave', () => {
  // Recorded from etcd 3.4.23: --name n1 --initial-advertise-peer-urls http://127.0.0.1:32380
  // --initial-cluster n1=http://127.0.0.1:32380 --initial-cluster-token tok1; `member list -w json`
  // gave ID 14138984027333314880 and cluster_id 1729734759231579980.
  const m = memberId(['http://127.0.0.1:32380'], 'tok1');
  assert.equal(m, 14138984027333314880n);
  assert.equal(formatId(m), 'c437c30fb21fc940');
  assert.equal(clusterId([m]), 1729734759231579980n);
  assert.equal(formatId(clusterId([m])), '1801409957a4e74c');
  // etcd's defaults: http://localhost:2380 and "etcd-cluster" give 8e9e05c52164694d / cdf818194e3a8c32.
  const d = memberId([new URL('http://localhost:2380')], 'etcd-cluster');
  assert.equal(formatId(d), '8e9e05c52164694d');
  assert.equal(formatId(clusterId([d])), 'cdf818194e3a8c32');
});

test('peer URL order does not matter; the URLs are sorted before hashing', () => {
  const a = memberId(['http://10.0.0.2:2380', 'http://10.0.0.1:2380'], 't');
  const b = memberId(['http://10.0.0.1:2380', 'http://10.0.0.2:2380'], 't');
  assert.equal(a, b);
  assert.equal(clusterId([1n, 2n, 3n]), clusterId([3n, 1n, 2n]));
});

test('a member added at runtime also hashes the Unix time in seconds', () => {
  const t = new Date(1_700_000_000_500);
  assert.notEqual(memberId(['http://127.0.0.1:2380'], 't', t), memberId(['http://127.0.0.1:2380'], 't'));
  assert.equal(memberId(['http://127.0.0.1:2380'], 't', t), memberId(['http://127.0.0.1:2380'], 't', new Date(1_700_000_000_000)));
});

test('URLs hash in Go\'s url.String() form (no trailing slash, explicit port kept)', () => {
  assert.equal(urlString(new URL('http://127.0.0.1:2380')), 'http://127.0.0.1:2380');
  assert.equal(urlString(new URL('http://127.0.0.1:80')), 'http://127.0.0.1:80');
  assert.equal(urlString(new URL('https://[::1]:443')), 'https://[::1]:443');
  assert.equal(memberId([new URL('http://127.0.0.1:80')], 'x'), memberId(['http://127.0.0.1:80'], 'x'));
});

test('ids format as %x and parse back', () => {
  assert.equal(formatId(0xabcn), 'abc');
  assert.equal(parseId('c437c30fb21fc940'), 0xc437c30fb21fc940n);
  assert.throws(() => parseId('xyz'));
});

test('one member: ids equal real etcd\'s (member list -w json)', { skip: !haveEtcd || !haveEtcdctl }, async () => {
  const [cp, pp] = [await freePort(), await freePort()];
  const peer = `http://127.0.0.1:${pp}`;
  const client = `http://127.0.0.1:${cp}`;
  const token = `concord-test-${process.pid}`;
  const run = await startEtcd([
    '--name', 'solo', '--listen-client-urls', client, '--advertise-client-urls', client,
    '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
    '--initial-cluster', `solo=${peer}`, '--initial-cluster-token', token,
  ], /"msg":"ready to serve client requests"|serving client traffic/);
  try {
    const out = spawnSync('etcdctl', ['--endpoints', client, 'member', 'list', '-w', 'json'], {
      env: { ...process.env, ETCDCTL_API: '3' }, encoding: 'utf8',
    });
    assert.equal(out.status, 0, out.stderr);
    // The ids exceed 2^53: read them as text.
    const cid = BigInt(/"cluster_id":(\d+)/.exec(out.stdout)![1]!);
    const mid = BigInt(/"ID":(\d+)/.exec(out.stdout)![1]!);
    const ours = bootstrapIds(new Map([['solo', [peer]]]), token);
    assert.equal(ours.members.get('solo'), mid);
    assert.equal(ours.clusterId, cid);
  } finally {
    await stopEtcd(run);
  }
});

test('three members: each id and the cluster id equal real etcd\'s', { skip: !haveEtcd }, async () => {
  const ports = [await freePort(), await freePort(), await freePort(), await freePort()];
  const peers = ports.slice(0, 3).map((p) => `http://127.0.0.1:${p}`);
  const client = `http://127.0.0.1:${ports[3]}`;
  const token = 'three-token';
  const initial = new Map([['a', [peers[0]!]], ['b', [peers[1]!]], ['c', [peers[2]!]]]);
  // Only "a" runs; it never gets quorum, but it logs its ids and the members it bootstraps.
  const run = await startEtcd([
    '--name', 'a', '--listen-client-urls', client, '--advertise-client-urls', client,
    '--listen-peer-urls', peers[0]!, '--initial-advertise-peer-urls', peers[0]!,
    '--initial-cluster', [...initial].map(([n, [u]]) => `${n}=${u}`).join(','), '--initial-cluster-token', token,
  ], /"msg":"added member"/);
  try {
    // Let the other two "added member" lines arrive.
    const deadline = Date.now() + 5000;
    while (logField(run.lines, 'added member', 'added-peer-id').length < 3 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const ours = bootstrapIds(initial, token);
    assert.equal(logField(run.lines, 'starting local member', 'local-member-id')[0], formatId(ours.members.get('a')!));
    assert.equal(logField(run.lines, 'starting local member', 'cluster-id')[0], formatId(ours.clusterId));
    assert.deepEqual(logField(run.lines, 'added member', 'added-peer-id').sort(),
      [...ours.members.values()].map(formatId).sort());
  } finally {
    await stopEtcd(run);
  }
});
