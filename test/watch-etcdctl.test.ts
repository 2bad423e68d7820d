// Real `etcdctl watch` against real etcd and Concord: the same writes, then the same watch
// command on each; the printed output (and, for `-- CMD`, the command's output with the
// ETCD_WATCH_* variables) must be identical. A `watch` never exits by itself, so each run
// waits until the expected output has arrived and then kills etcdctl by pid.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { startServer, selectedTargets, type Server } from './harness.js';

const servers: Server[] = [];

before(async () => {
  for (const target of selectedTargets()) {
    const s = await startServer({ target });
    servers.push(s);
    // The same history on each: revisions 2..7.
    for (const args of [['put', 'foo', 'bar'], ['put', 'foo', 'baz'], ['put', 'fox', '1'], ['del', 'foo'], ['put', 'foo', 'again'], ['put', 'fop', '2']]) {
      const r = await s.etcdctl(args);
      assert.equal(r.code, 0, r.stderr);
    }
  }
});

after(async () => {
  for (const s of servers) await s.destroy();
});

interface Running {
  readonly child: ChildProcess;
  stdout: string;
  stderr: string;
  exited: boolean;
}

function spawnEtcdctl(s: Server, args: string[], stdin?: string): Running {
  const child = spawn('etcdctl', ['--endpoints', s.endpoint, ...args], {
    env: { ...process.env, ETCDCTL_API: '3' },
    stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  const r: Running = { child, stdout: '', stderr: '', exited: false };
  child.stdout!.setEncoding('utf8').on('data', (d) => { r.stdout += d; });
  child.stderr!.setEncoding('utf8').on('data', (d) => { r.stderr += d; });
  child.on('exit', () => { r.exited = true; });
  if (stdin !== undefined) {
    child.stdin!.on('error', () => {});
    child.stdin!.write(stdin);
  }
  return r;
}

/** Waits until `pred(stdout)` holds (or etcdctl exited), bounded so a hang fails the test. */
async function waitOutput(r: Running, pred: (out: string) => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred(r.stdout)) {
    if (r.exited) return;
    if (Date.now() > deadline) throw new Error(`etcdctl: timed out waiting for ${what}; stdout ${JSON.stringify(r.stdout)} stderr ${JSON.stringify(r.stderr)}`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

async function stop(r: Running): Promise<void> {
  if (r.exited) return;
  const gone = new Promise((res) => r.child.once('exit', res));
  r.child.kill('SIGKILL'); // by this child's pid
  await gone;
}

const lines = (n: number) => (out: string) => out.split('\n').length > n;

/** Runs a watch on every target until `done(stdout)`; returns each target's stdout, which must all be equal. */
async function sameOutput(args: string[], done: (out: string) => boolean, opts: { stdin?: string; during?: (s: Server, r: Running) => Promise<void> } = {}): Promise<string> {
  const outs: string[] = [];
  for (const s of servers) {
    const r = spawnEtcdctl(s, args, opts.stdin);
    try {
      if (opts.during) await opts.during(s, r);
      await waitOutput(r, done, args.join(' '));
      outs.push(r.stdout);
    } finally {
      await stop(r);
    }
  }
  for (const o of outs.slice(1)) assert.equal(o, outs[0]);
  return outs[0]!;
}

test('etcdctl watch KEY --rev N prints the history of the key, then waits', async () => {
  const out = await sameOutput(['watch', 'foo', '--rev', '2'], lines(12));
  assert.equal(out, 'PUT\nfoo\nbar\nPUT\nfoo\nbaz\nDELETE\nfoo\n\nPUT\nfoo\nagain\n');
});

test('etcdctl watch --prefix --prev-kv prints every key under the prefix with its previous value', async () => {
  const out = await sameOutput(['watch', '--prefix', 'fo', '--rev', '2', '--prev-kv'], (o) => o.includes('fop\n2\n'));
  assert.match(out, /^PUT\nfoo\nbar\nPUT\nfoo\nbar\nfoo\nbaz\n/);
});

test('etcdctl watch -i reads watch commands from stdin', async () => {
  // One watch command: two would race each other's catch-up, on etcd as well.
  const out = await sameOutput(['watch', '-i'], lines(6), { stdin: 'watch foo --rev 5\n' });
  assert.equal(out, 'DELETE\nfoo\n\nPUT\nfoo\nagain\n');
});

test('etcdctl watch ... -- CMD runs the command per event with ETCD_WATCH_* set', async () => {
  const out = await sameOutput(
    ['watch', 'foo', '--rev', '2', '--', 'sh', '-c', 'echo "$ETCD_WATCH_EVENT_TYPE $ETCD_WATCH_KEY $ETCD_WATCH_VALUE $ETCD_WATCH_REVISION"'],
    (o) => o.includes('"again" 7'));
  // etcdctl prints each event and then the command's output.
  assert.match(out, /"PUT" "foo" "bar" 7\n/);
  assert.match(out, /"DELETE" "foo" "" 7\n/);
});

// Last: its probe puts vary in number, so revisions after it differ between targets.
test('etcdctl watch KEY (live) sees puts made after it started', async () => {
  const out = await sameOutput(['watch', 'live'], (o) => o.includes('live\nfinal\n'), {
    during: async (s, r) => {
      // etcdctl prints nothing until an event, so probe until one shows: then it is watching.
      for (let i = 0; i < 100 && !r.stdout.includes('probe'); i++) {
        await s.etcdctl(['put', 'live', 'probe']);
        await waitOutput(r, (o) => o.includes('probe'), 'a probe', 200).catch(() => {});
      }
      await s.etcdctl(['put', 'live', 'final']);
    },
  });
  assert.match(out, /PUT\nlive\nfinal\n$/);
});
