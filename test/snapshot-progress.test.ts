// Long snapshot work shows a progress bar (bytes, total, share, rate) on a terminal and
// nothing when piped: concordctl snapshot save, concordutl snapshot restore and export, run
// under a pseudo-terminal (util-linux `script`) and through pipes, against a real Concord.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, freePort, runConcord, track, REPO_ROOT, b, Server, type CmdResult } from './harness.js';
import { concordutl } from './concordutl-cli.js';
import { runTool } from './ctl-tools.js';

const servers: Server[] = [];
after(async () => { for (const s of servers) await s.destroy(); });

const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** Runs `argv` with a pseudo-terminal as its stdin, stdout and stderr (what a person at a terminal sees, merged). */
function onTerminal(argv: string[], cwd: string): Promise<CmdResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qec', argv.map(quote).join(' '), '/dev/null'], { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ETCDCTL_API: '3' } });
    track(child);
    let stdout = '';
    child.stdout.setEncoding('latin1').on('data', (d: string) => { stdout += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr: '' }));
  });
}

/** The last drawing of the bar labelled `label` (the line is redrawn after each \r). */
function lastBar(out: string, label: string): string | undefined {
  return out.split(/[\r\n]/).map((l) => l.replace(/\x1b\[K/g, '')).filter((l) => l.startsWith(`${label} [`)).at(-1);
}

const bin = (name: string): string => join(REPO_ROOT, 'bin', `${name}.js`);
const barAtEnd = (label: string) => new RegExp(`^${label} \\[=+\\] 100% [\\d.]+ [kMG]?B / [\\d.]+ [kMG]?B  [\\d.]+ [kMG]?B/s$`);

test('a progress bar on a terminal, none when piped: snapshot save, restore, export', { skip: !runConcord() && 'needs Concord' }, async () => {
  const s = await startServer({ target: 'concord' });
  servers.push(s);
  const c = s.client();
  for (let i = 0; i < 200; i++) await c.put({ key: b(`p/${i}`), value: Buffer.alloc(2000, i) });
  c.close();

  const onTty = s.scratch('tty.db');
  const saved = await onTerminal([process.execPath, bin('concordctl'), '--endpoints', s.endpoint, 'snapshot', 'save', onTty], s.scratch('.'));
  assert.equal(saved.code, 0, saved.stdout);
  assert.match(lastBar(saved.stdout, 'saving snapshot') ?? saved.stdout, barAtEnd('saving snapshot'));
  assert.match(saved.stdout, /Snapshot saved at /);
  const piped = s.scratch('piped.db');
  const pipedSave = await runTool('concordctl', ['--endpoints', s.endpoint, 'snapshot', 'save', piped], { cwd: s.scratch('.') });
  assert.equal(pipedSave.code, 0, pipedSave.stderr);
  assert.doesNotMatch(pipedSave.stderr, /\r|saving snapshot \[/, 'no bar when piped');

  const m = new Server({ target: 'concord', name: 'r0' });
  servers.push(m);
  m.clientPort = await freePort();
  m.peerPort = await freePort();
  const restoreArgs = (dir: string) => ['snapshot', 'restore', onTty, '--data-dir', dir, '--name', 'r0', '--initial-cluster', `r0=${m.peerUrl}`, '--initial-advertise-peer-urls', m.peerUrl];
  const restored = await onTerminal([process.execPath, bin('concordutl'), ...restoreArgs(m.dataDir)], s.scratch('.'));
  assert.equal(restored.code, 0, restored.stdout);
  assert.match(lastBar(restored.stdout, 'restoring') ?? restored.stdout, barAtEnd('restoring'));
  const pipedRestore = await concordutl(restoreArgs(s.scratch('piped-restore')));
  assert.equal(pipedRestore.code, 0, pipedRestore.stderr);
  assert.doesNotMatch(pipedRestore.stderr, /\r|restoring \[/);
  assert.ok(pipedRestore.stderr.split('\n').filter(Boolean).every((l) => l.startsWith('{')), 'only log lines when piped');

  await m.start();
  await m.stop();
  const exported = await onTerminal([process.execPath, bin('concordutl'), 'export', '--data-dir', m.dataDir, '--out', s.scratch('exported')], s.scratch('.'));
  assert.equal(exported.code, 0, exported.stdout);
  assert.match(lastBar(exported.stdout, 'exporting') ?? exported.stdout, barAtEnd('exporting'));
  assert.ok(existsSync(join(s.scratch('exported'), 'member', 'snap', 'db')));
});
