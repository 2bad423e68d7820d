// Real etcdctl's lease commands, and its client-side recipes built on leases and watches
// (`lock`, `elect`), against real etcd and Concord: the printed output must be the same once
// lease ids (server-chosen) and remaining seconds (clock-dependent) are normalized. Long-running
// etcdctl processes are stopped by their own pid (SIGINT: etcdctl then unlocks / resigns).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { startServer, selectedTargets, track, sleep, type Server, type TargetName } from './harness.js';

/** Lease ids (16 hex digits, or bare hex after a key prefix) become <ID>; remaining(Ns) is checked and hidden. */
function normalizeOutput(out: string): string {
  return out
    .replace(/\b[0-9a-f]{16}\b/g, '<ID>')
    .replace(/\/[0-9a-f]{12,16}\b/g, '/<ID>')
    .replace(/remaining\((\d+)s\)/g, (_m, s: string) => (Number(s) >= 55 && Number(s) <= 60 ? 'remaining(ok)' : `remaining(${s}s)`))
    .replace(/attached keys\(\[([^\]]*)\]\)/g, (_m, ks: string) => `attached keys([${ks.split(' ').sort().join(' ')}])`);
}

/** etcdctl's stderr without its JSON log lines (timestamps, random client ids). */
const errorLines = (stderr: string): string => stderr.split('\n').filter((l) => l !== '' && !l.startsWith('{')).join('\n');

async function onEachTarget(scenario: (s: Server) => Promise<string[]>): Promise<void> {
  const outs = new Map<TargetName, string[]>();
  for (const target of selectedTargets()) {
    const s = await startServer({ target });
    try {
      outs.set(target, (await scenario(s)).map(normalizeOutput));
    } finally {
      await s.destroy();
    }
  }
  if (outs.has('etcd') && outs.has('concord')) assert.deepEqual(outs.get('concord'), outs.get('etcd'));
}

async function ctl(s: Server, args: string[]): Promise<string> {
  const r = await s.etcdctl(args);
  return `${r.code} ${r.stdout}${errorLines(r.stderr)}`;
}

test('etcdctl lease grant | put --lease | timetolive --keys | list | keep-alive --once | revoke, and their errors', async () => {
  await onEachTarget(async (s) => {
    const out: string[] = [];
    const granted = await s.etcdctl(['lease', 'grant', '60']);
    out.push(granted.stdout);
    const id = /lease ([0-9a-f]+) granted/.exec(granted.stdout)?.[1];
    assert.ok(id, granted.stdout + granted.stderr);
    out.push(await ctl(s, ['put', '--lease', id, 'k2', 'v2']));
    out.push(await ctl(s, ['put', '--lease', id, 'k1', 'v1']));
    const fields = await ctl(s, ['get', 'k1', '-w', 'fields']);
    out.push(fields.replace(/"(ClusterID|MemberID|RaftTerm)" : \d+/g, '"$1" : x').replace(`"Lease" : ${BigInt(`0x${id}`)}`, '"Lease" : <ID>'));
    out.push(await ctl(s, ['lease', 'timetolive', id]));
    out.push(await ctl(s, ['lease', 'timetolive', '--keys', id]));
    out.push(await ctl(s, ['lease', 'list']));
    out.push(await ctl(s, ['lease', 'keep-alive', '--once', id]));
    out.push(await ctl(s, ['put', '--lease', '1234', 'x', 'y']));
    out.push(await ctl(s, ['lease', 'grant', '9000000001']));
    out.push(await ctl(s, ['lease', 'revoke', id]));
    out.push(await ctl(s, ['get', 'k', '--prefix']));
    out.push(await ctl(s, ['lease', 'timetolive', id]));
    out.push(await ctl(s, ['lease', 'revoke', id]));
    out.push(await ctl(s, ['lease', 'keep-alive', '--once', id]));
    return out;
  });
});

/** A running etcdctl whose stdout is collected; stopped by its pid. */
class Running {
  stdout = '';
  stderr = '';
  exited = false;
  readonly child: ChildProcess;

  constructor(s: Server, args: string[]) {
    this.child = spawn('etcdctl', ['--endpoints', s.endpoint, ...args], { env: { ...process.env, ETCDCTL_API: '3' }, stdio: ['ignore', 'pipe', 'pipe'] });
    track(this.child);
    this.child.stdout!.setEncoding('utf8').on('data', (d) => { this.stdout += d; });
    this.child.stderr!.setEncoding('utf8').on('data', (d) => { this.stderr += d; });
    this.child.on('exit', () => { this.exited = true; });
  }

  /** Waits for `n` lines of output (bounded: a hang fails the test). */
  async lines(n: number, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.stdout.split('\n').length <= n) {
      if (this.exited) throw new Error(`etcdctl exited: ${this.stdout} ${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`etcdctl: no ${n} lines: ${JSON.stringify(this.stdout)} ${this.stderr}`);
      await sleep(20);
    }
  }

  async exit(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.exited) {
      if (Date.now() > deadline) throw new Error(`etcdctl did not exit: ${this.stdout} ${this.stderr}`);
      await sleep(20);
    }
  }

  /** SIGINT (etcdctl unlocks / resigns and closes its session), SIGKILL if it lingers. */
  async stop(): Promise<void> {
    if (this.exited) return;
    this.child.kill('SIGINT');
    try {
      await this.exit(10_000);
    } catch {
      this.child.kill('SIGKILL');
      await this.exit();
    }
  }
}

test('etcdctl lock: a second locker waits until the holder lets go, then runs its command', async () => {
  await onEachTarget(async (s) => {
    const out: string[] = [await ctl(s, ['lock', 'mylock', '--', 'sh', '-c', 'echo alone'])];
    const holder = new Running(s, ['lock', 'mylock']);
    let second: Running | undefined;
    try {
      await holder.lines(1);
      second = new Running(s, ['lock', 'mylock', '--', 'sh', '-c', 'echo second']);
      await sleep(1500); // while the holder holds, the second must still be waiting
      out.push(holder.stdout, `second exited while held: ${second.exited}`);
      await holder.stop();
      await second.exit();
      out.push(second.stdout);
      out.push(await ctl(s, ['get', 'mylock', '--prefix', '--keys-only']));
    } finally {
      await holder.stop();
      await second?.stop();
    }
    return out;
  });
});

test('etcdctl elect: the leader is observed, a second candidate takes over when the first resigns', async () => {
  await onEachTarget(async (s) => {
    const out: string[] = [];
    const first = new Running(s, ['elect', 'myelection', 'p1']);
    const runs = [first];
    try {
      await first.lines(2);
      const observer = new Running(s, ['elect', '-l', 'myelection']);
      const second = new Running(s, ['elect', 'myelection', 'p2']);
      runs.push(observer, second);
      await observer.lines(2);
      await sleep(1000);
      out.push(first.stdout, `second leads too early: ${second.stdout !== ''}`);
      await first.stop();
      await second.lines(2);
      await observer.lines(4);
      out.push(second.stdout, observer.stdout);
    } finally {
      for (const r of runs) await r.stop();
    }
    return out;
  });
});
