// Snapshot catch-up: a follower stopped while the others write past --snapshot-count and
// past the 5,000 entries a leader keeps behind its snapshot rejoins; the leader sends it a
// MsgSnap followed by its backend as an etcd bbolt file, which the follower saves as
// member/snap/<index %016x>.snap.db, then installs (its backend swapped for the leader's)
// before raft carries on. Concord with Concord, and across Concord and etcd both ways: etcd's
// snapshot data is its v2 store JSON, which a Concord leader must send and a Concord
// follower must read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sleep, b, prefixEnd, runConcord, runEtcd, type EtcdClient, type TargetName } from './harness.js';
import { startCluster, type Cluster, type ClusterMember } from './cluster-harness.js';

/** Past the leader's kept tail (etcd's SnapshotCatchUpEntries, 5,000) and several snapshots. */
const writes = 5300;
/** Written after the install: the follower applies them and snapshots past the installed index. */
const moreWrites = 250;

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function putMany(client: EtcdClient, from: number, to: number, valueBytes: number): Promise<void> {
  const value = b('x'.repeat(valueBytes));
  for (let i = from; i < to; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, to - i) }, (_, j) =>
      client.put({ key: b(`snap/${String(i + j).padStart(6, '0')}`), value })));
  }
}

/** Writes through the leader (retried once on a leader change, which the writes' keys make idempotent). */
async function writeThroughLeader(c: Cluster, from: number, to: number, valueBytes: number): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const client = (await c.leader(60_000)).client();
    try {
      await putMany(client, from, to, valueBytes);
      return;
    } catch (e) {
      if (attempt >= 2) throw e;
    } finally {
      client.close();
    }
  }
}

function errorLine(m: ClusterMember): string {
  return m.log.split('\n').filter((l) => /"level":"(error|panic|fatal)"/.test(l)).pop() ?? m.log.slice(-2000);
}

/** Waits until `m` serves `count` keys under snap/ (serializable: from its own state). */
async function untilServes(m: ClusterMember, count: number): Promise<void> {
  const cl = m.client();
  try {
    await until(`${m.name} to serve ${count} keys`, async () => {
      if (!m.running) throw new Error(`${m.name} stopped: ${errorLine(m)}`);
      const got = await cl.range({ key: b('snap/'), rangeEnd: prefixEnd('snap/'), countOnly: true, serializable: true }).catch(() => undefined);
      return got !== undefined && Number(got.count) === count ? true : undefined;
    });
  } finally {
    cl.close();
  }
}

/**
 * Serializable reads against `m` until stop(): every answer is a count or a connection
 * error while the member is down or starting; anything else (a read that hit the backend
 * while its file was swapped) is collected.
 */
function readLoop(m: ClusterMember): { stop(): Promise<string[]> } {
  const failures: string[] = [];
  let stopped = false;
  const cl = m.client();
  const running = (async () => {
    while (!stopped) {
      try {
        await cl.range({ key: b('snap/'), rangeEnd: prefixEnd('snap/'), countOnly: true, serializable: true });
      } catch (e) {
        const msg = String((e as Error).message);
        if (!/UNAVAILABLE|ECONNREFUSED|connect|closed|GOAWAY|RST_STREAM|cancel|deadline/i.test(msg)) failures.push(msg);
        await sleep(20);
      }
    }
  })();
  return { async stop() { stopped = true; await running; cl.close(); return failures; } };
}

/** Adds a learner that never starts; its id in hex. */
async function addAbsentLearner(c: Cluster): Promise<string> {
  const peerUrl = 'http://127.0.0.1:1';
  const add = await c.ctl(['member', 'add', 'absent-learner', '--learner', '--peer-urls', peerUrl]);
  // A retried add (the first attempt timed out on the client yet applied) says the URL exists.
  if (add.code !== 0 && !add.stderr.includes('Peer URLs already exists')) assert.fail(`member add: ${add.stderr}`);
  const list = await c.ctl(['member', 'list', '-w', 'json']);
  assert.equal(list.code, 0, list.stderr);
  // Ids pass 2^53: read textually, not through JSON.parse.
  const entry = [...list.stdout.matchAll(/\{"ID":(\d+)[^{}]*\}/g)].find((x) => x[0].includes(`"${peerUrl}"`));
  assert.ok(entry, list.stdout);
  return BigInt(entry[1]!).toString(16);
}

/** The index of the leader's snapshot `m` saved, from its log (etcd logs it in capnslog's words). */
function savedSnapshotIndex(m: ClusterMember): number | undefined {
  if (m.target === 'etcd') {
    const saved = /successfully received and saved database snapshot \[index: (\d+)/.exec(m.log);
    return saved ? Number(saved[1]) : undefined;
  }
  const saved = /"msg":"saved database snapshot to disk"[^\n]*"path":"[^"]*\/member\/snap\/([0-9a-f]{16})\.snap\.db"/.exec(m.log);
  return saved ? parseInt(saved[1]!, 16) : undefined;
}

interface Scenario {
  name: string;
  kinds: TargetName[];
  /** Which member lags (and then installs the leader's snapshot). */
  lagging: (c: Cluster, leader: ClusterMember) => ClusterMember;
  skip: boolean;
  /** Bytes per value: 100 writes small snapshots; 19,000 makes a store of about 100 MB. */
  valueBytes: number;
}

const scenarios: Scenario[] = [
  { name: '3 Concord members', kinds: ['concord', 'concord', 'concord'], lagging: (c, leader) => c.members.find((m) => m !== leader)!, skip: !runConcord(), valueBytes: 100 },
  {
    name: '3 Concord members, a store of about 100 MB', kinds: ['concord', 'concord', 'concord'],
    lagging: (c, leader) => c.members.find((m) => m !== leader)!, skip: !runConcord(), valueBytes: 19_000,
  },
  {
    name: 'an etcd leader sends its snapshot to a Concord follower', kinds: ['etcd', 'etcd', 'concord'],
    lagging: (c) => c.members[2]!, skip: !runConcord() || !runEtcd(), valueBytes: 100,
  },
  {
    name: 'a Concord leader sends its snapshot to an etcd follower', kinds: ['concord', 'concord', 'etcd'],
    lagging: (c) => c.members[2]!, skip: !runConcord() || !runEtcd(), valueBytes: 100,
  },
];

for (const s of scenarios) {
  test(`snapshot catch-up, ${s.name}: a lagging follower installs the leader's snapshot and carries on`, { skip: s.skip, timeout: 900_000 }, async (t) => {
    // No reconfiguration guards: the membership change below is about snapshots, not quorum.
    const c = await startCluster({ targets: s.kinds, flags: ['--snapshot-count', '100', '--strict-reconfig-check=false'] });
    try {
      const lagging = s.lagging(c, await c.leader());
      const learnerId = await addAbsentLearner(c);
      await lagging.stop();
      // If it led, it handed its leadership over as it stopped (etcd's Stop): the change goes to that leader.
      await c.leader(60_000);
      // A membership change the follower misses: it learns it from the snapshot's data (etcd's
      // v2 store), not from the entries, which the leader no longer has.
      const remove = await c.ctl(['member', 'remove', learnerId]);
      assert.equal(remove.code, 0, remove.stderr);
      await writeThroughLeader(c, 0, writes, s.valueBytes);
      const leader = await c.leader(60_000);

      lagging.launch();
      const reads = readLoop(lagging);
      await untilServes(lagging, writes);

      await t.test('the leader streamed its backend; the follower saved it as member/snap/%016x.snap.db and applied it', () => {
        assert.match(leader.log, leader.target === 'etcd' ? /wrote database snapshot out/ : /"msg":"sending merged snapshot"/);
        const index = savedSnapshotIndex(lagging);
        assert.ok(index !== undefined, `no saved database snapshot in the follower's log:\n${lagging.log.slice(-3000)}`);
        assert.ok(index > 5000, `snapshot index ${index}: past the kept tail`);
        if (s.valueBytes * writes > 64 * 1024 * 1024) {
          // A big image's transfer shows progress on both sides as it goes.
          assert.match(leader.log, /"msg":"sending merged snapshot progress"/);
          assert.match(lagging.log, /"msg":"receiving database snapshot progress"/);
        }
        assert.match(lagging.log, lagging.target === 'etcd' ? /finished applying incoming snapshot at index/ : /"msg":"applied snapshot"/);
      });

      await t.test('it knows the member removed while it was away', async () => {
        const list = await lagging.etcdctl(['member', 'list']);
        assert.equal(list.code, 0, list.stderr);
        assert.equal(list.stdout.trim().split('\n').length, 3, list.stdout);
        assert.doesNotMatch(list.stdout, new RegExp(learnerId), list.stdout);
      });

      await t.test('it applies the writes that follow and survives a restart', async () => {
        await writeThroughLeader(c, writes, writes + moreWrites, s.valueBytes);
        await untilServes(lagging, writes + moreWrites);
        assert.deepEqual(await reads.stop(), [], 'reads during the install failed');
        await lagging.stop();
        await lagging.restart();
        await untilServes(lagging, writes + moreWrites);
        const rev = Math.min(...(await c.hashes()).map((h) => h.revision));
        const hs = await c.hashes(rev);
        assert.equal(new Set(hs.map((h) => h.hash)).size, 1, JSON.stringify(hs));
      });
    } finally {
      await c.destroy();
    }
  });
}
