// A new user's first minutes, tried as a new user would:
// - the installed package: `npm pack`, install the tarball into a temp dir, run every bin
//   through node_modules/.bin and npx (the .bin symlink once made them print nothing);
// - start-up mistakes etcd catches before it writes anything, compared with real etcd:
//   a client port already in use, and a --data-dir that is a file (same exit code, same
//   fatal log line, nothing written).

import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server as NetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, freePort, selectedTargets, track, type TargetName } from './harness.js';

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

interface Run { code: number | null; stdout: string; stderr: string }

/** Runs a program to its end (killed by pid after boundMs: a server that starts is a failure here). */
function run(cmd: string, args: string[], cwd: string, boundMs = 120_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, npm_config_update_notifier: 'false' } });
    track(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const t = setTimeout(() => child.kill('SIGKILL'), boundMs);
    child.on('error', (e) => { clearTimeout(t); reject(e); });
    child.on('close', (code) => { clearTimeout(t); resolve({ code, stdout, stderr }); });
  });
}

describe('new user: the installed package', () => {
  test('npm pack + install of the tarball: every bin runs through node_modules/.bin and npx', async () => {
    const dir = tempDir('concord-install-');
    // dist/ is built by `npm test`; --ignore-scripts keeps pack from rebuilding it under other tests.
    const pack = await run('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], REPO_ROOT);
    assert.equal(pack.code, 0, pack.stderr);
    const tgz = readdirSync(dir).find((f) => f.endsWith('.tgz'));
    assert.ok(tgz, 'npm pack wrote no tarball');
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'try-concord', version: '1.0.0', private: true }));
    // From the npm cache when it holds everything, else the configured registry.
    const install = await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', `./${tgz}`], dir);
    assert.equal(install.code, 0, install.stderr);
    // Its install step built the WAL's native bounded fdatasync (node-gyp, as `npm ci` does here).
    assert.ok(existsSync(join(dir, 'node_modules', 'concord', 'build', 'Release', 'concord_sync_within.node')), `no native addon built: ${install.stderr}`);

    const bin = (name: string) => join(dir, 'node_modules', '.bin', name);
    for (const via of [(n: string, a: string[]) => run(bin(n), a, dir), (n: string, a: string[]) => run('npx', ['--offline', n, ...a], dir)]) {
      const version = await via('concord', ['--version']);
      assert.equal(version.code, 0, version.stderr);
      assert.match(version.stdout, /^etcd Version: 3\.4\.\d+\n/);
      assert.match(version.stdout, /\nConcord Version: \d+\.\d+\.\d+/);
      const ctl = await via('concordctl', ['version']);
      assert.equal(ctl.code, 0, ctl.stderr);
      assert.equal(ctl.stdout, 'etcdctl version: 3.4.23\nAPI version: 3.4\n');
      const utl = await via('concordutl', ['version']);
      assert.equal(utl.code, 0, `concordutl: ${utl.stderr}`);
      assert.match(utl.stdout, /^concordutl version: 3\.4\.\d+\n/);
    }

    // The client library, as a user imports it: `concord/client`, with its types.
    writeFileSync(join(dir, 'use-client.mjs'), [
      "import { Client, Compare, Op, EtcdErrors, EtcdError } from 'concord/client';",
      "const c = new Client({ endpoints: ['http://127.0.0.1:1'] });",
      "c.close();",
      "console.log(typeof Compare.value, typeof Op.put, new EtcdErrors.Compacted() instanceof EtcdError);",
    ].join('\n'));
    const use = await run(process.execPath, ['use-client.mjs'], dir);
    assert.equal(use.code, 0, use.stderr);
    assert.equal(use.stdout, 'function function true\n');
    writeFileSync(join(dir, 'typed.ts'), [
      "import { Client, EtcdErrors, type WatchBatch } from 'concord/client';",
      "const c: Client = new Client({ endpoints: ['http://127.0.0.1:1'] });",
      "export async function f(): Promise<number> { const r = await c.kv.get('k', { prefix: true }); return r.count; }",
      "export const isCompacted = (e: unknown): boolean => e instanceof EtcdErrors.Compacted;",
      "export type B = WatchBatch['events'];",
      "// @ts-expect-error: a typo in an option is a type error",
      "c.kv.get('k', { prefx: true });",
    ].join('\n'));
    const tsc = await run(process.execPath, [join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '--strict',
      '--module', 'nodenext', '--moduleResolution', 'nodenext', '--skipLibCheck', '--types', 'node',
      '--typeRoots', join(REPO_ROOT, 'node_modules', '@types'), 'typed.ts'], dir);
    assert.equal(tsc.code, 0, tsc.stdout + tsc.stderr);
  });
});

const program = (target: TargetName, args: string[]): [string, string[]] =>
  target === 'etcd' ? ['etcd', args] : [process.execPath, [join(REPO_ROOT, 'bin', 'concord.js'), ...args]];

/** The first fatal JSON log line, without what differs by nature (time, caller, stack). */
function fatalLine(out: string): Record<string, unknown> | undefined {
  for (const line of out.split('\n')) {
    if (!line.startsWith('{')) continue;
    const rec = JSON.parse(line) as Record<string, unknown>;
    if (rec.level !== 'fatal') continue;
    delete rec.ts;
    delete rec.caller;
    delete rec.stacktrace;
    return rec;
  }
  return undefined;
}

async function startFailure(target: TargetName, cwd: string, args: string[]): Promise<{ code: number | null; fatal: Record<string, unknown> | undefined; log: string }> {
  const peer = `http://127.0.0.1:${await freePort()}`;
  const [cmd, argv] = program(target, ['--logger', 'zap', '--log-outputs', 'stderr', '--listen-peer-urls', peer,
    '--initial-advertise-peer-urls', peer, '--initial-cluster', `default=${peer}`, ...args]);
  const r = await run(cmd, argv, cwd, 30_000);
  const log = r.stdout + r.stderr;
  return { code: r.code, fatal: fatalLine(log), log };
}

describe('new user: start-up mistakes fail before anything is written, as in etcd', () => {
  for (const target of selectedTargets()) {
    test(`${target}: a client port already in use fails with etcd's error and writes no data dir`, async () => {
      const cwd = tempDir(`concord-port-${target}-`);
      const holder: NetServer = createServer();
      await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
      const port = (holder.address() as { port: number }).port;
      try {
        const url = `http://127.0.0.1:${port}`;
        const r = await startFailure(target, cwd, ['--data-dir', 'data', '--listen-client-urls', url, '--advertise-client-urls', url]);
        assert.equal(r.code, 1, r.log);
        const error = `listen tcp 127.0.0.1:${port}: bind: address already in use`;
        assert.deepEqual(r.fatal, { level: 'fatal', msg: 'discovery failed', error }, r.log);
        assert.match(r.log, new RegExp(`"msg":"failed to start etcd","error":"${error}"`));
        assert.deepEqual(readdirSync(cwd), [], 'something was written');
      } finally {
        await new Promise((r) => holder.close(r));
      }
    });

    test(`${target}: a --data-dir that is a file fails with etcd's error and is left alone`, async () => {
      const cwd = tempDir(`concord-datadir-${target}-`);
      writeFileSync(join(cwd, 'afile'), 'not a directory\n');
      const url = `http://127.0.0.1:${await freePort()}`;
      const r = await startFailure(target, cwd, ['--data-dir', 'afile', '--listen-client-urls', url, '--advertise-client-urls', url]);
      assert.equal(r.code, 1, r.log);
      assert.deepEqual(r.fatal, { level: 'fatal', msg: 'failed to list data directory', dir: 'afile', error: 'readdirent afile: not a directory' }, r.log);
      assert.deepEqual(readdirSync(cwd), ['afile']);
      assert.equal(readFileSync(join(cwd, 'afile'), 'utf8'), 'not a directory\n');
    });
  }
});
