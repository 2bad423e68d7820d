// The disk flags against real etcd 3.4, told apart by the disk metrics each target serves:
// - --unsafe-no-fsync: the WAL and the backend skip their fsyncs, so puts add no observation
//   to etcd_disk_wal_fsync_duration_seconds (etcd's WAL returns before timing a sync it skips),
//   and what was written survives a clean restart (the writes still happen);
// - --backend-batch-interval / --backend-batch-limit: with a long interval and a high limit,
//   puts commit nothing to the backend (etcd_disk_backend_commit_duration_seconds; the WAL
//   holds them).
// Without the flags the same puts are fsynced and committed, so each check can fail.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, selectedTargets, httpGet, sleep, type Server } from './harness.js';
import { parsePromText, sampleValue } from './prom-text.js';

const servers: Server[] = [];
after(async () => { for (const s of servers) await s.destroy(); });

const walFsyncs = 'etcd_disk_wal_fsync_duration_seconds_count';
const backendCommits = 'etcd_disk_backend_commit_duration_seconds_count';

async function count(s: Server, name: string): Promise<number> {
  const fams = parsePromText((await httpGet(`${s.endpoint}/metrics`, 10_000)).body);
  const n = sampleValue(fams, name, {});
  assert.ok(n !== undefined, `${s.target}: no ${name}`);
  return n;
}

async function fivePuts(s: Server): Promise<void> {
  for (let i = 0; i < 5; i++) {
    const r = await s.etcdctl(['put', `k${i}`, `v${i}`]);
    assert.equal(r.code, 0, `${s.target} put: ${r.stderr}`);
  }
}

/** How much `name` grew while five puts were answered and a second (ten batch intervals) passed. */
async function growthDuringPuts(s: Server, name: string): Promise<number> {
  await sleep(500); // start-up's own syncs and commits settle
  const before = await count(s, name);
  await fivePuts(s);
  await sleep(1000);
  return (await count(s, name)) - before;
}

for (const target of selectedTargets()) {
  test(`${target}: --unsafe-no-fsync puts are not fsynced (no WAL fsync observations) and survive a clean restart`, async () => {
    const s = await startServer({ target, extraArgs: ['--unsafe-no-fsync'] });
    servers.push(s);
    assert.equal(await growthDuringPuts(s, walFsyncs), 0, 'puts were fsynced');
    const stopped = await s.stop();
    assert.equal(stopped.killed, false);
    await s.restart();
    const r = await s.etcdctl(['get', 'k', '--prefix', '--print-value-only']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['v0', 'v1', 'v2', 'v3', 'v4']);
  });

  test(`${target}: --backend-batch-interval 1h --backend-batch-limit 100000: puts commit nothing to the backend`, async () => {
    const s = await startServer({ target, extraArgs: ['--backend-batch-interval', '1h', '--backend-batch-limit', '100000'] });
    servers.push(s);
    assert.equal(await growthDuringPuts(s, backendCommits), 0);
  });

  test(`${target}: without the flags the same puts are fsynced, timed and committed`, async () => {
    const s = await startServer({ target });
    servers.push(s);
    await sleep(500);
    const fsyncs = await count(s, walFsyncs), commits = await count(s, backendCommits);
    await fivePuts(s);
    await sleep(1000);
    assert.ok((await count(s, walFsyncs)) >= fsyncs + 5, 'each put is one fsync');
    assert.ok((await count(s, backendCommits)) > commits, 'the puts were committed to the backend');
  });
}
