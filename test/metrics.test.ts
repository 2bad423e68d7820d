// /metrics against real etcd 3.4: the same etcdctl workload on both, then a scrape of each
// (through --listen-metrics-urls, which serves /metrics and /health only). Every family
// Concord exposes must exist in etcd's scrape with the same TYPE and HELP; a core set must be
// present; the mvcc and gRPC counters the workload moved must equal etcd's; histogram buckets
// are etcd's. With CONCORD_TESTS_CONCORD_ONLY=1 the oracle comparisons are skipped and only
// the expected values are checked.

import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { startServer, selectedTargets, freePort, httpGet, track, REPO_ROOT, type Server, type TargetName } from './harness.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parsePromText, sampleValue, type FamilyText } from './prom-text.js';

const servers: Server[] = [];
after(async () => { for (const s of servers) await s.destroy(); });

/** Families an etcd dashboard or alert relies on; Concord must serve every one. */
const core: Record<string, string> = {
  etcd_server_has_leader: 'gauge',
  etcd_server_leader_changes_seen_total: 'counter',
  etcd_server_proposals_committed_total: 'gauge',
  etcd_server_proposals_applied_total: 'gauge',
  etcd_server_proposals_pending: 'gauge',
  etcd_server_proposals_failed_total: 'counter',
  etcd_server_version: 'gauge',
  etcd_cluster_version: 'gauge',
  etcd_server_is_leader: 'gauge',
  etcd_server_id: 'gauge',
  etcd_server_quota_backend_bytes: 'gauge',
  etcd_server_health_success: 'counter',
  etcd_server_health_failures: 'counter',
  etcd_mvcc_db_total_size_in_bytes: 'gauge',
  etcd_mvcc_db_total_size_in_use_in_bytes: 'gauge',
  etcd_debugging_mvcc_keys_total: 'gauge',
  etcd_mvcc_put_total: 'counter',
  etcd_mvcc_delete_total: 'counter',
  etcd_mvcc_range_total: 'counter',
  etcd_mvcc_txn_total: 'counter',
  etcd_disk_wal_fsync_duration_seconds: 'histogram',
  etcd_disk_backend_commit_duration_seconds: 'histogram',
  grpc_server_started_total: 'counter',
  grpc_server_handled_total: 'counter',
  process_cpu_seconds_total: 'counter',
  process_resident_memory_bytes: 'gauge',
  process_open_fds: 'gauge',
  process_start_time_seconds: 'gauge',
};

interface Scrape { fams: Map<string, FamilyText>; metricsPort: number; server: Server }

async function runWorkload(target: TargetName): Promise<Scrape> {
  const metricsPort = await freePort();
  const server = await startServer({ target, extraArgs: ['--listen-metrics-urls', `http://127.0.0.1:${metricsPort}`] });
  servers.push(server);
  const ok = async (args: string[], stdin?: string) => {
    const r = await server.etcdctl(args, stdin === undefined ? {} : { stdin });
    assert.equal(r.code, 0, `etcdctl ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  // Two puts (one key) and three deletes: etcd's e2e expectation is put 2, delete 3, keys 1.
  await ok(['put', 'k', 'v1']);
  await ok(['put', 'k', 'v2']);
  for (const key of ['a', 'b', 'c']) await ok(['del', key]);
  await ok(['get', 'k']);
  await ok(['get', 'k', '--consistency=s']);
  await ok(['put', 'p', 'x', '--prev-kv']);
  // A write txn (one compare read, then one put) and a read-only one (compare + two ranges).
  assert.equal(await ok(['txn'], 'value("k") = "v2"\n\nput t 1\n\nput t 2\n\n'), 'SUCCESS\n\nOK\n');
  await ok(['txn'], 'value("k") = "v2"\n\nget k\nget t\n\n\n');
  assert.equal((await httpGet(`${server.endpoint}/health`)).status, 200);
  const scrape = await httpGet(`http://127.0.0.1:${metricsPort}/metrics`);
  assert.equal(scrape.status, 200);
  return { fams: parsePromText(scrape.body), metricsPort, server };
}

describe('metrics: etcd 3.4 names, types and values', () => {
  const targets = selectedTargets();
  const scrapes = new Map<TargetName, Scrape>();

  test('the same workload on each target; each scrape parses', async () => {
    const results = await Promise.all(targets.map(async (t) => [t, await runWorkload(t)] as const));
    for (const [t, s] of results) scrapes.set(t, s);
  });

  for (const target of targets) {
    test(`${target}: expected values after the workload`, () => {
      const { fams } = scrapes.get(target)!;
      const v = (name: string, labels?: Record<string, string>) => sampleValue(fams, name, labels);
      assert.equal(v('etcd_mvcc_put_total'), 4); // k, k, p, and t in the write txn
      assert.equal(v('etcd_mvcc_delete_total'), 3);
      assert.equal(v('etcd_debugging_mvcc_keys_total'), 3); // k, p, t
      assert.equal(v('etcd_server_version', { server_version: '3.4.23' }), 1);
      assert.equal(v('etcd_cluster_version', { cluster_version: '3.4' }), 1);
      assert.equal(v('etcd_server_has_leader'), 1);
      assert.equal(v('etcd_server_is_leader'), 1);
      assert.equal(v('etcd_server_health_success'), 1); // the workload's one GET /health (the harness's readiness never asks it)
      assert.equal(v('grpc_server_handled_total', { grpc_method: 'Put', grpc_code: 'OK', grpc_service: 'etcdserverpb.KV', grpc_type: 'unary' }), 3);
      assert.equal(v('grpc_server_started_total', { grpc_method: 'DeleteRange', grpc_service: 'etcdserverpb.KV', grpc_type: 'unary' }), 3);
      assert.ok(v('etcd_disk_wal_fsync_duration_seconds_count')! > 0);
      assert.ok(v('etcd_mvcc_db_total_size_in_bytes')! > 0);
    });
  }

  if (targets.includes('concord')) {
    test('concord: concord_event_loop_delay_seconds reports p50, p99, max and mean of the main thread', () => {
      const f = scrapes.get('concord')!.fams.get('concord_event_loop_delay_seconds');
      assert.equal(f?.type, 'gauge');
      const stat = (s: string) => sampleValue(scrapes.get('concord')!.fams, 'concord_event_loop_delay_seconds', { stat: s })!;
      for (const s of ['p50', 'p99', 'max', 'mean']) assert.ok(Number.isFinite(stat(s)) && stat(s) >= 0 && stat(s) < 60, `${s} = ${stat(s)}`);
      assert.ok(stat('p50') <= stat('p99') && stat('p99') <= stat('max'), 'p50 <= p99 <= max');
    });
  }

  test('--metrics=extensive adds grpc_server_handling_seconds as etcd\'s (DefBuckets, per method)', async () => {
    const put = { grpc_method: 'Put', grpc_service: 'etcdserverpb.KV', grpc_type: 'unary' };
    const seen = await Promise.all(targets.map(async (target) => {
      const s = await startServer({ target, extraArgs: ['--metrics=extensive'] });
      servers.push(s);
      assert.equal((await s.etcdctl(['put', 'k', 'v'])).code, 0);
      const fams = parsePromText((await httpGet(`${s.endpoint}/metrics`)).body);
      await s.destroy();
      const f = fams.get('grpc_server_handling_seconds');
      assert.ok(f, `${target}: no grpc_server_handling_seconds`);
      assert.equal(f.type, 'histogram');
      assert.equal(sampleValue(fams, 'grpc_server_handling_seconds_count', put), 1);
      const les = f.samples.filter((x) => x.name.endsWith('_bucket') && x.labels.grpc_method === 'Put').map((x) => x.labels.le);
      return { help: f.help, les };
    }));
    for (const x of seen) assert.deepEqual(x, seen[0]);
    assert.deepEqual(seen[0]!.les, ['0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '+Inf']);
  });

  test('deploy/grafana-dashboard.json queries only families every target serves', () => {
    const dashboard = JSON.parse(readFileSync(join(REPO_ROOT, 'deploy', 'grafana-dashboard.json'), 'utf8'));
    const exprs: string[] = dashboard.panels.flatMap((p: { targets: Array<{ expr: string }> }) => p.targets.map((t) => t.expr));
    exprs.push(...dashboard.templating.list.filter((v: { query?: unknown }) => typeof v.query === 'string').map((v: { query: string }) => v.query));
    const names = new Set(exprs.flatMap((e) => [...e.matchAll(/\b((?:etcd|grpc_server|process|os)_[a-z_]+)\b/g)].map((m) => m[1]!)));
    assert.ok(names.size >= 15, `only ${names.size} metric names found in the dashboard`);
    for (const target of targets) {
      const fams = scrapes.get(target)!.fams;
      for (const name of names) {
        const base = name.replace(/_(bucket|sum|count)$/, '');
        assert.ok(fams.has(name) || fams.get(base)?.type === 'histogram', `${target} does not serve ${name}, which the dashboard queries`);
      }
    }
  });

  if (targets.includes('etcd') && targets.includes('concord')) {
    test('every family Concord serves exists in etcd with the same TYPE and HELP; the core set is there', () => {
      const etcd = scrapes.get('etcd')!.fams;
      const concord = scrapes.get('concord')!.fams;
      for (const [name, f] of concord) {
        if (name.startsWith('concord_')) continue; // Concord's own families (no etcd counterpart by design)
        const e = etcd.get(name);
        assert.ok(e, `Concord serves ${name}, which etcd 3.4 does not`);
        assert.equal(f.type, e.type, `${name}: TYPE`);
        assert.equal(f.help, e.help, `${name}: HELP`);
      }
      for (const [name, type] of Object.entries(core)) {
        assert.equal(concord.get(name)?.type, type, `core family ${name}`);
        assert.equal(etcd.get(name)?.type, type, `etcd's ${name} (the core list itself)`);
      }
    });

    test('the counters the workload moved equal etcd\'s; label sets and buckets are etcd\'s', () => {
      const etcd = scrapes.get('etcd')!.fams;
      const concord = scrapes.get('concord')!.fams;
      for (const name of ['etcd_mvcc_put_total', 'etcd_mvcc_delete_total', 'etcd_mvcc_range_total', 'etcd_mvcc_txn_total',
        'etcd_debugging_mvcc_keys_total', 'etcd_server_health_success', 'etcd_server_health_failures',
        'etcd_server_proposals_failed_total', 'etcd_server_leader_changes_seen_total']) {
        assert.equal(sampleValue(concord, name), sampleValue(etcd, name), name);
      }
      // Every KV and Maintenance series of etcd exists in Concord (all 17 codes at 0 or more),
      // with equal values for the KV ones the workload used.
      for (const fam of ['grpc_server_started_total', 'grpc_server_handled_total']) {
        const es = etcd.get(fam)!.samples.filter((s) => /^etcdserverpb\.(KV|Maintenance|Cluster)$/.test(s.labels.grpc_service!));
        assert.ok(es.length > 0);
        for (const s of es) {
          const c = sampleValue(concord, fam, s.labels);
          assert.notEqual(c, undefined, `${fam}${JSON.stringify(s.labels)} missing`);
          if (s.labels.grpc_service === 'etcdserverpb.KV') assert.equal(c, s.value, `${fam}${JSON.stringify(s.labels)}`);
        }
      }
      for (const h of ['etcd_disk_wal_fsync_duration_seconds', 'etcd_disk_backend_commit_duration_seconds']) {
        const les = (f: Map<string, FamilyText>) => f.get(h)!.samples.filter((s) => s.name === `${h}_bucket`).map((s) => s.labels.le);
        assert.deepEqual(les(concord), les(etcd), `${h} buckets`);
      }
    });

    test('the metrics listener answers /health, /metrics and nothing else, as etcd\'s does', async () => {
      for (const path of ['/health', '/version', '/v3/kv/range', '/livez', '/']) {
        const [e, c] = await Promise.all(['etcd', 'concord'].map((t) =>
          httpGet(`http://127.0.0.1:${scrapes.get(t as TargetName)!.metricsPort}${path}`)));
        assert.deepEqual({ status: c!.status, body: c!.body }, { status: e!.status, body: e!.body }, path);
      }
    });
  }
});

/**
 * etcd's e2e ctlV3Watch: `etcdctl watch <args>` until it has printed `expect`, then SIGKILL
 * (the expect package's stop signal), so the server sees the stream's connection vanish.
 */
function watchUntilKilled(endpoint: string, args: string[], expect: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('etcdctl', ['--endpoints', endpoint, 'watch', ...args], { env: { ...process.env, ETCDCTL_API: '3' }, stdio: ['ignore', 'pipe', 'pipe'] });
    track(child);
    let out = '';
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`etcdctl watch printed ${JSON.stringify(out)}, not ${JSON.stringify(expect)}`)); }, 30_000);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes(expect)) child.kill('SIGKILL');
    });
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', () => { clearTimeout(timer); resolve(); });
  });
}

// etcd 3.4's tests/e2e/metrics_test.go metricsTest, step for step: a put, then per check one
// put, one delete and one watch killed by SIGKILL, then the scrape must hold the line.
describe('metrics: etcd\'s e2e metricsTest', () => {
  for (const target of selectedTargets()) {
    test(`${target}: each expected line after its round of put, delete and killed watch`, async () => {
      const s = await startServer({ target });
      servers.push(s);
      const ok = async (args: string[]) => {
        const r = await s.etcdctl(args);
        assert.equal(r.code, 0, `etcdctl ${args.join(' ')}: ${r.stderr}`);
      };
      await ok(['put', 'k', 'v']);
      const expected: Array<[string, string]> = [
        ['/metrics', 'etcd_mvcc_put_total 2'],
        ['/metrics', 'etcd_debugging_mvcc_keys_total 1'],
        ['/metrics', 'etcd_mvcc_delete_total 3'],
        ['/metrics', 'etcd_server_version{server_version="3.4.23"} 1'],
        ['/metrics', 'etcd_cluster_version{cluster_version="3.4"} 1'],
        ['/metrics', 'grpc_server_handled_total{grpc_code="Canceled",grpc_method="Watch",grpc_service="etcdserverpb.Watch",grpc_type="bidi_stream"} 6'],
        ['/health', '{"health":"true"}'],
      ];
      let i = 0;
      for (const [path, line] of expected) {
        i++;
        await ok(['put', String(i), 'v']);
        await ok(['del', String(i)]);
        await watchUntilKilled(s.endpoint, ['k', '--rev', '1'], 'PUT\nk\nv\n');
        // The server learns of the killed client's stream asynchronously: poll (bounded) as etcd's cURLGet retries.
        let body = '';
        for (let tries = 0; tries < 100 && !body.split('\n').includes(line); tries++) {
          if (tries > 0) await new Promise((r) => setTimeout(r, 100));
          body = (await httpGet(`${s.endpoint}${path}`, 10_000)).body;
        }
        assert.ok(body.split('\n').includes(line), `${path} after round ${i} lacks ${line}`);
      }
      await s.destroy();
    });
  }
});
