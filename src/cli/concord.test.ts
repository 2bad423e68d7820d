import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const concordModule = fileURLToPath(new URL('./concord.js', import.meta.url));
const bin = fileURLToPath(new URL('../../../bin/concord.js', import.meta.url));

test('the program exits 2 on an unknown flag and 0 on --version, printing as etcd does', () => {
  const bad = spawnSync(process.execPath, [bin, '--bogus-flag'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /^flag provided but not defined: -bogus-flag\nUsage:/);
  const v = spawnSync(process.execPath, [bin, '--version'], { encoding: 'utf8' });
  assert.equal(v.status, 0);
  assert.match(v.stdout, /^etcd Version: 3\.4\.\d+\n/);
  const bad2 = spawnSync(process.execPath, [bin, '--heartbeat-interval', '0'], { encoding: 'utf8' });
  assert.equal(bad2.status, 1);
  const line = JSON.parse(bad2.stderr.trim().split('\n')[0]!) as Record<string, string>;
  assert.equal(line.msg, 'failed to verify flags');
  assert.equal(line.error, '--heartbeat-interval must be >0 (set to 0ms)');
});

/** Runs runConcord in a child with a fake startServer whose stop takes `stopMs` (or never ends). */
function startWithFakeServer(stopMs: number | 'never', removedAfterMs?: number) {
  const script = `
    import { runConcord } from ${JSON.stringify(concordModule)};
    const code = await runConcord(['--data-dir', '/nonexistent/concord-test', '--logger', 'zap', '--listen-client-urls', 'http://127.0.0.1:0', '--advertise-client-urls', 'http://127.0.0.1:2379'], {}, {
      walExists: () => false,
      startServer: async (config, log) => {
        log.info('fake server started', { name: config.name });
        return {
          stop: () => ${stopMs === 'never' ? 'new Promise(() => {})' : `new Promise((r) => setTimeout(() => { log.info('fake server stopped'); r(); }, ${stopMs}))`},
          ${removedAfterMs === undefined ? '' : `removed: new Promise((r) => setTimeout(() => r(new Error('removed')), ${removedAfterMs})),`}
        };
      },
    });
    if (code !== undefined) process.exit(code);
    setInterval(() => {}, 1000); // a server keeps the process alive
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  const started = new Promise<void>((resolve) => {
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (stderr.includes('fake server started')) resolve();
    });
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, started, exited, stderr: () => stderr };
}

test('SIGTERM stops the server gracefully and exits 0', async () => {
  const p = startWithFakeServer(50);
  await p.started;
  p.child.kill('SIGTERM');
  assert.equal(await p.exited, 0);
  const msgs = p.stderr().trim().split('\n').map((l) => (JSON.parse(l) as { msg: string }).msg);
  assert.ok(msgs.includes('starting an etcd server'));
  assert.deepEqual(msgs.slice(-2), ['received signal; shutting down', 'fake server stopped']);
});

test('a member removed from the cluster stops and exits 0 (etcd: "the member has been permanently removed")', async () => {
  const p = startWithFakeServer(20, 100);
  try {
    await p.started;
    assert.equal(await p.exited, 0);
    const msgs = p.stderr().trim().split('\n').map((l) => (JSON.parse(l) as { msg: string }).msg);
    assert.equal(msgs.at(-1), 'fake server stopped');
  } finally {
    if (p.child.exitCode === null) p.child.kill('SIGKILL');
  }
});

test('a second signal exits at once', async () => {
  const p = startWithFakeServer('never');
  await p.started;
  p.child.kill('SIGINT');
  await new Promise((r) => setTimeout(r, 100));
  p.child.kill('SIGINT');
  assert.equal(await p.exited, 130);
  assert.match(p.stderr(), /received second signal; exiting immediately/);
});
