// What a snapshot save costs the member and the disk, counted rather than timed (issue 10: no
// put pause over 100 ms during a save), against a real Concord:
// - the server's mark-compacts during a save (V8's --trace-gc): a new ArrayBuffer per 32 KiB
//   message made V8 run one every few MiB streamed, each a pause of the main thread;
// - concordctl's fdatasyncs while it writes the file (strace): etcdctl fsyncs the whole file
//   once at the end, a burst of dirty pages every other fsync on the disk waits behind.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, runConcord, track, REPO_ROOT, Server } from './harness.js';

const skip = !runConcord() && 'needs Concord';
const servers: Server[] = [];
after(async () => { for (const s of servers) await s.destroy(); });

/** Runs argv to its end; its exit code and stderr. */
function run(argv: string[], cwd: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    track(child);
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

/** 48 MiB of values, 512 KiB each: a snapshot of about 48 MiB, quick to fill. */
async function fill(s: Server): Promise<void> {
  const c = s.client();
  try {
    for (let i = 0; i < 96; i++) await c.put({ key: Buffer.from(`big/${String(i).padStart(3, '0')}`), value: Buffer.alloc(512 * 1024, i) });
  } finally {
    c.close();
  }
}

test('concord: a snapshot save of 48 MiB runs at most 2 mark-compacts; concordctl fdatasyncs the file as it writes it, and writes the same bytes as etcdctl', { skip, timeout: 600_000 }, async () => {
  const s = await startServer({ target: 'concord', nodeArgs: ['--trace-gc'] });
  servers.push(s);
  await fill(s);
  let saving = false;
  let marks = 0;
  s.child!.stdout!.on('data', (d: Buffer) => {
    if (saving) marks += d.toString('latin1').split('\n').filter((l) => / ms: Mark-Compact /.test(l)).length;
  });

  saving = true;
  const saved = await s.etcdctl(['snapshot', 'save', s.scratch('etcdctl.db')], { timeoutMs: 300_000 });
  saving = false;
  assert.equal(saved.code, 0, saved.stderr);
  // Before the message buffers were reused: 5 in this save (one per ~10 MiB), each pausing every request.
  assert.ok(marks <= 2, `${marks} mark-compacts during the save`);

  if (!existsSync('/usr/bin/strace')) return; // the rest counts system calls
  const trace = s.scratch('concordctl.strace');
  const traced = await run(['/usr/bin/strace', '-f', '-qq', '-e', 'trace=fsync,fdatasync', '-o', trace,
    process.execPath, join(REPO_ROOT, 'bin', 'concordctl.js'), '--endpoints', s.endpoint, 'snapshot', 'save', s.scratch('concordctl.db')], s.scratch('.'));
  assert.equal(traced.code, 0, traced.stderr);
  const calls = readFileSync(trace, 'utf8').split('\n');
  const datasyncs = calls.filter((l) => /fdatasync\(/.test(l)).length;
  const fsyncs = calls.filter((l) => /\bfsync\(/.test(l)).length;
  // One fdatasync per 32 MiB written (before: none at all, not even etcdctl's fsync at the end).
  assert.ok(datasyncs >= 1, `${datasyncs} fdatasync calls:\n${calls.join('\n')}`);
  assert.equal(fsyncs, 1, `one fsync before the rename, as etcdctl's:\n${calls.join('\n')}`);
  assert.ok(readFileSync(s.scratch('concordctl.db')).equals(readFileSync(s.scratch('etcdctl.db'))), 'concordctl wrote what etcdctl wrote');
});
