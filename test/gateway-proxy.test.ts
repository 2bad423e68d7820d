// `concord gateway start` (etcd 3.4's L4 TCP proxy, `etcd gateway start`): real etcdctl
// through it to Concord and to real etcd; failover when an endpoint is down (round-robin
// skips it, "deactivated endpoint" logged) and its return after --retry-delay ("activated");
// flag errors and checks printed as `etcd gateway start` prints them.

import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { startServer, selectedTargets, etcdctl, freePort, track, sleep, REPO_ROOT, type Server } from './harness.js';

const servers: Server[] = [];
const gateways: ChildProcess[] = [];
after(async () => {
  for (const g of gateways) if (g.pid !== undefined && g.exitCode === null && g.signalCode === null) process.kill(g.pid, 'SIGKILL');
  for (const s of servers) await s.destroy();
});

const concordBin = join(REPO_ROOT, 'bin', 'concord.js');

interface Gateway { endpoint: string; log: () => string; child: ChildProcess }

/** Starts `concord gateway start` (or `etcd gateway start`) and waits for its "ready to proxy client requests" line. */
async function startGateway(endpoints: string[], extra: string[] = [], program: 'concord' | 'etcd' = 'concord'): Promise<Gateway> {
  const port = await freePort();
  const args = ['gateway', 'start', `--endpoints=${endpoints.join(',')}`, `--listen-addr=127.0.0.1:${port}`, ...extra];
  const child = program === 'etcd'
    ? spawn('etcd', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(process.execPath, [concordBin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  track(child);
  gateways.push(child);
  let text = '';
  child.stdout!.setEncoding('utf8').on('data', (d) => { text += d; });
  child.stderr!.setEncoding('utf8').on('data', (d) => { text += d; });
  await waitFor(() => text.includes('ready to proxy client requests'), () => `gateway not ready: ${text}`);
  return { endpoint: `http://127.0.0.1:${port}`, log: () => text, child };
}

/** Polls `cond` (a hang is a failure after 20 s, not a measurement). */
async function waitFor(cond: () => boolean, what: () => string): Promise<void> {
  for (let i = 0; i < 400 && !cond(); i++) await sleep(50);
  if (!cond()) throw new Error(what());
}

function stopGateway(g: Gateway): void {
  if (g.child.pid !== undefined && g.child.exitCode === null) process.kill(g.child.pid, 'SIGKILL');
}

/** Runs a program to its end: code, stdout, stderr. */
function run(cmd: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    track(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d) => { stdout += d; });
    child.stderr!.setEncoding('utf8').on('data', (d) => { stderr += d; });
    const t = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('error', reject);
    child.on('close', (code) => { clearTimeout(t); resolve({ code, stdout, stderr }); });
  });
}

describe('concord gateway start', () => {
  for (const target of selectedTargets()) {
    test(`etcdctl through the gateway to ${target}, with a dead endpoint listed first`, async () => {
      const s = await startServer({ target });
      servers.push(s);
      const dead = `127.0.0.1:${await freePort()}`;
      const g = await startGateway([dead, s.endpoint]);
      assert.deepEqual([(await etcdctl(g.endpoint, ['put', 'foo', 'bar'])).stdout, (await etcdctl(g.endpoint, ['get', 'foo'])).stdout], ['OK\n', 'foo\nbar\n']);
      // A watch is one long-lived HTTP/2 connection through the proxy.
      const watch = await etcdctl(g.endpoint, ['watch', 'foo', '--rev=1'], { timeoutMs: 3000 });
      assert.match(watch.stdout, /^PUT\nfoo\nbar\n/);
      assert.match(g.log(), /"msg":"deactivated endpoint","address":"127\.0\.0\.1:\d+","interval":60,"error":"dial tcp 127\.0\.0\.1:\d+: connect: connection refused"/);
      stopGateway(g);
      await s.destroy();
    });
  }

  test('its log lines are `etcd gateway start`\'s (zap.NewProduction: epoch-seconds ts, durations in seconds, the same messages and fields)',
    { skip: !selectedTargets().includes('etcd') }, async () => {
      const s = await startServer({ target: selectedTargets().includes('concord') ? 'concord' : 'etcd' });
      servers.push(s);
      const dead = `127.0.0.1:${await freePort()}`;
      const lines = await Promise.all((['etcd', 'concord'] as const).map(async (program) => {
        const g = await startGateway([dead, s.endpoint], ['--retry-delay=1s'], program);
        await etcdctl(g.endpoint, ['get', 'foo']); // the first connection meets the dead endpoint
        await waitFor(() => g.log().includes('failed to activate endpoint'), () => `${program}: no retry line: ${g.log()}`);
        stopGateway(g);
        const nowSeconds = Date.now() / 1000;
        const parsed = g.log().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
        for (const x of parsed) {
          assert.equal(typeof x.ts, 'number', `${program}: ts ${String(x.ts)}`);
          assert.ok(Math.abs((x.ts as number) - nowSeconds) < 120, `${program}: ts ${String(x.ts)} is not epoch seconds`);
        }
        // ts and caller (Go's file:line, ours) aside, the first line of each message.
        const firsts = new Map<unknown, Record<string, unknown>>();
        for (const x of parsed) if (!firsts.has(x.msg)) firsts.set(x.msg, x);
        return [...firsts.values()].map((x) => Object.fromEntries(Object.entries(x).map(([k, v]) => [k, k === 'ts' || k === 'caller' ? typeof v : v])));
      }));
      assert.deepEqual(lines[1], lines[0]);
      assert.equal(lines[0]!.length, 3); // ready, deactivated, failed to activate
    });

  test('failover: with one member down every connection reaches the other; the member is back after --retry-delay', async () => {
    const target = selectedTargets().includes('concord') ? 'concord' : 'etcd';
    const a = await startServer({ target, name: 'a' });
    const b = await startServer({ target, name: 'b' });
    servers.push(a, b);
    assert.equal((await etcdctl(a.endpoint, ['put', 'who', 'a'])).code, 0);
    assert.equal((await etcdctl(b.endpoint, ['put', 'who', 'b'])).code, 0);
    const g = await startGateway([a.endpoint, b.endpoint], ['--retry-delay=1s']);
    const who = async () => (await etcdctl(g.endpoint, ['get', 'who', '--print-value-only'])).stdout.trim();
    // Round-robin while both are up: each connection goes to the next member.
    const both = new Set([await who(), await who(), await who(), await who()]);
    assert.deepEqual([...both].sort(), ['a', 'b']);

    await a.kill();
    const after = [await who(), await who(), await who(), await who()];
    assert.deepEqual(after, ['b', 'b', 'b', 'b']);
    assert.match(g.log(), /"msg":"deactivated endpoint"/);

    await a.restart();
    await waitFor(() => g.log().includes('"msg":"activated"'), () => `member a not reactivated: ${g.log()}`);
    const again = new Set([await who(), await who(), await who(), await who()]);
    assert.deepEqual([...again].sort(), ['a', 'b']);
    stopGateway(g);
    await a.destroy();
    await b.destroy();
  });

  test('flag errors, help and start-up checks print what `etcd gateway` prints', { skip: !selectedTargets().includes('etcd') }, async () => {
    const port = await freePort();
    const cases = [
      ['gateway'], ['gateway', 'start', '--help'], ['gateway', 'start', '--bad'], ['gateway', 'start', '--endpoints'],
      ['gateway', 'start', '--endpoints=foo'], ['gateway', 'start', '--retry-delay=xx'], ['gateway', 'start', '--listen-addr=abc'],
      ['gateway', 'start', `--listen-addr=127.0.0.1:${port}`, `--endpoints=http://127.0.0.1:${port}`],
      ['gateway', 'start', '--listen-addr=nosuchhost.invalid:1'],
      ['gateway', 'start', '--endpoints=', `--listen-addr=127.0.0.1:${port}`],
    ];
    for (const args of cases) {
      const [e, c] = await Promise.all([run('etcd', args), run(process.execPath, [concordBin, ...args])]);
      assert.deepEqual(c, e, args.join(' '));
    }
  });
});
