// concordctl's snapshot status / restore and make-mirror beside real etcdctl 3.4.
// - snapshot status: both tools read the same file (saved by etcdctl from the target), every
//   output format and the argument and file errors: stdout, stderr and exit code equal.
// - snapshot restore: etcdctl restores into an etcd data dir and concordctl into a Concord one
//   from the same file; each member then serves the same keys at the same revision.
// - make-mirror: etcdctl and concordctl mirror the same source into two destinations at once;
//   base copy, then live puts (two keys in one txn), a delete; both destinations end equal.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, selectedTargets, track, sleep, type Server, type CmdResult } from './harness.js';

import { runTool, spawnTool as spawnCtl, type Tool } from './ctl-tools.js';

const servers: Server[] = [];
const children: ChildProcess[] = [];
const dirs: string[] = [];
after(async () => {
  for (const c of children) if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) process.kill(c.pid, 'SIGKILL');
  for (const s of servers) await s.destroy();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const spawnTool = (tool: Tool, args: string[], cwd: string): ChildProcess => {
  const child = spawnCtl(tool, args, { cwd });
  children.push(child);
  return child;
};
const run = (tool: Tool, args: string[], cwd: string): Promise<CmdResult> => runTool(tool, args, { cwd });

/** zap's JSON log lines differ by tool (etcd's snapshot package vs Concord's restore); the rest must match. */
const withoutLogLines = (r: CmdResult): CmdResult => ({ ...r, stderr: r.stderr.split('\n').filter((l) => !l.startsWith('{')).join('\n') });

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'concordctl-offline-'));
  dirs.push(d);
  return d;
}

/** Every key and value, and the revision, as a member serves them. */
async function contents(server: Server, cwd: string): Promise<{ keys: string; revision: number }> {
  const r = await run('etcdctl', ['--endpoints', server.endpoint, 'get', '', '--prefix'], cwd);
  const j = await run('etcdctl', ['--endpoints', server.endpoint, 'get', 'x', '-w', 'json'], cwd);
  return { keys: r.stdout, revision: JSON.parse(j.stdout).header.revision };
}

for (const target of selectedTargets()) {
  describe(`snapshot status and restore on a snapshot of ${target}`, () => {
    test('status: every format and error equals etcdctl\'s; restore: both members serve the same data', async () => {
      const cwd = tempDir();
      const src = await startServer({ target });
      servers.push(src);
      for (const [k, v] of [['a', '1'], ['b', '2'], ['a', '3'], ['c', 'x'.repeat(5000)]]) {
        assert.equal((await run('etcdctl', ['--endpoints', src.endpoint, 'put', k!, v!], cwd)).code, 0);
      }
      assert.equal((await run('etcdctl', ['--endpoints', src.endpoint, 'del', 'b'], cwd)).code, 0);
      assert.equal((await run('etcdctl', ['--endpoints', src.endpoint, 'snapshot', 'save', 'snap.db'], cwd)).code, 0);
      const want = await contents(src, cwd);

      const cases = [
        ['snapshot', 'status', 'snap.db'], ['snapshot', 'status', 'snap.db', '-w', 'json'],
        ['snapshot', 'status', 'snap.db', '-w', 'table'], ['snapshot', 'status', 'snap.db', '-w', 'fields'],
        ['snapshot', 'status', 'snap.db', '-w', 'protobuf'], ['snapshot', 'status', 'nofile'],
        ['snapshot', 'status'], ['snapshot', 'status', 'a', 'b'], ['snapshot', 'restore'],
        ['snapshot', 'restore', 'nofile', '--data-dir', 'never'], ['snapshot', 'restore', 'snap.db', '--data-dir', '.'],
      ];
      for (const args of cases) {
        const [e, c] = await Promise.all([run('etcdctl', args, cwd), run('concordctl', args, cwd)]);
        assert.deepEqual(withoutLogLines(c), withoutLogLines(e), args.join(' '));
      }

      // Restore into a stopped member of each kind, on its own ports, and start it there.
      for (const [tool, kind] of [['etcdctl', 'etcd'], ['concordctl', 'concord']] as const) {
        if (!selectedTargets().includes(kind)) continue;
        const m = await startServer({ target: kind, name: 'r' });
        servers.push(m);
        await m.stop();
        rmSync(m.dataDir, { recursive: true, force: true });
        const restored = await run(tool, ['snapshot', 'restore', join(cwd, 'snap.db'), '--data-dir', m.dataDir, '--name', 'r',
          '--initial-cluster', `r=${m.peerUrl}`, '--initial-advertise-peer-urls', m.peerUrl], cwd);
        assert.equal(restored.code, 0, restored.stderr);
        await m.restart();
        assert.deepEqual(await contents(m, cwd), want, `${kind} restored by ${tool}`);
        await m.destroy();
      }
      await src.destroy();
    });
  });
}

/** Waits until the member serves `keys` (a hang is a failure after 20 s). */
async function until(server: Server, cwd: string, keys: string): Promise<void> {
  let last = '';
  for (let i = 0; i < 100; i++) {
    last = (await run('etcdctl', ['--endpoints', server.endpoint, 'get', '', '--prefix'], cwd)).stdout;
    if (last === keys) return;
    await sleep(200);
  }
  assert.equal(last, keys);
}

describe('make-mirror', () => {
  const target = selectedTargets().includes('concord') ? 'concord' : 'etcd';
  test(`etcdctl's and concordctl's mirrors of one ${target} source end equal (base, live txn, delete, --dest-prefix)`, async () => {
    const cwd = tempDir();
    const [src, destE, destC] = await Promise.all([startServer({ target }), startServer({ target }), startServer({ target })]);
    servers.push(src, destE, destC);
    const ctl = (args: string[]) => run('etcdctl', ['--endpoints', src.endpoint, ...args], cwd);
    await ctl(['put', '/src/a', '1']);
    await ctl(['put', '/src/b', '2']);
    await ctl(['put', '/other', 'no']);
    await ctl(['put', '/src/a', '3']);
    for (const [tool, dest] of [['etcdctl', destE], ['concordctl', destC]] as const) {
      spawnTool(tool, ['--endpoints', src.endpoint, 'make-mirror', '--prefix', '/src/', '--dest-prefix', '/dst/', dest.endpoint], cwd);
    }
    const base = '/dst/a\n3\n/dst/b\n2\n';
    await until(destE, cwd, base);
    await until(destC, cwd, base);
    // Live: two keys in one revision, then a delete.
    const txn = spawn('etcdctl', ['--endpoints', src.endpoint, 'txn'], { stdio: ['pipe', 'ignore', 'ignore'], env: { ...process.env, ETCDCTL_API: '3' } });
    track(txn);
    txn.stdin!.end('\nput /src/c 4\nput /src/d 5\n\n\n');
    await new Promise((r) => txn.once('close', r));
    await ctl(['del', '/src/b']);
    const live = '/dst/a\n3\n/dst/c\n4\n/dst/d\n5\n';
    await until(destE, cwd, live);
    await until(destC, cwd, live);
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');

    // Flag and argument errors, as etcdctl reports them (the conflict is checked after the source answers).
    for (const args of [['make-mirror'], ['make-mirror', '--dest-prefix', '/x', '--no-dest-prefix', destC.endpoint]]) {
      const [e, c] = await Promise.all([run('etcdctl', ['--endpoints', src.endpoint, ...args], cwd), run('concordctl', ['--endpoints', src.endpoint, ...args], cwd)]);
      assert.deepEqual(c, e, args.join(' '));
    }
  });
});
