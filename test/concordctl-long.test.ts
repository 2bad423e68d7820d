// concordctl's long-running commands against real etcdctl's: watch (history from a revision,
// json, prev-kv, an exec command per event, -i, a compacted start), lease keep-alive until the
// lease is revoked, lock and elect held until SIGTERM. Each runs against its own fresh member
// of the same kind (real etcd, then Concord); outputs are compared after the normalisation of
// concordctl.test.ts's kind (ids, ports, times). Lease-based commands run where the target
// answers the Lease service, and are skipped with that reason where it does not.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Client, isUnimplemented } from '../src/client/index.js';
import { startServer, selectedTargets, track, sleep, REPO_ROOT, type Server } from './harness.js';

type Tool = 'etcdctl' | 'concordctl';
const tools: Tool[] = ['etcdctl', 'concordctl'];

interface Run { stdout: string; stderr: string; code: number | null; signal: NodeJS.Signals | null }

class Running {
  stdout = '';
  stderr = '';
  readonly done: Promise<Run>;
  constructor(readonly child: ChildProcess) {
    child.stdout!.setEncoding('utf8').on('data', (d: string) => { this.stdout += d; });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => { this.stderr += d; });
    this.done = new Promise((resolve) => child.on('close', (code, signal) => resolve({ stdout: this.stdout, stderr: this.stderr, code, signal })));
  }

  /** Waits until stdout matches (bounded: a hang fails the test with what was printed). */
  async until(re: RegExp, boundMs = 20_000): Promise<void> {
    const end = Date.now() + boundMs;
    while (!re.test(this.stdout)) {
      if (Date.now() > end) throw new Error(`no ${re} in stdout ${JSON.stringify(this.stdout)} stderr ${JSON.stringify(this.stderr)}`);
      if (this.child.exitCode !== null || this.child.signalCode !== null) throw new Error(`exited before ${re}: ${JSON.stringify(this.stdout)} ${JSON.stringify(this.stderr)}`);
      await sleep(50);
    }
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<Run> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    const t = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    const r = await this.done;
    clearTimeout(t);
    return r;
  }
}

function start(tool: Tool, server: Server, args: string[], stdin?: string): Running {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ETCDCTL_') && v !== undefined) env[k] = v;
  env.ETCDCTL_API = '3';
  const argv = ['--endpoints', server.endpoint, ...args];
  const [cmd, full] = tool === 'etcdctl' ? ['etcdctl', argv] : [process.execPath, [join(REPO_ROOT, 'bin', 'concordctl.js'), ...argv]];
  const child = spawn(cmd, full, { env, stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
  track(child);
  if (child.stdin) { child.stdin.on('error', () => {}); child.stdin.write(stdin); } // left open: -i reads on
  return new Running(child);
}

/** Ids, lease ids and the clientv3 noise that differ by nature. */
function normalise(s: string, server: Server, ids: string[]): string {
  let out = s.replaceAll(server.endpoint, '<client-url>').replace(/"ts":("[^"]*"|[0-9.e+]+)/g, '"ts":<ts>')
    .replace(/client-[0-9a-f-]{36}/g, 'client-<uuid>');
  for (const id of ids) out = out.replaceAll(id, '<id>');
  return out.replace(/\b[0-9a-f]{12,16}\b/g, '<lease>').replace(/\b\d{17,20}\b/g, '<id>')
    // Renewals print as time passes: how many is not the point.
    .replace(/(lease <lease> keepalived with TTL\(\d+\)\n)+/g, '$1')
    // etcdctl logs this when SIGTERM cancels a call in flight, and not when the call had
    // returned first: a race inside clientv3, not an answer of the server's (CI saw both).
    .replace(/^\{"level":"warn",[^\n]*"msg":"retrying of unary invoker failed"[^\n]*context canceled"\}\n/gm, '');
}

for (const target of selectedTargets()) {
  describe(`long-running concordctl commands against ${target}, beside etcdctl`, () => {
    const servers = new Map<Tool, Server>();
    const ids = new Map<Tool, string[]>();
    let noLease: string | undefined;

    before(async () => {
      for (const tool of tools) {
        const server = await startServer({ target });
        servers.set(tool, server);
        const c = new Client({ endpoints: [server.endpoint] });
        try {
          const st = await c.maintenance.status();
          ids.set(tool, [st.header!.clusterId.toString(), st.header!.memberId.toString(), st.header!.memberId.toString(16)]);
          for (const [k, v] of [['f1', 'a'], ['f2', 'b'], ['f1', 'c']]) await c.kv.put(k!, v!);
          await c.kv.delete('f2');
          try { await c.lease.revoke((await c.lease.grant(5)).ID); } catch (e) {
            if (!isUnimplemented(e)) throw e;
            noLease = `${target} answers Unimplemented for etcdserverpb.Lease (${(e as Error).message})`;
          }
        } finally { c.close(); }
      }
    });
    after(async () => { for (const s of servers.values()) await s.destroy(); });

    /** Runs scenario on both sides and compares what each returns, normalised. */
    async function same(scenario: (tool: Tool, server: Server, client: Client) => Promise<Run>): Promise<void> {
      const got = new Map<Tool, Run>();
      for (const tool of tools) {
        const server = servers.get(tool)!;
        const client = new Client({ endpoints: [server.endpoint] });
        try {
          const r = await scenario(tool, server, client);
          got.set(tool, { ...r, stdout: normalise(r.stdout, server, ids.get(tool)!), stderr: normalise(r.stderr, server, ids.get(tool)!) });
        } finally { client.close(); }
      }
      assert.deepEqual(got.get('concordctl'), got.get('etcdctl'));
    }

    test('watch: history from a revision with prev-kv, then a live put, ended by SIGTERM', () => same(async (tool, server, client) => {
      const w = start(tool, server, ['watch', 'f', '--prefix', '--rev', '2', '--prev-kv']);
      await w.until(/DELETE\nf2\nb\nf2\n\n/);
      await client.kv.put('f3', 'live');
      await w.until(/f3\nlive\n$/);
      return w.stop();
    }));

    test('watch -w json and fields', () => same(async (tool, server) => {
      const j = start(tool, server, ['watch', 'f1', '--rev', '2', '-w', 'json']);
      await j.until(/"value":"Yw=="/);
      const jr = await j.stop();
      const f = start(tool, server, ['watch', 'f1', '--rev', '2', '-w', 'fields']);
      await f.until(/"Value" : "c"\n"Lease" : 0\n/);
      const fr = await f.stop();
      return { ...jr, stdout: jr.stdout + fr.stdout, stderr: jr.stderr + fr.stderr };
    }));

    test('watch -- exec: the command runs per event with ETCD_WATCH_* set', () => same(async (tool, server) => {
      const w = start(tool, server, ['watch', 'f1', '--rev', '2', '--', 'sh', '-c', 'echo "got $ETCD_WATCH_EVENT_TYPE $ETCD_WATCH_KEY $ETCD_WATCH_VALUE $ETCD_WATCH_REVISION"']);
      await w.until(/got "PUT" "f1" "c" \d+\n/);
      return w.stop();
    }));

    test('watch -i: watch requests from stdin', () => same(async (tool, server) => {
      const w = start(tool, server, ['watch', '-i'], 'watch f2 --rev 2\nbogus\n');
      await w.until(/DELETE\nf2\n\n/);
      await sleep(200);
      return w.stop();
    }));

    test('watch from a compacted revision: canceled by the server, exit 5', () => same(async (tool, server, client) => {
      const { header } = await client.kv.get('f1');
      await client.kv.compact(header!.revision);
      const w = start(tool, server, ['watch', 'f', '--prefix', '--rev', '1']);
      return w.done;
    }));

    test('check perf: 60 s of puts, its progress line and verdict as etcdctl prints them', () => same(async (tool, server) => {
      const r = await start(tool, server, ['check', 'perf']).done;
      // Throughput, latencies and so the verdicts depend on the machine; the form must not.
      // etcdctl finishes its bar from a timer goroutine, so its first verdict may come before the
      // bar's newline (which then never comes): a verdict straight after the bar counts as on its own line.
      const stdout = r.stdout.replace(/\r[^\r\n]*/g, (l) => l.replace(/\d+/g, 'N'))
        .replace(/(\r N \/ N +N\.N%( N+mN+s)?)+/g, '<progress>').replace(/<progress>(?!\n)/, '<progress>\n')
        .replace(/^(PASS|FAIL|Slowest request|Stddev)[^\n]*$/gm, '<verdict>');
      return { ...r, stdout, code: r.code === 0 || r.code === 1 ? 0 : r.code };
    }));

    test('check datascale: its errors, progress line and memory report as etcdctl prints them', () => same(async (tool, server, client) => {
      const badLoad = await start(tool, server, ['check', 'datascale', '--load', 'q']).done;
      await client.kv.put('/ds/x', 'y');
      const taken = await start(tool, server, ['check', 'datascale', '--prefix', '/ds/']).done;
      await client.kv.delete('/ds/x');
      const r = await start(tool, server, ['check', 'datascale', '--prefix', '/ds/']).done;
      // How much memory and how fast depend on the machine and the server; the form must not.
      const stdout = r.stdout.replace(/\r[^\r\n]*/g, (l) => l.replace(/\d+/g, 'N')).replace(/(\r N \/ N +N\.N%( N+mN+s| N+s)?)+/g, '<progress>')
        .replace(/used : -?\d+\.\d\d MB\./, 'used : <n> MB.');
      const left = (await client.kv.get('/ds/', { prefix: true, countOnly: true })).count;
      return { ...r, stdout: [badLoad.stderr, badLoad.code, taken.stderr, taken.code, stdout, `left ${left}`].join('\n') };
    }));

    test('lease keep-alive: renews, then reports the revoked lease and exits 0', async (t) => {
      if (noLease) { t.skip(noLease); return; }
      await same(async (tool, server, client) => {
        const { ID } = await client.lease.grant(6);
        const k = start(tool, server, ['lease', 'keep-alive', ID.toString(16)]);
        await k.until(/keepalived with TTL\(6\)\n/);
        await client.lease.revoke(ID);
        return k.done;
      });
    });

    test('lock: held (its key printed) until SIGTERM, then released', async (t) => {
      if (noLease) { t.skip(noLease); return; }
      await same(async (tool, server, client) => {
        const l = start(tool, server, ['lock', 'L']);
        await l.until(/^L\/[0-9a-f]+\n\n$/);
        const r = await l.stop();
        assert.equal((await client.kv.get('L/', { prefix: true, countOnly: true })).count, 0, 'lock not released');
        return r;
      });
    });

    test('elect: campaign wins and holds until SIGTERM; -l observes the leader', async (t) => {
      if (noLease) { t.skip(noLease); return; }
      await same(async (tool, server) => {
        const e = start(tool, server, ['elect', 'E', 'prop1']);
        await e.until(/^E\/[0-9a-f]+\nprop1\n$/);
        const o = start(tool, server, ['elect', '-l', 'E']);
        await o.until(/prop1\n$/);
        const er = await e.stop();
        const or = await o.stop();
        return { ...er, stdout: er.stdout + or.stdout, stderr: er.stderr + or.stderr, code: er.code, signal: er.signal };
      });
    });
  });
}
